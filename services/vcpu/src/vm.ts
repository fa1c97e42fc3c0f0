/** One VM in the vcpu service: its vCPU tasks, their ports onto the bus, and the per-VM report. */
import {
  DequeueReply, FaultReply, LIVE_MIN_MS, Linger, ReqStream, ResolveReply, RunClock, subjects, summarize,
  type Bus, type InFault, type SignalName, type VcpuStateName, type VmContext, type VmState,
} from "@faultline/shared";
import { PauseLog, demandPaging } from "./demand-paging.ts";
import { Vcpu, type VcpuPorts } from "./vcpu.ts";
import { buildWorkload } from "./workload.ts";

export class VcpuVm implements VmState {
  readonly vcpus: Vcpu[];
  readonly clock = new RunClock();
  readonly #bus: Bus;
  readonly #vm: string;
  #stopProgress: () => void = () => undefined;
  readonly #stopWindows: () => void;
  /** when each vCPU was parked (the demand-paging time leaves it out) */
  readonly #pauses = new PauseLog();
  /** faults in flight and async-PF halts that lasted long enough to be shown by live views */
  readonly #transient: Linger<number, InFault>;
  /** vCPUs in the async-PF artificial halt */
  readonly #halting = new Set<number>();

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
      fault: async (vcpu, gfn, write, site, user) => {
        this.#transient.begin(vcpu, { site, gfn, sinceMs: this.clock.now() });
        try {
          return await call(vcpu, "f", subjects.fault(vm), { gfn, write, site, user }, FaultReply);
        } finally {
          this.#transient.end(vcpu);
        }
      },
      dequeue: async (vcpu, atMs, outcome, via) => void (await call(vcpu, "d", subjects.dequeue(vm), { atMs, outcome, via }, DequeueReply)),
      apfReady: (vcpu, gfn, token) => call(vcpu, "a", subjects.apfReady(vm), { gfn, token }, FaultReply),
      resolve: (vcpu, gfn) => call(vcpu, "r", subjects.resolve(vm), { gfn }, ResolveReply),
      state: (vcpu, state, pagesTouched) => this.#onState(vcpu, state, pagesTouched),
      // only the stalls of the services that hold this VM (another stack on the same NATS is not this run)
      testbedStalled: (from, to) => ctx.monitor.overlaps(this.clock.t0 + from, this.clock.t0 + to, Object.values(ctx.owners)),
    };
    this.#transient = new Linger(LIVE_MIN_MS, () => this.clock.now(), (vcpu) => {
      const v = this.vcpus[vcpu];
      if (v) this.#announce(vcpu, v.state, v.pagesTouched);
    });
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

  /**
   * A vCPU task's state changed. The async-PF halt is shown like a fault in flight, once it has
   * lasted LIVE_MIN_MS (a halt that ends sooner sends nothing); every other change at once.
   */
  #onState(vcpu: number, state: VcpuStateName, pagesTouched: number): void {
    this.#pauses.note(vcpu, state, this.clock.now());
    const inFault = this.vcpus[vcpu]?.inFault;
    if (state === "halted" && inFault) {
      this.#halting.add(vcpu);
      this.#transient.begin(vcpu, { ...inFault });
      return;
    }
    if (this.#halting.delete(vcpu)) {
      const shown = this.#transient.shown(vcpu) !== undefined;
      this.#transient.end(vcpu); // announces the state now if the halt was shown
      if (shown || state === "running") return;
    }
    this.#announce(vcpu, state, pagesTouched);
  }

  /** `state` with the fault in flight (or halt) live views may show; a halt not shown yet is still "running". */
  #announce(vcpu: number, state: VcpuStateName, pagesTouched: number): void {
    const vm = this.#vm;
    const inFault = this.#transient.shown(vcpu) ?? null;
    const visible = state === "halted" && !inFault ? "running" : state;
    this.#bus.publish(subjects.vcpuState(vm), { vm, trace: `${vm}.${vcpu}.state`, vcpu, state: visible, atMs: this.clock.now(), pagesTouched, inFault });
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
      ...(v.accesses.built ? { distinctPages: v.accesses.distinctPages } : {}),
      ...(v.computeUs > 0 ? { computeMs: round3(v.computeUs / 1000) } : {}),
      doneAtMs: v.doneAtMs,
      spinCpuMs: round3(v.spinCpuMs),
      error: v.error,
    }));
    return {
      nowMs: now,
      vcpus,
      faultSlow: { ...summarize(this.vcpus.flatMap((v) => v.slowUs)), testbedStalled: this.vcpus.reduce((n, v) => n + v.testbedStalled.slow, 0) },
      faultFast: { ...summarize(this.vcpus.flatMap((v) => v.fastUs)), testbedStalled: this.vcpus.reduce((n, v) => n + v.testbedStalled.fast, 0) },
      faultAsync: summarize(this.vcpus.flatMap((v) => v.asyncUs)),
      demandPaging: demandPaging(
        this.vcpus.map((v) => ({ pages: v.accesses.length, pagesTouched: v.pagesTouched, doneAtMs: v.doneAtMs, paused: this.#pauses.of(v.id) })),
        now,
      ),
    };
  }

  close(): void {
    this.#transient.close();
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
