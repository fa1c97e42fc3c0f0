/**
 * One userfaultfd context (`struct userfaultfd_ctx`, fs/userfaultfd.c): the pages of the registered
 * range (resident, write-protected, poisoned), `fault_wqh` with the tasks asleep in
 * `handle_userfault` and `userfaultfd_wake_function`, the fill ioctls (UFFDIO_COPY, ZEROPAGE,
 * CONTINUE, WRITEPROTECT, POISON, WAKE), each task's pending-signal view (`signal_wake_up`),
 * `mmap_changing` (raised by `userfaultfd_remove` until the handler reads the UFFD_EVENT_REMOVE), and
 * release. Who fills and when is the handler's business (handler.ts); who sleeps is gup.ts's.
 */
import { PageSet, type GfnRange, type PagerReport, type PagerResult, type Scenario, type SignalName, type WaitState } from "@faultline/shared";
import { WaitQueues, type UffdTopology } from "./wait-queue.ts";

/** A task asleep in `handle_userfault`, as the pager reports it. */
export type UffdWaiter = PagerReport["waiters"][number];

/** The context's own counters: the pager's result counters less those computed at report time. */
export type PagerCounters = Omit<PagerResult, "resident" | "eventsByPtid" | "waitQueueLockMs" | "lostFetches">;

/** What the uffd was registered for and how the handler resolves (scenario `pager`). */
export interface UffdConfig {
  mode: Scenario["pager"]["mode"];
  /** UFFD_FEATURE_THREAD_ID: events carry the faulting task's ptid */
  threadId: boolean;
  /** UFFD_FEATURE_SIGBUS: no events; a missing page is VM_FAULT_SIGBUS */
  sigbus: boolean;
  /** the source reports this page as zero: UFFDIO_ZEROPAGE without a fetch */
  isZero: (gfn: number) => boolean;
  /** the handler resolves these with UFFDIO_POISON */
  poison: ReadonlySet<number>;
  /** 1: fills wake; N: *_MODE_DONTWAKE fills and one UFFDIO_WAKE per N pages (or per flush) */
  wakeBatch: number;
  /** a partial batch is woken after this long */
  wakeFlushMs: number;
  /** the handler thread's time per uffd message read, ms (scenario pager.eventReadUs); 0: not modelled */
  eventReadMs: number;
  /** the busy loop of a kernel-mode fault under a non-fatal signal (scenario kernel.uaccessSpin); eventsPerSec 0: no flood modelled */
  uaccessSpin: { eventsPerSec: number; cpuShare: number };
}

/** A partial UFFDIO_WAKE batch is flushed after this long. */
export const WAKE_FLUSH_MS = 1;

const DEFAULT_CONFIG: UffdConfig = {
  mode: "missing", threadId: false, sigbus: false, isZero: () => false, poison: new Set(), wakeBatch: 1, wakeFlushMs: WAKE_FLUSH_MS,
  // in-process defaults: nothing modelled (the services take the scenario's measured defaults)
  eventReadMs: 0, uaccessSpin: { eventsPerSec: 0, cpuShare: 1 },
};

/** The task's pending set as `signal_pending()` / `fatal_signal_pending()` see it. */
export interface SigView {
  any: boolean;
  fatal: boolean;
}

const NO_SIGNAL: SigView = { any: false, fatal: false };

interface Waiter {
  vcpu: number;
  /** the vCPU whose uffd context the waiter sleeps on (a kworker sleeps on its vCPU's) */
  ctxVcpu: number;
  gfn: number;
  state: WaitState;
  sinceMs: number;
  wake: () => void;
}

export interface UserfaultfdPorts {
  /** the page became resident or writable: announce it (the mmu's host-page-table mirror) */
  onResident: (gfn: number) => void;
  now: () => number;
  topology?: UffdTopology;
  config?: Partial<UffdConfig>;
  /** a vCPU task went to sleep in `handle_userfault` (`state`), or was woken (null): for live views */
  onWait?: WaitHook;
}

/** Told when a vCPU task (not a kworker) sleeps or is woken. */
export type WaitHook = (vcpu: number, gfn: number, state: WaitState | null) => void;

