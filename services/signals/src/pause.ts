/**
 * QEMU's `pause_all_vcpus()` / `resume_all_vcpus()` (system/cpus.c) and the kick they send:
 *
 * - `pause_all_vcpus`: `cpu->stop = true` and `qemu_cpu_kick` on every vCPU, then, each time
 *   `qemu_pause_cond` is signalled (a vCPU parked: `qemu_cpu_stop`), `qemu_cpu_kick` on every vCPU
 *   again until all are stopped. There is no timed re-kick (`rekickMs` is an opt-in extra).
 * - `cpus_kick_thread`: returns early while `cpu->thread_kicked` is set; the vCPU thread clears it in
 *   `qemu_wait_io_event_common` (`qemu_process_cpu_events_common` in current QEMU), i.e. each time
 *   it comes back from `kvm_cpu_exec` or out of its park. A vCPU stuck in KVM_RUN is kicked once.
 * - `resume_all_vcpus` → `cpu_resume`: `cpu->stop = false` and `qemu_cpu_kick` again.
 *
 * `kicks` counts the SIG_IPIs sent (pthread_kill calls), `kicksSkipped` the early returns.
 */
import type { Pause } from "@faultline/shared";

/** One pause_all_vcpus / resume_all_vcpus, as the result keeps it. */
export type PauseRecord = Pause;

export interface PausePorts {
  now: () => number;
  /** set cpu->stop on all vCPUs; resolves when the vcpu service has the flag */
  stopAll: () => Promise<void>;
  contAll: () => Promise<void>;
  /** pthread_kill(SIG_IPI) to these vCPU threads */
  kick: (vcpus: number[]) => void;
  every: (ms: number, fn: () => void) => () => void;
}

export class PauseController {
  readonly history: PauseRecord[] = [];
  readonly #states = new Map<number, string>();
  /** `cpu->thread_kicked` */
  readonly #kicked = new Set<number>();
  readonly #onComplete: Array<(rec: PauseRecord) => void> = [];
  #current: PauseRecord | null = null;
  /** resumes requested while the pause was incomplete */
  readonly #waiting: Array<() => void> = [];
  #closed = false;
  #stopTimer: (() => void) | null = null;

  readonly vcpus: number;
  readonly rekickMs: number | undefined;
  readonly ports: PausePorts;

  constructor(vcpus: number, rekickMs: number | undefined, ports: PausePorts) {
    this.vcpus = vcpus;
    this.rekickMs = rekickMs;
    this.ports = ports;
  }

  /** Called once per pause when every vCPU has parked. */
  onComplete(fn: (rec: PauseRecord) => void): void {
    this.#onComplete.push(fn);
  }

  /** Track vCPU states (from `vcpu.state` events); a park may complete the pause. */
  onState(vcpu: number, state: string): void {
    const was = this.#states.get(vcpu);
    this.#states.set(vcpu, state);
    if (was === state) return; // a repeated announcement (resync) is not a park
    // parking and unparking both pass through qemu_wait_io_event_common (a vCPU that goes back to
    // "running" from a halt inside KVM_RUN does not: kvm_cpu_exec has not returned)
    if (state === "paused" || (state === "running" && was === "paused")) this.#kicked.delete(vcpu);
    if (state === "paused" && this.#current && this.#current.completedAtMs === null) {
      if (this.#unparked().length === 0) this.#complete();
      else this.#kickAll(); // qemu_cond_wait(&qemu_pause_cond) returned: CPU_FOREACH qemu_cpu_kick
    }
  }

  /**
   * The vCPU thread came back from `kvm_cpu_exec` (KVM_RUN returned -EINTR): `qemu_wait_io_event_common`
   * clears thread_kicked. While a pause is in progress (`cpu->stop` set) the same BQL section also
   * parks the thread (`qemu_cpu_stop`), so the main thread never sees it cleared but not stopped:
   * then the clear is left to the park (`onState("paused")`).
   */
  leftKvmRun(vcpu: number): void {
    if (this.#current && this.#current.resumedAtMs === null) return;
    this.#kicked.delete(vcpu);
  }

  /** A resume waits for the incomplete pause. */
  get resumeDeferred(): boolean {
    return this.#waiting.length > 0;
  }

  /** Whether cpu->thread_kicked is set for this vCPU. */
  kicked(vcpu: number): boolean {
    return this.#kicked.has(vcpu);
  }

  async pause(): Promise<PauseRecord> {
    if (this.#current && this.#current.resumedAtMs === null) return this.#current;
    const rec: PauseRecord = { requestedAtMs: this.ports.now(), completedAtMs: null, latencyUs: null, kicks: 0, kicksSkipped: 0, resumedAtMs: null };
    this.#current = rec;
    this.history.push(rec);
    await this.ports.stopAll();
    if (this.#unparked().length === 0) {
      this.#complete();
      return rec;
    }
    this.#kickAll();
    if (this.rekickMs !== undefined) this.#stopTimer = this.ports.every(this.rekickMs, () => this.#kickAll());
    return rec;
  }

  /**
   * `resume_all_vcpus` → `cpu_resume` on each vCPU: the kick (subject to thread_kicked), and cpu->stop = false.
   * QEMU's main loop runs the resume (`cont`, a timer, a shutdown) only once `pause_all_vcpus` has
   * returned: while a pause is incomplete the resume waits for it (`resumeRequestedAtMs` says when it was asked).
   */
  async resume(): Promise<PauseRecord | null> {
    const rec = this.#current;
    if (rec && rec.completedAtMs === null && rec.resumedAtMs === null) {
      rec.resumeRequestedAtMs ??= this.ports.now();
      await new Promise<void>((done) => this.#waiting.push(done));
      if (this.#closed) return rec;
    }
    this.#stopTimer?.();
    this.#stopTimer = null;
    if (rec && rec.resumedAtMs === null) this.#send(rec);
    await this.ports.contAll();
    if (rec && rec.resumedAtMs === null) rec.resumedAtMs = this.ports.now();
    return rec;
  }

  close(): void {
    this.#closed = true;
    this.#stopTimer?.();
    for (const w of this.#waiting.splice(0)) w();
  }

  #unparked(): number[] {
    const out: number[] = [];
    for (let v = 0; v < this.vcpus; v++) {
      const s = this.#states.get(v);
      if (s !== "paused") out.push(v);
    }
    return out;
  }

  #kickAll(): void {
    const rec = this.#current;
    if (!rec || rec.completedAtMs !== null) return;
    // a killed vCPU can never park: stop kicking, the pause will not complete
    if ([...this.#states.values()].includes("killed")) return void this.#stopTimer?.();
    this.#send(rec);
  }

  /** `qemu_cpu_kick` on every vCPU → `cpus_kick_thread`. */
  #send(rec: PauseRecord): void {
    const targets: number[] = [];
    for (let v = 0; v < this.vcpus; v++) {
      if (this.#states.get(v) === "killed") continue;
      if (this.#kicked.has(v)) {
        rec.kicksSkipped = (rec.kicksSkipped ?? 0) + 1;
        continue;
      }
      this.#kicked.add(v);
      targets.push(v);
    }
    rec.kicks += targets.length;
    if (targets.length > 0) this.ports.kick(targets);
  }

  #complete(): void {
    const rec = this.#current;
    if (!rec) return;
    rec.completedAtMs = this.ports.now();
    rec.latencyUs = Math.round((rec.completedAtMs - rec.requestedAtMs) * 1000);
    this.#stopTimer?.();
    this.#stopTimer = null;
    for (const fn of this.#onComplete) fn(rec);
    for (const w of this.#waiting.splice(0)) w();
  }
}
