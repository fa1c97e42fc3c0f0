/** One VM in the vcpu service: its vCPU tasks, their ports onto NATS, and the per-VM report. */
import {
  DequeueReply, FaultReply, ResolveReply, RunClock, publish, request, subjects, summarize,
  type Scenario, type SignalName, type VcpuStateName,
} from "@faultline/shared";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { Vcpu, type VcpuPorts } from "./vcpu.ts";
import { buildWorkload } from "./workload.ts";

export class VcpuVm {
  readonly vcpus: Vcpu[];
  readonly clock: RunClock;
  readonly #stopProgress: () => void;

  constructor(nc: NatsConnection, log: Logger, vm: string, s: Scenario, t0: number, rpcTimeoutMs: number) {
    this.clock = new RunClock(t0);
    const faultTimeoutMs = s.durationMs + 30_000; // a fault may block for the whole run
    let seq = 0;
    const ports: VcpuPorts = {
      now: () => this.clock.now(),
      fault: (vcpu, gfn, write, site) =>
        request(nc, subjects.fault(vm), { vm, trace: `${vm}.${vcpu}.f${++seq}`, vcpu, gfn, write, site }, FaultReply, {
          timeoutMs: faultTimeoutMs,
        }),
      dequeue: async (vcpu, atMs, outcome, via) =>
        void (await request(nc, subjects.dequeue(vm), { vm, trace: `${vm}.${vcpu}.d${++seq}`, vcpu, atMs, outcome, via }, DequeueReply, {
          timeoutMs: rpcTimeoutMs,
        })),
      apfReady: (vcpu, gfn, token) =>
        request(nc, subjects.apfReady(vm), { vm, trace: `${vm}.${vcpu}.a${token}`, vcpu, gfn, token }, FaultReply, { timeoutMs: rpcTimeoutMs }),
      resolve: (vcpu, gfn) =>
        request(nc, subjects.resolve(vm), { vm, trace: `${vm}.${vcpu}.r${++seq}`, vcpu, gfn }, ResolveReply, { timeoutMs: faultTimeoutMs }),
      state: (vcpu, state, pagesTouched) => this.#announce(nc, vm, vcpu, state, pagesTouched),
    };
    const site = typeof s.workload.site === "string" ? s.workload.site : "mixed";
    this.vcpus = Array.from({ length: s.vm.vcpus }, (_, id) => new Vcpu(id, site, buildWorkload(s, id), ports));
    this.clock.at(0, () => {
      for (const v of this.vcpus) {
        v.run().catch((err: unknown) => {
          v.error = err instanceof Error ? err.message : String(err);
          log.error({ vm, vcpu: v.id, err }, "vCPU thread failed");
        });
      }
    });
    // progress for live views: pagesTouched of running vCPUs, four times a second
    const last = new Map<number, number>();
    this.#stopProgress = this.clock.every(250, () => {
      for (const v of this.vcpus) {
        if (last.get(v.id) === v.pagesTouched) continue;
        last.set(v.id, v.pagesTouched);
        this.#announce(nc, vm, v.id, v.state, v.pagesTouched);
      }
    });
  }

  #announce(nc: NatsConnection, vm: string, vcpu: number, state: VcpuStateName, pagesTouched: number): void {
    publish(nc, subjects.vcpuState(vm), { vm, trace: `${vm}.${vcpu}.state`, vcpu, state, atMs: this.clock.now(), pagesTouched });
  }

  /** SPTEs were zapped: every vCPU's guest faults on those pages again. */
  zap(gfns: readonly number[]): void {
    for (const v of this.vcpus) v.unmap(gfns);
  }

  apfCompleted(vcpu: number, gfn: number, token: number): void {
    this.vcpus[vcpu]?.apfCompleted(gfn, token);
  }

  setPending(vcpu: number, pending: SignalName[], fatal: boolean): void {
    this.vcpus[vcpu]?.setPending(pending, fatal);
  }

  /** QEMU `cpu->stop = true` on every vCPU; returns those already parked. */
  stopAll(stop: boolean): { parked: number[] } {
    for (const v of this.vcpus) v.setStop(stop);
    return { parked: this.vcpus.filter((v) => v.state === "paused").map((v) => v.id) };
  }

  report() {
    const now = this.clock.now();
    const vcpus = this.vcpus.map((v) => ({
      id: v.id,
      state: v.state,
      inFault: v.inFault,
      exits: v.exits,
      stat: v.stat,
      blocktimeMs: round3(v.blocktimeMs + (v.inFault ? now - v.inFault.sinceMs : 0)),
      hwpoisonSigbus: v.hwpoisonSigbus,
      pagesTouched: v.pagesTouched,
      pages: v.accesses.length,
      doneAtMs: v.doneAtMs,
      spinCpuMs: round3(v.spinCpuMs),
      error: v.error,
    }));
    const allDone = this.vcpus.every((v) => v.doneAtMs !== null);
    const totalS = Math.max(1e-9, (allDone ? Math.max(...this.vcpus.map((v) => v.doneAtMs ?? 0)) : now) / 1000);
    const touched = this.vcpus.reduce((n, v) => n + v.pagesTouched, 0);
    return {
      nowMs: now,
      vcpus,
      faultSlow: summarize(this.vcpus.flatMap((v) => v.slowUs)),
      faultFast: summarize(this.vcpus.flatMap((v) => v.fastUs)),
      faultAsync: summarize(this.vcpus.flatMap((v) => v.asyncUs)),
      demandPaging: {
        allDone,
        totalGuestExecutionS: round3(totalS),
        perVcpuRate: round3(touched / this.vcpus.length / totalS),
        overallRate: round3(touched / totalS),
      },
    };
  }

  close(): void {
    this.#stopProgress();
    this.clock.cancelAll();
    for (const v of this.vcpus) v.close();
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
