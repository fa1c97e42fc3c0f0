/**
 * Live views announce a condition (a task asleep in `handle_userfault`, a fault in flight, an
 * async-PF halt) only once it has lasted `minMs`, and its end only if its start was announced. A
 * fast fault, which sleeps for well under a millisecond, so sends nothing; a long wait sends two
 * messages. One timer per `Linger`, armed for the oldest condition not yet announced.
 */
import { clock, type ClockTimer } from "./clock.ts";

/** How long a wait must last before live views are told about it, ms. */
export const LIVE_MIN_MS = 10;

export class Linger<K, V> {
  readonly #minMs: number;
  readonly #now: () => number;
  readonly #show: (key: K, value: V | null, ended?: V) => void;
  /** conditions in force: value and when they began (the `now()` clock) */
  readonly #current = new Map<K, { value: V; since: number }>();
  /** what was announced and not yet ended */
  readonly #shown = new Map<K, V>();
  #timer: ClockTimer | null = null;
  #closed = false;

  /** `show(key, value)` announces a condition, `show(key, null, ended)` its end. */
  constructor(minMs: number, now: () => number, show: (key: K, value: V | null, ended?: V) => void) {
    this.#minMs = minMs;
    this.#now = now;
    this.#show = show;
  }

  /** A condition begins (or replaces the one in force for `key`, which then counts as ended). */
  begin(key: K, value: V): void {
    if (this.#closed) return;
    if (this.#current.has(key)) this.end(key);
    this.#current.set(key, { value, since: this.#now() });
    this.#arm();
  }

  /** The condition for `key` ended: announced at once if its start was. */
  end(key: K): void {
    if (!this.#current.delete(key)) return;
    const ended = this.#shown.get(key);
    if (!this.#shown.delete(key) || this.#closed) return;
    this.#show(key, null, ended);
  }

  /** The announced condition of `key`, if any. */
  shown(key: K): V | undefined {
    return this.#shown.get(key);
  }

  /** Every announced condition (a resync re-sends them). */
  allShown(): ReadonlyMap<K, V> {
    return this.#shown;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clock().clear(this.#timer);
    this.#timer = null;
  }

  /** Announces what has lasted long enough, then re-arms for the oldest of the rest. */
  #sweep(): void {
    this.#timer = null;
    if (this.#closed) return;
    const now = this.#now();
    for (const [key, c] of this.#current) {
      if (this.#shown.has(key) || now - c.since < this.#minMs) continue;
      this.#shown.set(key, c.value);
      this.#show(key, c.value);
    }
    this.#arm();
  }

  #arm(): void {
    if (this.#timer || this.#closed) return;
    let oldest = Infinity;
    for (const [key, c] of this.#current) if (!this.#shown.has(key)) oldest = Math.min(oldest, c.since);
    if (oldest === Infinity) return;
    const wait = Math.max(0, oldest + this.#minMs - this.#now());
    this.#timer = clock().setTimeout(() => this.#sweep(), Math.max(1, Math.ceil(wait)));
  }
}
