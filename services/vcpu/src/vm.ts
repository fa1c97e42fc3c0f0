/** One VM in the vcpu service: its vCPU tasks, their ports onto the bus, and the per-VM report. */
import {
  DequeueReply, FaultReply, ReqStream, ResolveReply, RunClock, subjects, summarize,
  type Bus, type SignalName, type VcpuStateName, type VmContext, type VmState,
} from "@faultline/shared";
import { Vcpu, type VcpuPorts } from "./vcpu.ts";
import { buildWorkload } from "./workload.ts";

export class VcpuVm implements VmState {
  readonly vcpus: Vcpu[];
  readonly clock = new RunClock();
  readonly #bus: Bus;
  readonly #vm: string;
  #stopProgress: () => void = () => undefined;
  readonly #stopWindows: () => void;

  constructor(ctx: VmContext) {
    const { bus, vm, scenario: s, log } = ctx;
    this.#bus = bus;
    this.#vm = vm;
    // every request on a vCPU thread's path outlives a NATS outage: a dead peer is caught by liveness, not by a deadline
    const faultTimeoutMs = s.durationMs + 30_000; // a fault may block for the whole run
    // each vCPU thread is one idempotent request stream: a request re-sent across a reconnect runs once
    const streams = Array.from({ length: s.vm.vcpus }, (_, i) => new ReqStream(`${ctx.instance}.${vm}.vcpu${i}`));
    // the vCPU thread's request: its own stream, a trace naming the vCPU and the kind, the VM's teardown signal
    const call = <R extends Parameters<Bus["request"]>[2]>(vcpu: number, kind: string, subject: string, body: object, reply: R) =>
      bus.request(subject, { vm, trace: `${vm}.${vcpu}.${kind}`, vcpu, ...body }, reply, { timeoutMs: faultTimeoutMs, stream: streams[vcpu]!, signal: ctx.signal });
    const ports: VcpuPorts = {
      now: () => this.clock.now(),
      fault: (vcpu, gfn, write, site) => call(vcpu, "f", subjects.fault(vm), { gfn, write, site }, FaultReply),
      dequeue: async (vcpu, atMs, outcome, via) => void (await call(vcpu, "d", subjects.dequeue(vm), { atMs, outcome, via }, DequeueReply)),
      apfReady: (vcpu, gfn, token) => call(vcpu, "a", subjects.apfReady(vm), { gfn, token }, FaultReply),
      resolve: (vcpu, gfn) => call(vcpu, "r", subjects.resolve(vm), { gfn }, ResolveReply),
      state: (vcpu, state, pagesTouched) => this.#announce(vcpu, state, pagesTouched),
      // only the stalls of the services that hold this VM (another stack on the same NATS is not this run)
      testbedStalled: (from, to) => ctx.monitor.overlaps(this.clock.t0 + from, this.clock.t0 + to, Object.values(ctx.owners)),
    };
    const site = typeof s.workload.site === "string" ? s.workload.site : "mixed";
    this.vcpus = Array.from({ length: s.vm.vcpus }, (_, id) => new Vcpu(id, site, buildWorkload(s, id), ports, s.vmm.signalMask));
    this.clock.at(0, () => {
      for (const v of this.vcpus) {
        v.run().catch((err: unknown) => {
          v.error = err instanceof Error ? err.message : String(err);
          log.error({ vcpu: v.id, err }, "vCPU thread failed");
        });
      }
    });
    this.#stopWindows = ctx.monitor.onWindow((w) => {
      if (!this.clock.started || !Object.values(ctx.owners).includes(w.instance)) return;
      const toMs = w.to - this.clock.t0;
      for (const v of this.vcpus) v.noteTestbedStall(toMs);
    });
  }

  /** Scenario time 0: the vCPU threads enter KVM_RUN. */
  start(t0: number): void {
    this.clock.start(t0);
    // progress for live views: pagesTouched of running vCPUs four times a second, and every state once a second
    const last = new Map<number, number>();
    let n = 0;
    this.#stopProgress = this.clock.every(250, () => {
      const all = ++n % 4 === 0;
      for (const v of this.vcpus) {
        if (!all && last.get(v.id) === v.pagesTouched) continue;
        last.set(v.id, v.pagesTouched);
        this.#announce(v.id, v.state, v.pagesTouched);
      }
    });
  }

  /** After a reconnect: announce every vCPU's state again (an announcement may have been lost). */
  resync(): void {
    for (const v of this.vcpus) this.#announce(v.id, v.state, v.pagesTouched);
  }

  #announce(vcpu: number, state: VcpuStateName, pagesTouched: number): void {
    const vm = this.#vm;
    this.#bus.publish(subjects.vcpuState(vm), { vm, trace: `${vm}.${vcpu}.state`, vcpu, state, atMs: this.clock.now(), pagesTouched });
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
      immediateExits: v.immediateExits,
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
      faultSlow: { ...summarize(this.vcpus.flatMap((v) => v.slowUs)), testbedStalled: this.vcpus.reduce((n, v) => n + v.testbedStalled.slow, 0) },
      faultFast: { ...summarize(this.vcpus.flatMap((v) => v.fastUs)), testbedStalled: this.vcpus.reduce((n, v) => n + v.testbedStalled.fast, 0) },
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
    this.#stopWindows();
    this.clock.cancelAll();
    for (const v of this.vcpus) {
      v.accesses.cancelled = true; // a build still queued stops taking slices
      v.close();
    }
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
