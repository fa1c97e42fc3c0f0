/**
 * The uffd side of a slow fault, as one facade over its parts: the userfaultfd context
 * (userfaultfd.ts: pages, `fault_wqh`, UFFDIO_* ioctls, `signal_wake_up` of sleepers), the tasks
 * that fault on it (gup.ts: gup's retry loop, the uaccess busy loop, the async-PF kworker) and the
 * userspace handler that resolves (handler.ts). Pure logic: the page source and the "page became
 * resident" hook are injected, so unit tests drive it without NATS.
 */
import type { GfnRange, ResolveReply, SignalName } from "@faultline/shared";
import { FaultHandler } from "./handler.ts";
import { faultIn, type GupRequest, type GupResult } from "./gup.ts";
import { madviseDontneed, type MmuNotifier } from "./madvise.ts";
import { Userfaultfd, type PagerCounters, type UffdConfig, type UffdWaiter, type WaitHook } from "./userfaultfd.ts";
import type { UffdTopology } from "./wait-queue.ts";

export { WAKE_FLUSH_MS, type PagerCounters, type UffdConfig, type UffdWaiter } from "./userfaultfd.ts";
export type { GupRequest, GupResult } from "./gup.ts";
export type { MmuNotifier } from "./madvise.ts";

export interface UffdPorts {
  fetch: (gfn: number) => Promise<void>;
  onResident: (gfn: number) => void;
  now: () => number;
  /** uffd topology and the modelled wait-queue lock (all zero: not modelled) */
  topology?: UffdTopology;
  config?: Partial<UffdConfig>;
  /** a vCPU task went to sleep in `handle_userfault`, or was woken (null): for live views */
  onWait?: WaitHook;
}

export class Uffd {
  readonly ctx: Userfaultfd;
  readonly handler: FaultHandler;

  constructor(ports: UffdPorts) {
    this.ctx = new Userfaultfd(ports);
    this.handler = new FaultHandler(this.ctx, ports.fetch);
  }

  /** pages present in the uffd-registered range */
  get resident() {
    return this.ctx.resident;
  }
  get counters(): PagerCounters {
    return this.ctx.counters;
  }
  /** UFFD_EVENT_PAGEFAULT messages by `feat.ptid` ("0" without UFFD_FEATURE_THREAD_ID) */
  get eventsByPtid(): Record<string, number> {
    return this.ctx.eventsByPtid;
  }
  /** write-protected present pages (WP mode) */
  get writeProtected() {
    return this.ctx.writeProtected;
  }
  /** PTE_MARKER_UFFD_POISON installed */
  get poisoned() {
    return this.ctx.poisoned;
  }
  get config(): UffdConfig {
    return this.ctx.config;
  }
  /** async-PF kworkers asleep in handle_userfault now */
  get kworkersAsleep(): number {
    return this.ctx.kworkersAsleep;
  }

  /** WP mode: the pages start present and write-protected (UFFDIO_REGISTER_MODE_WP over populated memory). */
  populateWriteProtected(gfns: Iterable<number>): void {
    this.ctx.populateWriteProtected(gfns);
  }

  /** `populateWriteProtected` over whole ranges (the memslots): O(ranges), whatever their size. */
  populateWriteProtectedRanges(ranges: Iterable<GfnRange>): void {
    this.ctx.populateWriteProtectedRanges(ranges);
  }

  /**
   * A task faults a uffd-registered page in: a vCPU's gup (attempt 2), a kernel-mode uaccess
   * (`req.uaccess`) or the async-PF kworker (`req.kworker`); see gup.ts.
   */
  faultIn(req: GupRequest): Promise<GupResult> {
    return faultIn(this.ctx, this.handler, req);
  }

  /** `signal_wake_up(t, fatal)` or a dequeue: update the task's pending view, wake it if its state allows. */
  setPending(vcpu: number, pending: readonly SignalName[], fatal: boolean): void {
    this.ctx.setPending(vcpu, pending, fatal);
  }

  /** The handler's `UFFDIO_COPY` (or ZEROPAGE, or CONTINUE) of one page. */
  copy(gfn: number, how: "copy" | "zeropage" | "continue" = "copy"): "copied" | "EEXIST" | "EAGAIN" {
    return this.handler.fill(gfn, how);
  }

  /** modelled wait-queue lock time over all uffd contexts, ms */
  lockHeldMs(): number {
    return this.ctx.lockHeldMs();
  }

  /** The VMM resolving a KVM_EXIT_MEMORY_FAULT through the handler (see handler.ts). */
  resolve(gfn: number, vcpu = 0): Promise<ResolveReply["result"]> {
    return this.handler.resolve(gfn, vcpu);
  }

  /**
   * MADV_DONTNEED (madvise.ts): UFFD_EVENT_REMOVE read by the handler, then the notifier's start,
   * the pages go, the notifier's end; returns the resident pages dropped.
   */
  madvise(gfns: readonly number[], notifier: MmuNotifier): Promise<number[]> {
    return madviseDontneed(this.ctx, this.handler, gfns, notifier);
  }

  /** Tasks sleeping in `handle_userfault` now. */
  waiters(): UffdWaiter[] {
    return this.ctx.waiters();
  }

  /** uffd released (VM torn down): wake everyone, faults then see the ctx released. */
  release(): void {
    this.ctx.release();
  }
}
