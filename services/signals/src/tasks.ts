/**
 * `kernel/signal.c` for one VM's threads: each vCPU task's private pending set, and the VMM's main
 * thread for process-directed signals.
 *
 * - `__send_signal_locked` → `legacy_queue()`: a standard signal already pending on the thread is
 *   not queued twice; the second one's record is `coalesced`.
 * - a signal the thread blocks (QEMU's masks, `SIGNALS[*].blockedInVcpu`) stays pending and wakes
 *   nothing (`complete_signal` finds no thread that `wants_signal`): `blocked`. `signal_pending()`
 *   never sees it, so the published pending set leaves it out.
 * - `complete_signal`: a non-coredump default-terminate signal with no handler (`isFatal`) is promoted
 *   to a group SIGKILL: SIGKILL on every thread, each woken (`signal_wake_up(t, 1)`). A coredump-class
 *   one is not (`signal_wake_up(t, 0)`: only an interruptible sleeper wakes); the thread that dequeues
 *   it dumps core and `zap_threads` SIGKILLs the others (`zapThreads`).
 * - process-directed (`kill(pid)`): the main thread takes it unless it blocks it, else the first vCPU
 *   thread that does not (`complete_signal`'s `wants_signal` scan).
 */
import {
  SIGNALS, VMM_HANDLED_SIGNALS, blockedIn, isCoredump, isFatal,
  type ExitVia, type MessageBody, type ProcessSignal, type ProcessSignalOutcome, type SignalExitOutcome, type SignalName, type SignalRecord,
  type SignalSourceName, type WakeMsg,
} from "@faultline/shared";

export type { SignalRecord } from "@faultline/shared";
/** KVM_EXIT_INTR: the signal got the vCPU out of KVM_RUN; delivered-in-vmm: it was outside KVM_RUN, in the VMM, with the signal unblocked. */
export type Outcome = SignalExitOutcome;
/** A task's pending set changed: the WakeMsg published to the pager and the vcpu service. */
export type PendingChange = MessageBody<WakeMsg>;

export class Tasks {
  readonly records: SignalRecord[] = [];
  /** signals sent to the VMM process (kill(pid)) */
  readonly processRecords: ProcessSignal[] = [];
  /** each vCPU thread's private pending set (`t->pending`), blocked signals included */
  readonly #pending: Array<Set<SignalName>>;
  #killedAtMs: number | null = null;

  readonly vcpus: number;
  /** `signal->curr_target`: where complete_signal's scan for a process-directed signal starts */
  #currTarget = 0;

  constructor(vcpus: number) {
    this.vcpus = vcpus;
    this.#pending = Array.from({ length: vcpus }, () => new Set<SignalName>());
  }

  get vmKilled(): boolean {
    return this.#killedAtMs !== null;
  }

