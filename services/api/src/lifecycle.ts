/**
 * The run lifecycle as a protocol, from the api's side, for one VM:
 *   claim (one instance of each service takes the VM) → setup on that instance → every owner has
 *   acknowledged → start {t0} (mmu, pager and signals first, the vCPUs last, so no fault can beat a
 *   stall or a plan at time 0) → ... → reports → teardown.
 * A failed setup tears the VM down on every service that has it. The lease is renewed by the caller.
 */
import {
  ClaimReply, MmuReport, type VcpuReport as VcpuReportT, type MmuReport as MmuReportT, type PagerReport as PagerReportT, type SignalsReport as SignalsReportT, Ok, PagerReport, SetupReply, SignalsReport, VcpuReport, epochMs, subjects,
  type Bus, type Logger, type Scenario,
} from "@faultline/shared";
import { Type, type TSchema } from "@sinclair/typebox";
import type { Owner } from "./liveness.ts";

export const CORE = ["vcpu", "mmu", "pager", "signals"] as const;
export type CoreService = (typeof CORE)[number];
export type Owners = Partial<Record<CoreService, Owner>>;

const REPORTS: Record<CoreService, TSchema> = { vcpu: VcpuReport, mmu: MmuReport, pager: PagerReport, signals: SignalsReport };

export interface LifecycleOptions {
  rpcTimeoutMs: number;
  leaseMs: number;
}

/** Setup is linear in vCPUs: allow for big VMs on a loaded machine. */
export function setupTimeoutMs(s: Scenario, rpcTimeoutMs: number): number {
  return Math.max(rpcTimeoutMs, 10_000) + 50 * s.vm.vcpus;
}

/**
 * Claims and sets up the VM on one instance of every core service. Returns the owners; on any
 * failure tears down what was created and rethrows.
 */
export async function setupVm(bus: Bus, log: Logger, vm: string, s: Scenario, o: LifecycleOptions, owners: Owners): Promise<void> {
  const timeoutMs = setupTimeoutMs(s, o.rpcTimeoutMs);
  // every claim and setup settles before a failure is acted on: one still in flight would otherwise
  // create the VM after the teardown (and hold it until its lease lapsed)
  const settled = await Promise.allSettled(
    CORE.map(async (svc) => {
      const { instance } = await bus.request(subjects.claim(svc), { vm, trace: `${vm}.claim` }, ClaimReply, { timeoutMs: o.rpcTimeoutMs });
      owners[svc] = { service: svc, instance, since: performance.now() };
      // re-sent every 2 s until the deadline (a re-sent setup joins the one in progress)
      await bus.request(subjects.setup(svc, instance), { vm, trace: `${vm}.setup`, scenario: s, leaseMs: o.leaseMs }, SetupReply, { timeoutMs });
      owners[svc]!.since = performance.now();
    }),
  );
  const failed = settled.find((x): x is PromiseRejectedResult => x.status === "rejected");
  if (failed) {
    await teardownVm(bus, log, vm, owners, o.rpcTimeoutMs);
    throw failed.reason;
  }
}

/** Scenario time 0, once every owner has the VM: the vCPUs start last. */
export async function startVm(bus: Bus, vm: string, owners: Owners, o: LifecycleOptions): Promise<number> {
  const t0 = epochMs() + 20;
  const names = Object.fromEntries(Object.values(owners).map((w) => [w.service, w.instance]));
  const start = (svc: CoreService) => bus.request(subjects.start(vm, svc), { vm, trace: `${vm}.start`, t0, owners: names }, Ok, { timeoutMs: o.rpcTimeoutMs });
  await Promise.all((["mmu", "pager", "signals"] as const).map(start));
  await start("vcpu");
  return t0;
}

export function renewLease(bus: Bus, vm: string, leaseMs: number): void {
  bus.publish(subjects.lease(vm), { vm, trace: `${vm}.lease`, leaseMs });
}

export type ReportSet = { vcpu?: VcpuReportT; mmu?: MmuReportT; pager?: PagerReportT; signals?: SignalsReportT };

/** Reports of the owners not in `skip`; a service that does not answer is left out (and named). */
export async function collectReports(
  bus: Bus, vm: string, owners: Owners, timeoutMs: number, skip: ReadonlySet<string> = new Set(),
): Promise<{ reports: ReportSet; missing: CoreService[]; errors: Partial<Record<CoreService, Error>> }> {
  const reports: ReportSet = {};
  const missing: CoreService[] = [];
  const errors: Partial<Record<CoreService, Error>> = {};
  await Promise.all(
    CORE.map(async (svc) => {
      if (!owners[svc] || skip.has(svc)) return void missing.push(svc);
      try {
        (reports as Record<string, unknown>)[svc] = await bus.request(subjects.report(vm, svc), { vm, trace: `${vm}.report` }, REPORTS[svc], { timeoutMs });
      } catch (err) {
        missing.push(svc);
        errors[svc] = err as Error;
      }
    }),
  );
  return { reports, missing: CORE.filter((s) => missing.includes(s)), errors };
}

const TeardownReply = Type.Object({ ok: Type.Boolean() });

/** Tears the VM down on every owner (best effort: an owner that is gone lets its lease lapse). */
export async function teardownVm(bus: Bus, log: Logger, vm: string, owners: Owners, timeoutMs: number): Promise<void> {
  await Promise.all(
    Object.values(owners).map((o) =>
      bus.request(subjects.teardown(vm, o.service as CoreService), { vm, trace: `${vm}.teardown` }, TeardownReply, { timeoutMs, retry: false }).catch((err: unknown) =>
        log.debug({ err, run: vm, svc: o.service }, "teardown not acknowledged (the lease will lapse)"),
      ),
    ),
  );
}
