/**
 * Model time: one clock per process, injectable. Every service gets the run's `t0` (epoch ms) at
 * `start` and schedules its own timed actions from it, so no central ticker is needed. The real clock
 * is epoch time with sub-ms precision (`performance.timeOrigin + performance.now()`); on one host the
 * processes agree to well under a millisecond; on a cluster the hosts' clocks must be synchronised
 * (NTP/PTP) for cross-service latencies to mean anything. Tests inject a `ManualClock` and move time
 * themselves, so what they check is the order of events, never a wall-clock window.
 *
 * What measures the testbed itself (event-loop delay, the stall detector, request deadlines, liveness)
 * stays on real time on purpose: it must see the real machine.
 */
export type ClockTimer = { readonly id: number } | NodeJS.Timeout;

export interface Clock {
  /** epoch ms */
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  setInterval(fn: () => void, ms: number): ClockTimer;
  clear(t: ClockTimer): void;
  /** "look again shortly": the next event-loop turn in real time */
  soon(fn: () => void): void;
}

export const realClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clear: (t) => clearTimeout(t as NodeJS.Timeout),
  soon: (fn) => void setImmediate(fn),
};

let current: Clock = realClock;

/** The process's model clock. */
export function clock(): Clock {
  return current;
}

/** Injects a clock (a test's ManualClock); returns what puts the previous one back. */
export function setClock(c: Clock): () => void {
  const prev = current;
  current = c;
  return () => void (current = prev);
}

/** Model time now, epoch ms. */
export function epochMs(): number {
  return current.now();
}

/**
 * A clock that moves only when told (`advance`): timers fire in time order, each at its own time.
 * `soon` is a timer a microsecond later, so a polling loop advances with the clock instead of spinning.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void; every: number | null }>();
  constructor(startMs = 1_700_000_000_000) {
    this.#now = startMs;
  }
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, null);
  }
  setInterval(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, Math.max(ms, 0.001));
  }
  clear(t: ClockTimer): void {
    this.#timers.delete((t as { id: number }).id);
  }
  soon(fn: () => void): void {
    this.#add(fn, 0.001, null);
  }
  /** timers not yet fired */
  get pending(): number {
    return this.#timers.size;
  }
  /**
   * Moves time forward by `ms`, firing every timer due on the way in time order (ties in the order
   * they were set), and lets the promise chains they start settle after each one.
   */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void; every: number | null }] | null = null;
      for (const e of this.#timers) if (e[1].at <= until && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      const [id, t] = next;
      this.#now = Math.max(this.#now, t.at);
      if (t.every === null) this.#timers.delete(id);
      else t.at += t.every;
      t.fn();
      for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
    }
    this.#now = until;
  }
  #add(fn: () => void, ms: number, every: number | null): ClockTimer {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(ms, 0), fn, every });
    return { id };
  }
}

export class RunClock {
  #t0: number | null = null;
  readonly #timers = new Set<ClockTimer>();
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
      if (left < 1) return void clock().soon(arm);
      const t = clock().setTimeout(() => {
        this.#timers.delete(t);
        arm();
      }, left);
      this.#timers.add(t);
    };
    arm();
  }
  every(periodMs: number, fn: () => void): () => void {
    const t = clock().setInterval(fn, periodMs);
    this.#timers.add(t);
    return () => {
      clock().clear(t);
      this.#timers.delete(t);
    };
  }
  cancelAll(): void {
    this.#cancelled = true;
    this.#queued.length = 0;
    for (const t of this.#timers) clock().clear(t);
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
      if (left >= 2) clock().setTimeout(poll, left - 1);
      else clock().soon(poll);
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
