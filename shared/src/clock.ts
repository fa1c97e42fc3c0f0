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
  #t0: number | null = null;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #queued: Array<[number, () => void]> = [];
  #cancelled = false;
  /** `t0` now, or later with `start(t0)`: timed actions wait for it (the run starts when every service has the VM). */
  constructor(t0?: number) {
    if (t0 !== undefined) this.#t0 = t0;
  }
  get t0(): number {
    return this.#t0 ?? epochMs();
  }
  get started(): boolean {
    return this.#t0 !== null;
  }
  /** Scenario time 0 is `t0` (epoch ms): arms every action queued with `at` so far. */
  start(t0: number): void {
    if (this.#t0 !== null) return;
    this.#t0 = t0;
    for (const [atMs, fn] of this.#queued.splice(0)) this.at(atMs, fn);
  }
  /** ms since scenario start (negative before it; 0 until started). */
  now(): number {
    return this.#t0 === null ? 0 : epochMs() - this.#t0;
  }
  /**
   * Runs `fn` at scenario time `atMs` (at once if already past), never before it: Node's timers run
   * off a coarse loop clock and can fire up to a millisecond early, so the remainder is waited out.
   * Before `start`, the action waits for it.
   */
  at(atMs: number, fn: () => void): void {
    if (this.#t0 === null) return void this.#queued.push([atMs, fn]);
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
    this.#queued.length = 0;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}

/**
 * Waits `ms` with sub-millisecond precision: timers for the bulk (they have 1 ms granularity and
 * can fire early), then `setImmediate` turns until the deadline. Used for modelled delays.
 */
export function sleepPrecise(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  const until = epochMs() + ms;
  return new Promise((resolve) => {
    const poll = () => {
      const left = until - epochMs();
      if (left <= 0) return resolve();
      if (left >= 2) setTimeout(poll, left - 1);
      else setImmediate(poll);
    };
    poll();
  });
}

/** A FIFO lock whose holders hold it for a modelled time: serialises what contends for it. */
export class ModelledLock {
  #tail: Promise<void> = Promise.resolve();
  /** total modelled hold time, ms */
  heldMs = 0;
  /** acquisitions */
  acquisitions = 0;

  /** Queues behind earlier holders, holds for `ms`, resolves on release. */
  hold(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    this.acquisitions++;
    this.heldMs += ms;
    const run = this.#tail.then(() => sleepPrecise(ms));
    this.#tail = run;
    return run;
  }
}
