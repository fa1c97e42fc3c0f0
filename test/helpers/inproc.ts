/**
 * The fault path composed in one process, with the real logic of every service (Vcpu, Mmu, Uffd,
 * Tasks, PauseController) and direct calls where the services use NATS. Page fetches are released
 * by the test (`release(gfn)`), so the wake rules are tested by ordering, never by time.
 */
import { parseScenario, type Profile, type SignalMaskMode, type SignalName, type Site } from "@faultline/shared";
import { Mmu } from "../../services/mmu/src/index.ts";
import { Uffd, type UffdConfig } from "../../services/pager/src/index.ts";
import { PauseController, Tasks, type PendingChange } from "../../services/signals/src/index.ts";
import { Vcpu, buildWorkload } from "../../services/vcpu/src/index.ts";

export interface Harness {
  vcpus: Vcpu[];
  uffd: Uffd;
  mmu: Mmu;
  tasks: Tasks;
  pause: PauseController;
  /** fetches the pager has asked the source for, not yet answered */
  fetching: Set<number>;
  release: (gfn: number) => void;
  releaseAll: () => void;
  send: (vcpus: number[], signal: SignalName) => void;
  /** kill(pid) to the VMM */
  sendProcess: (signal: SignalName) => void;
  runs: Promise<void>[];
  now: () => number;
  close: () => void;
}

export const tick = () => new Promise<void>((r) => setImmediate(r));
export async function settle(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

/** Waits (by yielding to the event loop, not by time) until `cond` holds; fails after `max` turns. */
export async function until(cond: () => boolean, what: string, max = 2000): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (cond()) return;
    await tick();
  }
  throw new Error(`never happened: ${what}`);
}

export function harness(profile: Profile, o: {
    vcpus?: number; pages?: number; autoFill?: boolean; site?: Site; asyncPf?: { pv: boolean }; userModeShare?: number;
    config?: Partial<UffdConfig>; writeRatio?: number; signalMask?: SignalMaskMode;
  } = {}): Harness {
  const s = parseScenario({ kernel: { profile }, vm: { vcpus: o.vcpus ?? 1 }, workload: { pagesPerVcpu: o.pages ?? 4, site: o.site ?? "tdp", writeRatio: o.writeRatio ?? 0, userModeShare: o.userModeShare ?? 0.5 } });
  let clock = 0;
  const now = () => ++clock; // a logical clock: strictly increasing, no wall time
  const waiting = new Map<number, () => void>();
  const fetching = new Set<number>();
  const uffd = new Uffd({
    fetch: (gfn) =>
      new Promise<void>((resolve) => {
        if (o.autoFill) return void setImmediate(resolve);
        fetching.add(gfn);
        waiting.set(gfn, resolve);
      }),
    onResident: (gfn) => (mmu.hostPresent.add(gfn), mmu.hostWriteProtected.delete(gfn)),
    now,
    ...(o.config ? { config: o.config } : {}),
  });
  const mmu: Mmu = new Mmu(
    profile,
    s.vm.memslots,
    (req) => uffd.faultIn(req),
    o.asyncPf ? { pv: o.asyncPf.pv, interruptsEnabled: true, completed: (vcpu, token, gfn) => vcpus[vcpu]?.apfCompleted(gfn, token) } : undefined,
  );
  if (o.config?.mode === "wp") {
    const gfns = Array.from({ length: s.vm.vcpus * s.workload.pagesPerVcpu }, (_, i) => i);
    uffd.populateWriteProtected(gfns);
    for (const g of gfns) (mmu.hostPresent.add(g), mmu.hostWriteProtected.add(g));
  }
  const tasks = new Tasks(s.vm.vcpus);
  const vcpus: Vcpu[] = [];
  const apply = (c: PendingChange) => {
    uffd.setPending(c.vcpu, c.pending, c.fatal);
    vcpus[c.vcpu]?.setPending(c.pending, c.fatal);
  };
  const send = (targets: number[], signal: SignalName) => tasks.send(targets, signal, "plan", now()).forEach(apply);
  const sendProcess = (signal: SignalName) => tasks.sendProcess(signal, "plan", now()).changes.forEach(apply);
  const pause = new PauseController(s.vm.vcpus, undefined, {
    now,
    stopAll: async () => vcpus.forEach((v) => v.setStop(true)),
    contAll: async () => vcpus.forEach((v) => v.setStop(false)),
    kick: (targets) => tasks.send(targets, "SIGUSR1", "pause-kick", now()).forEach(apply),
    every: () => () => undefined, // no timed re-kick: re-kicks come from parks, as in QEMU
  });
  for (let id = 0; id < s.vm.vcpus; id++) {
    vcpus.push(
      new Vcpu(id, o.site ?? "tdp", buildWorkload(s, id), {
        now,
        fault: (vcpu, gfn, write, site, user) => mmu.access(vcpu, gfn, write, site, user),
        dequeue: async (vcpu, atMs, outcome, via) => {
          const d = tasks.dequeue(vcpu, atMs, outcome, via);
          if (outcome === "KVM_EXIT_INTR" || (outcome === "delivered-in-vmm" && via !== "parked")) pause.leftKvmRun(vcpu);
          [d.change, ...d.woken].forEach(apply);
        },
        resolve: (_vcpu, gfn) => uffd.resolve(gfn),
        apfReady: (vcpu, gfn) => mmu.apfReady(vcpu, gfn),
        state: (vcpu, state) => pause.onState(vcpu, state),
      }, o.signalMask),
    );
  }
  const runs = vcpus.map((v) => v.run());
  return {
    vcpus, uffd, mmu, tasks, pause, fetching, runs, now, send, sendProcess,
    release: (gfn) => {
      fetching.delete(gfn);
      waiting.get(gfn)?.();
      waiting.delete(gfn);
    },
    releaseAll: () => {
      for (const g of [...fetching]) {
        fetching.delete(g);
        waiting.get(g)?.();
        waiting.delete(g);
      }
    },
    close: () => {
      vcpus.forEach((v) => v.close());
      uffd.release();
    },
  };
}
