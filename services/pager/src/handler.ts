/**
 * The userspace fault handler (the postcopy/demand-paging thread that `read()`s UFFD_EVENT_PAGEFAULT
 * from the userfaultfd): it resolves each page once however many faults ask (later requests for a
 * page in flight are duplicates), picks the resolution ioctl (UFFDIO_POISON, UFFDIO_WRITEPROTECT,
 * UFFDIO_ZEROPAGE, or a fetch from the page source then UFFDIO_COPY / UFFDIO_CONTINUE), and serves
 * the VMM's requests after a KVM_EXIT_MEMORY_FAULT. Each uffd message costs the handler thread a read
 * (reader.ts), a UFFD_EVENT_REMOVE included; a fill that gets -EAGAIN (a REMOVE not yet read) is
 * retried once the handler has read the REMOVE.
 */
import { clock, type ResolveReply } from "@faultline/shared";
import { EventReader } from "./reader.ts";
import { SpinFlood } from "./spin.ts";
import type { Userfaultfd } from "./userfaultfd.ts";

/** A read that would end sooner than this is done at once: below a timer's resolution. */
const DEFER_MIN_MS = 1;

type FillHow = "copy" | "zeropage" | "continue";

export class FaultHandler {
  readonly #ctx: Userfaultfd;
  readonly #fetch: (gfn: number) => Promise<void>;
  /** pages the handler is resolving now */
  readonly #inflight = new Set<number>();
  readonly reader: EventReader;
  /** the re-faults of tasks busy-looping in a kernel-mode fault, read in bulk (spin.ts) */
  readonly flood: SpinFlood;
  /** fills that failed -EAGAIN, retried once the pending UFFD_EVENT_REMOVEs are read */
  #eagain: Array<[number, FillHow]> = [];

  constructor(ctx: Userfaultfd, fetch: (gfn: number) => Promise<void>) {
    this.#ctx = ctx;
    this.#fetch = fetch;
    this.reader = new EventReader(ctx.config.eventReadMs, ctx.now);
    this.flood = new SpinFlood(ctx, this.reader);
  }

  /** A UFFD_EVENT_PAGEFAULT was queued: the handler reads it (after the messages before it), then serves it. */
  handleEvent(gfn: number, write: boolean): void {
    this.#afterRead(() => this.#serve(gfn, write));
  }

  /**
   * The UFFD_EVENT_REMOVE that `userfaultfd_remove` queued: resolves once the handler has read it
   * (`read()` returns pending faults before events, so it waits behind them), which lowers
   * `mmap_changing`; then the fills that got -EAGAIN meanwhile are retried.
   */
  readRemove(): Promise<void> {
    return new Promise((resolve) =>
      this.#afterRead(() => {
        this.#ctx.removeRead();
        this.#retryEagain();
        resolve();
      }),
    );
  }

  /** Runs `f` once the handler thread has read the message just queued: at once, or after the reads booked before it. */
  #afterRead(f: () => void): void {
    const wait = this.reader.one();
    if (wait < DEFER_MIN_MS) return f();
    clock().setTimeout(f, wait);
  }

  #retryEagain(): void {
    if (this.#ctx.mmapChanging > 0 || !this.#eagain.length) return;
    const retry = this.#eagain;
    this.#eagain = [];
    for (const [gfn, how] of retry) if (!this.#ctx.released) this.fill(gfn, how);
  }

  /**
   * The handler read the event and resolves the page once, however many faults ask:
   * UFFDIO_POISON for pages it gives up on, UFFDIO_WRITEPROTECT (WP=0) for a write-protect fault,
   * UFFDIO_ZEROPAGE for zero pages (no fetch), else fetch then UFFDIO_COPY (or CONTINUE in MINOR mode).
   */
  #serve(gfn: number, write: boolean): void {
    const ctx = this.#ctx;
    if (ctx.released) return;
    if (this.#inflight.has(gfn)) {
      ctx.counters.duplicateRequests++;
      return;
    }
    this.#inflight.add(gfn);
    const config = ctx.config;
    if (config.poison.has(gfn)) return void queueMicrotask(() => this.poison(gfn));
    if (config.mode === "wp" && ctx.resident.has(gfn) && write) {
      void this.#fetch(gfn).then(() => this.unprotect(gfn)); // e.g. copy the old contents out first
      return;
    }
    if (config.isZero(gfn)) return void queueMicrotask(() => this.fill(gfn, "zeropage"));
    void this.#fetch(gfn).then(() => {
      if (!ctx.released) this.fill(gfn, config.mode === "minor" ? "continue" : "copy");
    });
  }

  /**
   * The handler's UFFDIO_COPY / ZEROPAGE / CONTINUE: the page is no longer in flight, whatever the
   * answer, except -EAGAIN: then the handler keeps it and retries after reading the pending REMOVE.
   */
  fill(gfn: number, how: FillHow): "copied" | "EEXIST" | "EAGAIN" {
    const r = this.#ctx.copy(gfn, how);
    if (r === "EAGAIN") this.#eagain.push([gfn, how]);
    else this.#inflight.delete(gfn);
    return r;
  }

  /** The handler gives up on the page: UFFDIO_POISON. */
  poison(gfn: number): void {
    this.#inflight.delete(gfn);
    this.#ctx.poison(gfn);
  }

  /** A write-protect fault resolved: UFFDIO_WRITEPROTECT (WP=0). */
  unprotect(gfn: number): void {
    this.#inflight.delete(gfn);
    this.#ctx.unprotect(gfn);
  }

  /**
   * The VMM resolving a KVM_EXIT_MEMORY_FAULT (proposed designs): no task sleeps in the uffd; the
   * handler fetches the page (sharing a fetch already in flight) and installs it with UFFDIO_COPY.
   */
  async resolve(gfn: number, vcpu = 0): Promise<ResolveReply["result"]> {
    const ctx = this.#ctx;
    ctx.counters.vmmRequests++;
    ctx.queues.notePage(gfn, vcpu);
    if (ctx.resident.has(gfn)) {
      ctx.counters.eexist++;
      return "present";
    }
    const arrived = ctx.arrival(gfn);
    this.#serve(gfn, true); // a request on the VMM's own channel, not a uffd message
    await arrived;
    return "copied";
  }
}
