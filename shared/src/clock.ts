/**
 * Scenario time. Every service gets the run's `t0` (epoch ms) at setup and schedules its own
 * timed actions from it, so no central ticker is needed. Epoch time with sub-ms precision
 * (`performance.timeOrigin + performance.now()`); on one host the processes agree to well under a
 * millisecond. On a cluster the hosts' clocks must be synchronised (NTP/PTP) for cross-service
 * latencies to mean anything.
 */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export class RunClock {
  readonly t0: number;
  readonly #timers = new Set<NodeJS.Timeout>();
  #cancelled = false;
  constructor(t0: number) {
    this.t0 = t0;
  }
  /** ms since scenario start (negative before it). */
  now(): number {
    return epochMs() - this.t0;
  }
  /**
   * Runs `fn` at scenario time `atMs` (at once if already past), never before it: Node's timers run
   * off a coarse loop clock and can fire up to a millisecond early, so the remainder is waited out.
   */
  at(atMs: number, fn: () => void): void {
    const arm = () => {
      const left = atMs - this.now();
      if (this.#cancelled) return;
      if (left <= 0) return fn();
      if (left < 1) return void setImmediate(arm);
      const t = setTimeout(() => {
        this.#timers.delete(t);
        arm();
      }, left);
      this.#timers.add(t);
    };
    arm();
  }
  every(periodMs: number, fn: () => void): () => void {
    const t = setInterval(fn, periodMs);
    this.#timers.add(t);
    return () => {
      clearInterval(t);
      this.#timers.delete(t);
    };
  }
  cancelAll(): void {
    this.#cancelled = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}
