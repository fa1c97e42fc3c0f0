/**
 * The userspace fault handler (the postcopy/demand-paging thread that `read()`s UFFD_EVENT_PAGEFAULT
 * from the userfaultfd): it resolves each page once however many faults ask (later requests for a
 * page in flight are duplicates), picks the resolution ioctl (UFFDIO_POISON, UFFDIO_WRITEPROTECT,
 * UFFDIO_ZEROPAGE, or a fetch from the page source then UFFDIO_COPY / UFFDIO_CONTINUE), and serves
 * the VMM's requests after a KVM_EXIT_MEMORY_FAULT.
 */
import type { ResolveReply } from "@faultline/shared";
import type { Userfaultfd } from "./userfaultfd.ts";

export class FaultHandler {
  readonly #ctx: Userfaultfd;
  readonly #fetch: (gfn: number) => Promise<void>;
  /** pages the handler is resolving now */
  readonly #inflight = new Set<number>();

  constructor(ctx: Userfaultfd, fetch: (gfn: number) => Promise<void>) {
    this.#ctx = ctx;
    this.#fetch = fetch;
  }

  /**
   * The handler read the event and resolves the page once, however many faults ask:
   * UFFDIO_POISON for pages it gives up on, UFFDIO_WRITEPROTECT (WP=0) for a write-protect fault,
   * UFFDIO_ZEROPAGE for zero pages (no fetch), else fetch then UFFDIO_COPY (or CONTINUE in MINOR mode).
   */
  handleEvent(gfn: number, write: boolean): void {
    const ctx = this.#ctx;
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

  /** The handler's UFFDIO_COPY / ZEROPAGE / CONTINUE: the page is no longer in flight, whatever the answer. */
  fill(gfn: number, how: "copy" | "zeropage" | "continue"): "copied" | "EEXIST" {
    this.#inflight.delete(gfn);
    return this.#ctx.copy(gfn, how);
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
    this.handleEvent(gfn, true);
    await arrived;
    return "copied";
  }
}
