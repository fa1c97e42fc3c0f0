/**
 * The busy loop of a kernel-mode fault with a non-fatal signal pending, as what it costs: for a
 * kernel-mode fault `fault_signal_pending()` is false unless the signal is fatal, so the fault is
 * retried (FAULT_FLAG_TRIED), `handle_userfault` queues a new UFFD_EVENT_PAGEFAULT each pass and its
 * `schedule()` returns at once with the signal pending. The task stays in state R, burns a CPU, and
 * floods the handler with re-faults for the page it already asked for.
 *
 * Modelled in bulk, never one message or promise per event: every SPIN_TICK_MS the task's re-faults
 * since the last tick (`kernel.uaccessSpin.eventsPerSec`) go to the handler in one batch, which
 * reads what its per-message cost allows (reader.ts). A flood beyond the handler's capacity (several
 * spinning tasks, or a slow handler) books its thread up to one tick ahead, so other vCPUs' events
 * wait behind up to a tick's worth of reads (in the kernel, behind one message per spinning task:
 * reads are FIFO; the tick coarsens that). CPU time: spin wall time x `cpuShare`.
 */
import { clock, type ClockTimer } from "@faultline/shared";
import type { FaultHandler } from "./handler.ts";
import type { Userfaultfd } from "./userfaultfd.ts";

/** How often a spinning task's re-faults are handed to the handler, ms. */
export const SPIN_TICK_MS = 10;

export class UaccessSpin {
  readonly #ctx: Userfaultfd;
  readonly #handler: FaultHandler;
  readonly #vcpu: number;
  readonly #since: number;
  #last: number;
  /** fractional re-faults carried to the next tick */
  #carry = 0;
  #timer: ClockTimer | null = null;
  /** re-faults the handler read */
  events = 0;

  constructor(ctx: Userfaultfd, handler: FaultHandler, vcpu: number) {
    this.#ctx = ctx;
    this.#handler = handler;
    this.#vcpu = vcpu;
    this.#since = this.#last = ctx.now();
    if (ctx.config.uaccessSpin.eventsPerSec > 0) {
      this.#timer = clock().setInterval(() => this.#tick(), SPIN_TICK_MS);
    }
  }

  /** The loop ends (the page arrived, a fatal signal, release): the last partial tick; returns the CPU time burnt, ms. */
  stop(): number {
    if (this.#timer) {
      clock().clear(this.#timer);
      this.#timer = null;
      this.#tick();
    }
    return (this.#ctx.now() - this.#since) * this.#ctx.config.uaccessSpin.cpuShare;
  }

  #tick(): void {
    const now = this.#ctx.now();
    const since = this.#last;
    const offered = ((now - since) * this.#ctx.config.uaccessSpin.eventsPerSec) / 1000 + this.#carry;
    this.#last = now;
    const n = Math.floor(offered);
    this.#carry = offered - n;
    if (n > 0 && !this.#ctx.released) this.events += this.#handler.readSpinEvents(this.#vcpu, n, since, SPIN_TICK_MS);
  }
}