export class Userfaultfd {
  /** pages present in the uffd-registered range (ranges: memory follows runs of pages, not pages) */
  readonly resident = new PageSet();
  readonly counters: PagerCounters = {
    faultEvents: 0, copies: 0, zeropages: 0, continues: 0, eexist: 0, wakes: 0, duplicateRequests: 0, vmmRequests: 0, removes: 0,
    writeprotects: 0, poisons: 0, wakeCalls: 0, spinRefaults: 0, removeEvents: 0, eagain: 0,
  };
  /** UFFD_EVENT_PAGEFAULT messages by `feat.ptid` ("0" without UFFD_FEATURE_THREAD_ID) */
  readonly eventsByPtid: Record<string, number> = {};
  /** write-protected present pages (WP mode) */
  readonly writeProtected = new PageSet();
  /** PTE_MARKER_UFFD_POISON installed */
  readonly poisoned = new PageSet();
  readonly config: UffdConfig;
  readonly queues: WaitQueues;
  /** async-PF kworkers asleep in handle_userfault now */
  kworkersAsleep = 0;
  /** `ctx->mmap_changing`: UFFD_EVENT_REMOVEs queued by `userfaultfd_remove` and not yet read; UFFDIO_COPY fails -EAGAIN meanwhile */
  mmapChanging = 0;
  released = false;
  readonly now: () => number;
  #wakeQueue: number[] = [];
  #wakeTimer: NodeJS.Timeout | null = null;
  readonly #waiters = new Map<number, Set<Waiter>>();
  readonly #byTask = new Map<number, Waiter>();
  /** VMM resolvers waiting for a page (KVM_EXIT_MEMORY_FAULT), woken with the page's waiters */
  readonly #listeners = new Map<number, Set<() => void>>();
  readonly #pending = new Map<number, SigView>();
  readonly #onResident: (gfn: number) => void;
  readonly #onWait: WaitHook;

  constructor(ports: UserfaultfdPorts) {
    this.#onResident = ports.onResident;
    this.#onWait = ports.onWait ?? (() => undefined);
    this.now = ports.now;
    this.config = { ...DEFAULT_CONFIG, ...ports.config };
    this.queues = new WaitQueues(ports.topology);
  }

  /** WP mode: the pages start present and write-protected (UFFDIO_REGISTER_MODE_WP over populated memory). */
  populateWriteProtected(gfns: Iterable<number>): void {
    for (const g of gfns) {
      this.resident.add(g);
      this.writeProtected.add(g);
    }
  }

  /** `populateWriteProtected` over whole ranges (the memslots): O(ranges), whatever their size. */
  populateWriteProtectedRanges(ranges: Iterable<GfnRange>): void {
    for (const [a, b] of ranges) {
      this.resident.addRange(a, b);
      this.writeProtected.addRange(a, b);
    }
  }

  /** faultin_page would map it now: present, and writable if it is a write. */
  present(gfn: number, write: boolean): boolean {
    return this.resident.has(gfn) && !(write && this.writeProtected.has(gfn));
  }

  /** `userfaultfd_msg`: `n` UFFD_EVENT_PAGEFAULTs queued, by ptid (`vcpu` -1: the kworker). */
  countEvent(vcpu: number, n = 1): void {
    this.counters.faultEvents += n;
    const ptid = !this.config.threadId ? "0" : vcpu < 0 ? "kworker" : `vcpu${vcpu}`;
    this.eventsByPtid[ptid] = (this.eventsByPtid[ptid] ?? 0) + n;
  }

  /** `signal_wake_up(t, fatal)` or a dequeue: update the task's pending view, wake it if its state allows. */
  setPending(vcpu: number, pending: readonly SignalName[], fatal: boolean): void {
    const sig = { any: pending.length > 0, fatal };
    this.#pending.set(vcpu, sig);
    const w = this.#byTask.get(vcpu);
    if (w && wakesFor(w.state, sig)) this.#wakeOne(w);
  }

  sig(vcpu: number): SigView {
    return this.#pending.get(vcpu) ?? NO_SIGNAL;
  }

