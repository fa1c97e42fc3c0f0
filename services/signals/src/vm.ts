/** One VM in the signals service: tasks, the signal plan, the VMM's pause/resume, and their NATS side. */
import {
  RunClock, SIG_IPI, StopReply, selectVcpus, subjects, summarize,
  type Bus, type ExitVia, type SendReply, type Shutdown, type SignalName, type SignalSourceName, type VcpuSelector, type VmContext, type VmState,
} from "@faultline/shared";
import { PauseController } from "./pause.ts";
import { Tasks, type Outcome, type PendingChange } from "./tasks.ts";

export class VmSignals implements VmState {
  readonly tasks: Tasks;
  readonly pause: PauseController;
  readonly clock: RunClock;
  readonly #bus: Bus;
  readonly #vm: string;
  #trace = 0;
  /** QEMU's shutdown request (termsig_handler → qemu_system_killed), completed when every vCPU parked */
  shutdown: Shutdown | null = null;

  /** did a stall of the testbed (of this VM's owners) overlap [from, to] of scenario time? */
  readonly #stalled: (fromMs: number, toMs: number) => boolean;

  constructor(ctx: Pick<VmContext, "bus" | "vm" | "scenario"> & Partial<Pick<VmContext, "monitor" | "owners">> & { config: { FAULTLINE_RPC_TIMEOUT_MS: number }; signal?: AbortSignal }) {
    const { bus, vm, scenario } = ctx;
    this.#stalled = (from, to) => ctx.monitor?.overlaps(this.clock.t0 + from, this.clock.t0 + to, Object.values(ctx.owners ?? {})) ?? false;
    // the VMM's stop/cont outlive a NATS outage: a dead vcpu service is caught by liveness, not by a deadline
    const vmm = { timeoutMs: Math.max(ctx.config.FAULTLINE_RPC_TIMEOUT_MS, scenario.durationMs + 30_000), ...(ctx.signal ? { signal: ctx.signal } : {}) };
    this.#bus = bus;
    this.#vm = vm;
    this.clock = new RunClock();
    const n = scenario.vm.vcpus;
    this.tasks = new Tasks(n);
    const body = () => ({ vm, trace: this.#nextTrace("stop") });
    this.pause = new PauseController(n, scenario.vmm.rekickMs, {
      now: () => this.clock.now(),
      stopAll: async () => void (await bus.request(subjects.stop(vm), body(), StopReply, vmm)),
      contAll: async () => void (await bus.request(subjects.cont(vm), body(), StopReply, vmm)),
      kick: (vcpus) => void this.send(vcpus, SIG_IPI, "pause-kick"),
      every: (ms, fn) => this.clock.every(ms, fn),
    });
    this.pause.onComplete((rec) => {
      if (this.shutdown && this.shutdown.completedAtMs === null) this.shutdown.completedAtMs = rec.completedAtMs;
    });
    for (const p of scenario.signals) this.clock.at(p.atMs, () => (p.process ? this.sendProcess(p.signal, "plan") : this.send(p.vcpus ?? "all", p.signal, "plan")));
    const { pauseAllAtMs, resumeAtMs } = scenario.vmm;
    if (pauseAllAtMs !== undefined) this.clock.at(pauseAllAtMs, () => void this.pause.pause().catch(() => undefined));
    if (resumeAtMs !== undefined) this.clock.at(resumeAtMs, () => void this.resume().catch(() => undefined));
    // vmm.pauses (and schedules.pauses): ordered, each resumed before the next (parseScenario checks it)
    for (const p of scenario.vmm.pauses ?? []) {
      this.clock.at(p.atMs, () => void this.pause.pause().catch(() => undefined));
      if (p.resumeAtMs !== undefined) this.clock.at(p.resumeAtMs, () => void this.resume().catch(() => undefined));
    }
  }

  /** `resume_all_vcpus`; a VM shutting down is not resumed (QEMU exits once its vCPUs are stopped). */
  async resume(): Promise<void> {
    if (this.shutdown) return;
    await this.pause.resume();
  }

  /** Scenario time 0: the signal plan and the VMM's pause/resume are scheduled from it. */
  start(t0: number): void {
    this.clock.start(t0);
  }

  /** After a reconnect: every task's pending set again (a wake or dequeue may have been lost). */
  resync(): void {
    for (let v = 0; v < this.tasks.vcpus; v++) {
      this.#publish({ vcpu: v, kind: "resync", fatal: this.tasks.fatalPending(v), pending: this.tasks.pendingOf(v) });
    }
  }

  send(sel: VcpuSelector, signal: SignalName, source: SignalSourceName): SendReply {
    const atMs = this.clock.now();
    const targets = selectVcpus(sel, this.tasks.vcpus);
    const changes = this.tasks.send(targets, signal, source, atMs);
    for (const c of changes) this.#publish(c);
    return { sent: targets.map((vcpu) => ({ vcpu, signal, sentAtMs: atMs })) };
  }

  /**
   * `kill(pid)` to the VMM. SIGTERM/SIGINT/SIGHUP reach QEMU's `termsig_handler` on the main thread:
   * `qemu_system_killed` requests a shutdown; the main loop stops the VM (`vm_shutdown` →
   * `do_vm_stop` → `pause_all_vcpus`) and the shutdown completes when every vCPU has parked.
   */
  sendProcess(signal: SignalName, source: SignalSourceName): SendReply {
    const atMs = this.clock.now();
    const { record, changes } = this.tasks.sendProcess(signal, source, atMs);
    for (const c of changes) this.#publish(c);
    if (record.outcome === "shutdown-requested") this.#requestShutdown(signal, atMs);
    const sent = typeof record.thread === "number" ? [{ vcpu: record.thread, signal, sentAtMs: atMs }] : [];
    return { sent, process: { signal, sentAtMs: atMs, thread: record.thread, outcome: record.outcome } };
  }

  #requestShutdown(signal: SignalName, atMs: number): void {
    if (this.shutdown) return; // qemu_system_killed again: the request is already there
    const sh: Shutdown = { signal, requestedAtMs: atMs, completedAtMs: null };
    this.shutdown = sh;
    void this.pause.pause().then(
      (rec) => {
        if (sh.completedAtMs === null && rec.completedAtMs !== null) sh.completedAtMs = Math.max(atMs, rec.completedAtMs);
      },
      () => undefined,
    );
  }

  dequeue(vcpu: number, atMs: number, outcome: Outcome, via: ExitVia) {
    const { eaten, change, woken } = this.tasks.dequeue(vcpu, atMs, outcome, via);
    // kvm_cpu_exec returned (or the thread took a signal out of KVM_RUN): qemu_wait_io_event_common follows
    if (outcome === "KVM_EXIT_INTR" || (outcome === "delivered-in-vmm" && via !== "parked")) this.pause.leftKvmRun(vcpu);
    this.#publish(change);
    for (const c of woken) this.#publish(c);
    return { eaten };
  }

  report() {
    // a signal whose way out overlapped a testbed stall measures the testbed, not the kernel path
    const recs = this.tasks.records.map((r) => (r.exitAtMs !== null && this.#stalled(r.sentAtMs, r.exitAtMs) ? { ...r, testbedStalled: true } : r));
    return {
      vmKilled: this.tasks.vmKilled,
      records: recs,
      pending: Array.from({ length: this.tasks.vcpus }, (_, v) => this.tasks.pendingOf(v)),
      pauses: this.pause.history,
      shutdown: this.shutdown,
      processSignals: this.tasks.processRecords,
      signalToExit: {
        ...summarize(recs.flatMap((r) => (r.latencyUs === null ? [] : [r.latencyUs]))),
        testbedStalled: recs.filter((r) => "testbedStalled" in r).length,
      },
    };
  }

  close(): void {
    this.clock.cancelAll();
    this.pause.close();
  }

  #publish(c: PendingChange): void {
    this.#bus.publish(subjects.wake(this.#vm), { vm: this.#vm, trace: this.#nextTrace(c.kind), ...c });
  }

  #nextTrace(kind: string): string {
    return `${this.#vm}.sig.${kind}.${++this.#trace}`;
  }
}
