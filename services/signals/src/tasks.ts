/**
 * `kernel/signal.c` for one VM's vCPU tasks: per-task pending sets, `complete_signal` (a fatal
 * signal takes down the whole thread group: SIGKILL is queued on every task and each is woken),
 * `signal_wake_up`, and the record of every signal sent with its outcome. Standard signals do not
 * queue twice: a second SIGUSR1 while one is pending coalesces with it (and shares its outcome).
 */
import { isFatal, type ExitVia, type MessageBody, type SignalExitOutcome, type SignalName, type SignalRecord, type SignalSourceName, type WakeMsg } from "@faultline/shared";

export type { SignalRecord } from "@faultline/shared";
/** KVM_EXIT_INTR: the signal got the vCPU out of KVM_RUN; delivered-in-vmm: it was outside KVM_RUN, in the VMM, with the signal unblocked. */
export type Outcome = SignalExitOutcome;
/** A task's pending set changed: the WakeMsg published to the pager and the vcpu service. */
export type PendingChange = MessageBody<WakeMsg>;

export class Tasks {
  readonly records: SignalRecord[] = [];
  readonly #pending: Array<Set<SignalName>>;
  #killedAtMs: number | null = null;

  readonly vcpus: number;

  constructor(vcpus: number) {
    this.vcpus = vcpus;
    this.#pending = Array.from({ length: vcpus }, () => new Set<SignalName>());
  }

  get vmKilled(): boolean {
    return this.#killedAtMs !== null;
  }

  pendingOf(vcpu: number): SignalName[] {
    return [...(this.#pending[vcpu] ?? [])];
  }

  fatalPending(vcpu: number): boolean {
    return this.pendingOf(vcpu).some((s) => isFatal(s));
  }

  /** `send_signal` to each target task; returns the wake-ups to publish. */
  send(targets: readonly number[], signal: SignalName, source: SignalSourceName, atMs: number): PendingChange[] {
    const woken = new Set<number>();
    for (const v of targets) {
      this.records.push({ vcpu: v, signal, source, sentAtMs: atMs, outcome: null, exitAtMs: null, via: null, latencyUs: null });
      this.#pending[v]?.add(signal);
      woken.add(v);
    }
    if (isFatal(signal)) {
      // complete_signal: the group is dying; SIGKILL every thread and wake each one
      this.#killedAtMs ??= atMs;
      for (let v = 0; v < this.vcpus; v++) {
        this.#pending[v]?.add("SIGKILL");
        woken.add(v);
      }
    }
    return [...woken].map((v) => ({ vcpu: v, kind: "signal_wake_up", signal, fatal: this.fatalPending(v), pending: this.pendingOf(v) }));
  }

  /** The vCPU left KVM_RUN (`kvm_eat_signals`) or died: its pending signals get their outcome. */
  dequeue(vcpu: number, atMs: number, outcome: Outcome, via: ExitVia): { eaten: SignalName[]; change: PendingChange } {
    const eaten = this.pendingOf(vcpu).filter((s) => outcome === "killed" || !isFatal(s));
    for (const r of this.records) {
      if (r.vcpu !== vcpu || r.outcome !== null) continue;
      if (outcome !== "killed" && isFatal(r.signal)) continue;
      r.outcome = outcome;
      r.exitAtMs = atMs;
      r.via = via;
      r.latencyUs = Math.max(0, Math.round((atMs - r.sentAtMs) * 1000));
    }
    const set = this.#pending[vcpu];
    for (const s of eaten) set?.delete(s);
    return { eaten, change: { vcpu, kind: "dequeued", fatal: this.fatalPending(vcpu), pending: this.pendingOf(vcpu) } };
  }
}
