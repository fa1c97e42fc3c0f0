/**
 * The remote page source (the migration source / snapshot file) and its latency model: a fixed
 * delay per page, and stall windows during which it answers nothing ("postcopy paused"). A request
 * made during a stall, or whose answer falls due during one, is re-sent when the stall ends and
 * then takes the full delay again.
 *
 * Time is the model clock (`clock()`, a test's ManualClock or real time). Delays of 2 ms and more use
 * timers; shorter ones are polled on the next turn (`clock().soon`), because Node's
 * timers have 1 ms granularity and would turn a 200 µs page-in into >= 1 ms.
 */
import { clock, epochMs } from "@faultline/shared";

interface Due {
  at: number;
  gfn: number;
  resolve: () => void;
}

export class PageSource {
  readonly #latencyMs: number;
  #stalled = false;
  #deferred: Due[] = [];
  #due: Due[] = [];
  #polling = false;
  #closed = false;
  /** pages answered */
  answered = 0;

  /** a scheduled stall window covers the run's clock now (its timers may not have fired yet on a loaded machine) */
  readonly #inWindow: () => boolean;

  constructor(latencyUs: number, inWindow: () => boolean = () => false) {
    this.#latencyMs = latencyUs / 1000;
    this.#inWindow = inWindow;
  }

  get stalled(): boolean {
    return this.#stalled;
  }

  /** Resolves when the page's contents arrive. */
  fetch(gfn: number): Promise<void> {
    return new Promise((resolve) => this.#schedule({ at: 0, gfn, resolve }));
  }

  stall(): void {
    this.#stalled = true;
  }

  /** The stall ends (also a scheduled window's end, whose start timer may not have fired): re-send what waited. */
  unstall(): void {
    this.#stalled = false;
    const again = this.#deferred;
    this.#deferred = [];
    for (const d of again) this.#schedule(d);
  }

  close(): void {
    this.#closed = true;
    this.#due = [];
    this.#deferred = [];
  }

  #schedule(d: Due): void {
    if (this.#closed) return;
    if (this.#stalled || this.#inWindow()) return void this.#deferred.push(d);
    d.at = epochMs() + this.#latencyMs;
    if (this.#latencyMs >= 2) {
      clock().setTimeout(() => this.#deliver(d), this.#latencyMs);
      return;
    }
    this.#due.push(d);
    this.#poll();
  }

  #deliver(d: Due): void {
    if (this.#closed) return;
    if (this.#stalled || this.#inWindow()) return void this.#deferred.push(d);
    this.answered++;
    d.resolve();
  }

  #poll(): void {
    if (this.#polling) return;
    this.#polling = true;
    const tick = () => {
      const now = epochMs();
      const ready = this.#due.filter((d) => d.at <= now);
      if (ready.length) this.#due = this.#due.filter((d) => d.at > now);
      for (const d of ready) this.#deliver(d);
      if (this.#due.length && !this.#closed) clock().soon(tick);
      else this.#polling = false;
    };
    clock().soon(tick);
  }
}
