/**
 * The fault handler thread's own time: it `read()`s one `struct uffd_msg` at a time from the
 * userfaultfd (`userfaultfd_ctx_read`), after a poll wakeup, and looks the page up before it acts.
 * `readMs` stands for that per-message cost (poll wakeup + read(2) + the in-flight lookup), a model
 * parameter (scenario `pager.eventReadUs`). The thread is one server: a message waits until the
 * handler has read the ones before it, so a flood of spin re-faults delays other vCPUs' fills.
 */
export class EventReader {
  readonly #readMs: number;
  readonly #now: () => number;
  /** when the handler thread has read everything booked so far */
  #busyUntil = -Infinity;
  /** handler time spent reading, ms */
  busyMs = 0;

  constructor(readMs: number, now: () => number) {
    this.#readMs = Math.max(0, readMs);
    this.#now = now;
  }

  /** One message: how long from now until the handler has read it (0 when the thread is free). */
  one(): number {
    const now = this.#now();
    const start = Math.max(now, this.#busyUntil);
    this.#busyUntil = start + this.#readMs;
    this.busyMs += this.#readMs;
    return this.#busyUntil - now;
  }

  /**
   * A batch of `n` messages queued over [sinceMs, now] (a spin tick's re-faults): the handler reads
   * them from when it was free in that interval on, as many as it can without being booked more than
   * `horizonMs` past now, and returns how many it read. A flood within its capacity leaves it free by
   * now; a bigger one books it ahead, and other messages wait behind. The rest are never read: a
   * spinning task takes its own unread message off the queue when it re-faults (`handle_userfault`'s
   * `list_del(&uwq.wq.entry)`), so the backlog does not grow.
   */
  bulk(n: number, sinceMs: number, horizonMs: number): number {
    if (n <= 0) return 0;
    if (this.#readMs <= 0) return n;
    const now = this.#now();
    const start = Math.max(sinceMs, this.#busyUntil);
    const read = Math.min(n, Math.max(0, Math.floor((now + horizonMs - start) / this.#readMs)));
    if (read > 0) this.#busyUntil = start + read * this.#readMs;
    this.busyMs += read * this.#readMs;
    return read;
  }
}
