/**
 * QEMU's `pause_all_vcpus()` (softmmu/cpus.c): set `cpu->stop` on every vCPU, kick each with
 * SIG_IPI (SIGUSR1), then keep kicking until every vCPU has parked. QEMU re-kicks each time
 * `qemu_pause_cond` is signalled (a vCPU parked); Faultline does that too, and also every
 * `rekickMs`, so that a pause stuck behind an unkickable vCPU shows its growing kick count.
 * Unlike QEMU, vCPUs that already parked are not kicked again (their kick would only stay pending).
 */
import type { Pause } from "@faultline/shared";

/** One pause_all_vcpus / resume_all_vcpus, as the result keeps it. */
export type PauseRecord = Pause;

export interface PausePorts {
  now: () => number;
  /** set cpu->stop on all vCPUs; resolves when the vcpu service has the flag */
  stopAll: () => Promise<void>;
  contAll: () => Promise<void>;
  kick: (vcpus: number[]) => void;
  every: (ms: number, fn: () => void) => () => void;
}

export class PauseController {
  readonly history: PauseRecord[] = [];
  readonly #states = new Map<number, string>();
  #current: PauseRecord | null = null;
  #stopTimer: (() => void) | null = null;

  readonly vcpus: number;
  readonly rekickMs: number;
  readonly ports: PausePorts;

  constructor(vcpus: number, rekickMs: number, ports: PausePorts) {
    this.vcpus = vcpus;
    this.rekickMs = rekickMs;
    this.ports = ports;
  }

  /** Track vCPU states (from `vcpu.state` events); a park may complete the pause. */
  onState(vcpu: number, state: string): void {
    const was = this.#states.get(vcpu);
    this.#states.set(vcpu, state);
    if (was === state) return; // a repeated announcement (resync) is not a park
    if (state === "paused" && this.#current && this.#current.completedAtMs === null) {
      if (this.#unparked().length === 0) this.#complete();
      else this.#kick(); // qemu_cond_wait returned: kick everyone again
    }
  }

  async pause(): Promise<PauseRecord> {
    if (this.#current && this.#current.resumedAtMs === null) return this.#current;
    const rec: PauseRecord = { requestedAtMs: this.ports.now(), completedAtMs: null, latencyUs: null, kicks: 0, resumedAtMs: null };
    this.#current = rec;
    this.history.push(rec);
    await this.ports.stopAll();
    if (this.#unparked().length === 0) {
      this.#complete();
      return rec;
    }
    this.#kick();
    this.#stopTimer = this.ports.every(this.rekickMs, () => this.#kick());
    return rec;
  }

  async resume(): Promise<PauseRecord | null> {
    const rec = this.#current;
    this.#stopTimer?.();
    this.#stopTimer = null;
    await this.ports.contAll();
    if (rec && rec.resumedAtMs === null) rec.resumedAtMs = this.ports.now();
    return rec;
  }

  close(): void {
    this.#stopTimer?.();
  }

  #unparked(): number[] {
    const out: number[] = [];
    for (let v = 0; v < this.vcpus; v++) {
      const s = this.#states.get(v);
      if (s !== "paused") out.push(v);
    }
    return out;
  }

  #kick(): void {
    const rec = this.#current;
    if (!rec || rec.completedAtMs !== null) return;
    // a killed vCPU can never park: stop kicking, the pause will not complete
    if ([...this.#states.values()].includes("killed")) return void this.#stopTimer?.();
    const targets = this.#unparked();
    rec.kicks += targets.length;
    this.ports.kick(targets);
  }

  #complete(): void {
    const rec = this.#current;
    if (!rec) return;
    rec.completedAtMs = this.ports.now();
    rec.latencyUs = Math.round((rec.completedAtMs - rec.requestedAtMs) * 1000);
    this.#stopTimer?.();
    this.#stopTimer = null;
  }
}
