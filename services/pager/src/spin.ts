/**
 * The busy loop of a kernel-mode fault with a non-fatal signal pending, as what it costs: for a
 * kernel-mode fault `fault_signal_pending()` is false unless the signal is fatal, so the fault is
 * retried (FAULT_FLAG_TRIED), `handle_userfault` queues a new UFFD_EVENT_PAGEFAULT each pass and its
 * `schedule()` returns at once with the signal pending. The task stays in state R, burns a CPU, and
 * floods the handler with re-faults for the page it already asked for.
 *
 * Modelled in bulk, never one message or promise per event: every SPIN_TICK_MS the re-faults of
 * every spinning task since the last tick (`kernel.uaccessSpin.eventsPerSec` each) go to the handler
 * as one batch, which reads what its per-message cost allows (reader.ts); what it reads is shared
 * among the tasks in proportion to what each queued (its reads are FIFO). A flood beyond the
 * handler's capacity (several spinning tasks, or a slow handler) books its thread up to one tick
 * ahead, so other vCPUs' events wait behind up to a tick's worth of reads (in the kernel, behind one
 * message per spinning task; the tick coarsens that). CPU time: spin wall time x `cpuShare`.
 */
import { clock, type ClockTimer } from "@faultline/shared";
import type { EventReader } from "./reader.ts";
import type { Userfaultfd } from "./userfaultfd.ts";

/** How often the spinning tasks' re-faults are handed to the handler, ms. */
export const SPIN_TICK_MS = 10;

interface Spinner {
  vcpu: number;
  since: number;
  /** fractional re-faults carried to the next tick */
  carry: number;
}

export class SpinFlood {
  readonly #ctx: Userfaultfd;
  readonly #reader: EventReader;
  readonly #spinners = new Set<Spinner>();
  #timer: ClockTimer | null = null;
  #last = 0;

  constructor(ctx: Userfaultfd, reader: EventReader) {
    this.#ctx = ctx;
    this.#reader = reader;
  }

  /** A task enters the loop; the function returned ends it (the page arrived, a fatal signal, release) and gives the CPU time burnt, ms. */
  start(vcpu: number): () => number {
    this.#tick(); // the others' re-faults up to now, before the set changes
    const now = this.#ctx.now();
    const s: Spinner = { vcpu, since: now, carry: 0 };
    if (!this.#spinners.size) this.#last = now;
    this.#spinners.add(s);
    if (!this.#timer && this.#ctx.config.uaccessSpin.eventsPerSec > 0) this.#timer = clock().setInterval(() => this.#tick(), SPIN_TICK_MS);
    return () => {
      if (!this.#spinners.has(s)) return 0;
      this.#tick();
      this.#spinners.delete(s);
      if (!this.#spinners.size && this.#timer) {
        clock().clear(this.#timer);
        this.#timer = null;
      }
      return (this.#ctx.now() - s.since) * this.#ctx.config.uaccessSpin.cpuShare;
    };
  }

  /** tasks in the loop now */
  get spinning(): number {
    return this.#spinners.size;
  }

  #tick(): void {
    const ctx = this.#ctx;
    const now = ctx.now();
    const since = this.#last;
    this.#last = now;
    const rate = ctx.config.uaccessSpin.eventsPerSec;
    if (!this.#spinners.size || now <= since || rate <= 0 || ctx.released) return;
    const queued: Array<[Spinner, number]> = [];
    let total = 0;
    for (const s of this.#spinners) {
      const x = ((now - since) * rate) / 1000 + s.carry;
      const n = Math.floor(x);
      s.carry = x - n;
      queued.push([s, n]);
      total += n;
    }
    if (!total) return;
    const read = this.#reader.bulk(total, since, SPIN_TICK_MS);
    // FIFO reads: each task gets its share of what was read; the rest are taken off the queue unread
    let left = read;
    const shares = queued.map(([s, n]) => {
      const r = Math.floor((read * n) / total);
      left -= r;
      return [s, n, r] as const;
    });
    for (const [s, n, r0] of shares) {
      const extra = left > 0 && r0 < n ? 1 : 0;
      left -= extra;
      const r = r0 + extra;
      if (r <= 0) continue;
      ctx.countEvent(s.vcpu, r);
      ctx.counters.spinRefaults += r;
    }
  }
}