  /** What `signal_pending()` sees: the pending signals the vCPU thread does not block. */
  pendingOf(vcpu: number): SignalName[] {
    return [...(this.#pending[vcpu] ?? [])].filter((s) => !blockedIn(s, "vcpu"));
  }

  /** Pending and blocked: never delivered while QEMU keeps its vCPU-thread mask. */
  blockedOf(vcpu: number): SignalName[] {
    return [...(this.#pending[vcpu] ?? [])].filter((s) => blockedIn(s, "vcpu"));
  }

  /** `fatal_signal_pending()`: SIGKILL pending (after `complete_signal`'s promotion). */
  fatalPending(vcpu: number): boolean {
    return this.pendingOf(vcpu).some((s) => isFatal(s));
  }

  /** `tgkill` to each target vCPU thread; returns the wake-ups to publish. */
  send(targets: readonly number[], signal: SignalName, source: SignalSourceName, atMs: number): PendingChange[] {
    const woken = new Set<number>();
    for (const v of targets) {
      const rec: SignalRecord = { vcpu: v, signal, source, sentAtMs: atMs, outcome: null, exitAtMs: null, via: null, latencyUs: null };
      this.records.push(rec);
      const set = this.#pending[v];
      if (!set) continue;
      // legacy_queue(): a standard signal already pending is dropped
      if (set.has(signal)) {
        rec.outcome = "coalesced";
        continue;
      }
      set.add(signal);
      if (blockedIn(signal, "vcpu")) {
        rec.outcome = "blocked";
        continue;
      }
      woken.add(v);
      if (isFatal(signal)) this.#groupKill(atMs, woken);
    }
    return this.#changes(woken, signal);
  }

  /**
   * `kill(pid)` to the VMM: the thread `complete_signal` picks and what the signal does there. A
   * termination signal QEMU handles (termsig_handler) is `shutdown-requested`: the caller runs the shutdown.
   */
  sendProcess(signal: SignalName, source: SignalSourceName, atMs: number): { record: ProcessSignal; changes: PendingChange[] } {
    const record: ProcessSignal = { signal, source, sentAtMs: atMs, thread: null, outcome: "blocked" };
    this.processRecords.push(record);
    let changes: PendingChange[] = [];
    if (!blockedIn(signal, "main")) {
      record.thread = "main";
      // the main thread sleeps interruptibly in its main loop: it takes the signal at once
      const woken = new Set<number>();
      let outcome: ProcessSignalOutcome = "shutdown-requested";
      if (isFatal(signal)) outcome = "killed";
      else if (isCoredump(signal)) outcome = "core-dump"; // do_coredump → zap_threads
      else if (SIGNALS[signal].qemuHandler !== "termsig_handler") throw new Error(`no model for ${signal} on the VMM's main thread`);
      if (outcome !== "shutdown-requested") {
        if (this.vmKilled) outcome = "coalesced"; // the group is already exiting
        this.#groupKill(atMs, woken);
      }
      record.outcome = outcome;
      changes = this.#changes(woken, "SIGKILL");
    } else {
      // complete_signal: from signal->curr_target, the first thread that wants it (wants_signal: not
      // blocked there, and no signal already pending on it), else the queue stays for whoever dequeues next
      const order = Array.from({ length: this.vcpus }, (_, i) => (this.#currTarget + i) % this.vcpus);
      const unblocked = blockedIn(signal, "vcpu") ? [] : order; // every vCPU thread has the same mask
      const v = unblocked.find((i) => this.pendingOf(i).length === 0) ?? unblocked[0];
      if (v !== undefined) {
        this.#currTarget = v;
        record.thread = v;
        record.outcome = "to-vcpu";
        changes = this.send([v], signal, source, atMs);
      }
    }
    return { record, changes };
  }

  /**
   * The vCPU left KVM_RUN (`kvm_eat_signals`), took a signal in the VMM, or died: its pending signals
   * get their outcome. A thread that dies of a coredump-class signal (`via: core-dump`) dumps core:
   * `zap_threads` SIGKILLs every other thread (their wake-ups are in `woken`).
   */
  dequeue(vcpu: number, atMs: number, outcome: Outcome, via: ExitVia): { eaten: SignalName[]; change: PendingChange; woken: PendingChange[] } {
    const killed = outcome === "killed";
    // on the way to userspace the kernel delivers what QEMU handles; a thread that dies drops everything
    const eaten = this.pendingOf(vcpu).filter((s) => killed || VMM_HANDLED_SIGNALS.has(s));
    for (const r of this.records) {
      if (r.vcpu !== vcpu || r.outcome !== null) continue;
      if (!killed && !eaten.includes(r.signal)) continue;
      r.outcome = outcome;
      r.exitAtMs = atMs;
      r.via = via;
      r.latencyUs = Math.max(0, Math.round((atMs - r.sentAtMs) * 1000));
    }
    const set = this.#pending[vcpu];
    for (const s of eaten) set?.delete(s);
    const woken = new Set<number>();
    if (killed && via === "core-dump") {
      this.#groupKill(atMs, woken);
      woken.delete(vcpu);
    }
    const change: PendingChange = { vcpu, kind: "dequeued", fatal: this.fatalPending(vcpu), pending: this.pendingOf(vcpu) };
    return { eaten, change, woken: this.#changes(woken, "SIGKILL") };
  }

  /** The thread group is exiting (`complete_signal`'s promotion, `zap_threads`): SIGKILL on every thread, each woken. */
  #groupKill(atMs: number, woken: Set<number>): void {
    this.#killedAtMs ??= atMs;
    for (let v = 0; v < this.vcpus; v++) {
      this.#pending[v]?.add("SIGKILL");
      woken.add(v);
    }
  }

  #changes(woken: Set<number>, signal: SignalName): PendingChange[] {
    return [...woken].map((v) => ({ vcpu: v, kind: "signal_wake_up", signal, fatal: this.fatalPending(v), pending: this.pendingOf(v) }));
  }
}