  /**
   * `UFFDIO_COPY` (or ZEROPAGE, or CONTINUE) of one page. It wakes the page's waiters itself unless
   * the handler batches wakes (`*_MODE_DONTWAKE`, then one `UFFDIO_WAKE` over the batch).
   */
  copy(gfn: number, how: "copy" | "zeropage" | "continue"): "copied" | "EEXIST" | "EAGAIN" {
    // mfill_atomic: `if (atomic_read(&ctx->mmap_changing)) goto out_unlock;` with err = -EAGAIN (a REMOVE is pending)
    if (this.mmapChanging > 0) {
      this.counters.eagain++;
      return "EAGAIN";
    }
    if (this.resident.has(gfn)) {
      this.counters.eexist++;
      return "EEXIST";
    }
    this.resident.add(gfn);
    if (how === "copy") this.counters.copies++;
    else if (how === "zeropage") this.counters.zeropages++;
    else this.counters.continues++;
    this.#onResident(gfn);
    if (this.config.wakeBatch > 1) {
      this.#wakeQueue.push(gfn);
      if (this.#wakeQueue.length >= this.config.wakeBatch) this.#flushWakes();
      else this.#wakeTimer ??= setTimeout(() => this.#flushWakes(), this.config.wakeFlushMs);
      return "copied";
    }
    this.#wake(gfn);
    return "copied";
  }

  /** UFFDIO_POISON: install PTE_MARKER_UFFD_POISON and wake; the re-fault sees VM_FAULT_HWPOISON. */
  poison(gfn: number): void {
    this.poisoned.add(gfn);
    this.counters.poisons++;
    this.#wake(gfn);
  }

  /** UFFDIO_WRITEPROTECT with mode WP=0: the page becomes writable, waiters are woken. */
  unprotect(gfn: number): void {
    this.writeProtected.delete(gfn);
    this.counters.writeprotects++;
    this.#onResident(gfn);
    this.#wake(gfn);
  }

  /** A VMM resolver waits for `gfn` to be filled (woken with the page's waiters by `__wake_up`). */
  arrival(gfn: number): Promise<void> {
    return new Promise<void>((r) => {
      let set = this.#listeners.get(gfn);
      if (!set) this.#listeners.set(gfn, (set = new Set()));
      set.add(r);
    });
  }

  /**
   * `userfaultfd_remove`: a UFFD_EVENT_REMOVE is queued on `event_wqh` and `mmap_changing` raised
   * until the handler reads it (`userfaultfd_event_wait_completion`, then atomic_dec).
   */
  queueRemove(): void {
    this.mmapChanging++;
  }

  /** The handler read a UFFD_EVENT_REMOVE (`userfaultfd_event_complete`): the madvise caller goes on. */
  removeRead(): void {
    this.mmapChanging = Math.max(0, this.mmapChanging - 1);
    this.counters.removeEvents++;
  }

  /** The zap of MADV_DONTNEED: the resident pages among `gfns` are missing again; returns those dropped. */
  drop(gfns: readonly number[]): number[] {
    const dropped = gfns.filter((g) => this.resident.delete(g));
    this.counters.removes += dropped.length;
    return dropped;
  }

  /**
   * `handle_userfault`: set_current_state(blocking_state), queue on `fault_wqh`, schedule(); `vcpu`
   * -1 is a kworker (not a vCPU task, never signal-woken), asleep on its vCPU's (`ctxVcpu`) context.
   */
  sleep(vcpu: number, gfn: number, state: WaitState, ctxVcpu = vcpu): Promise<void> {
    return new Promise((resolve) => {
      const w: Waiter = { vcpu, ctxVcpu, gfn, state, sinceMs: this.now(), wake: resolve };
      let set = this.#waiters.get(gfn);
      if (!set) this.#waiters.set(gfn, (set = new Set()));
      set.add(w);
      if (vcpu < 0) return;
      this.#byTask.set(vcpu, w);
      this.#onWait(vcpu, gfn, state);
    });
  }

  /** Tasks sleeping in `handle_userfault` now. */
  waiters(): PagerReport["waiters"] {
    return [...this.#byTask.values()].map((w) => ({ vcpu: w.vcpu, gfn: w.gfn, waitState: w.state, sinceMs: w.sinceMs }));
  }

  /** modelled wait-queue lock time over all uffd contexts, ms */
  lockHeldMs(): number {
    return this.queues.heldMs();
  }

  /** `userfaultfd_release` (VM torn down): wake everyone, faults then see the ctx released. */
  release(): void {
    this.released = true;
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    for (const set of [...this.#waiters.values()]) for (const w of [...set]) this.#wakeOne(w);
  }

  /** UFFDIO_WAKE: one wake over the pages installed with DONTWAKE. */
  #flushWakes(): void {
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    this.#wakeTimer = null;
    const gfns = this.#wakeQueue;
    this.#wakeQueue = [];
    if (!gfns.length) return;
    this.counters.wakeCalls++;
    for (const g of gfns) this.#wake(g);
  }

  /** The wake half of a fill, under the context's wait-queue lock when that is modelled. */
  #wake(gfn: number): void {
    this.queues.wake(gfn, (onCtx) => this.#countWaiters(onCtx), () => this.#wakePage(gfn));
  }

  /** `__wake_up(&ctx->fault_wqh, ..., range)`: every waiter on the page, and VMM resolvers. */
  #wakePage(gfn: number): void {
    for (const r of this.#listeners.get(gfn) ?? []) r();
    this.#listeners.delete(gfn);
    for (const w of [...(this.#waiters.get(gfn) ?? [])]) {
      this.counters.wakes++;
      this.#wakeOne(w);
    }
  }

  #countWaiters(onCtx: (vcpu: number) => boolean): number {
    let n = 0;
    for (const set of this.#waiters.values()) for (const w of set) if (onCtx(w.ctxVcpu)) n++;
    return n;
  }

  /** `userfaultfd_wake_function`: wake once and dequeue. */
  #wakeOne(w: Waiter): void {
    const set = this.#waiters.get(w.gfn);
    // an emptied page entry goes, or the map (walked per wake by #countWaiters) grows with every page ever slept on
    if (set?.delete(w) && set.size === 0) this.#waiters.delete(w.gfn);
    if (this.#byTask.get(w.vcpu) === w) {
      this.#byTask.delete(w.vcpu);
      this.#onWait(w.vcpu, w.gfn, null);
    }
    w.wake();
  }
}

/** `signal_pending_state()`: which pending signals end a sleep in this state. */
export function wakesFor(state: WaitState, sig: SigView): boolean {
  if (state === "TASK_INTERRUPTIBLE") return sig.any;
  return sig.fatal; // TASK_KILLABLE; a SPINNING task only leaves its loop on a fatal signal or the page
}
