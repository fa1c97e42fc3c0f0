/**
 * The uffd side of a slow fault: gup's retry loop (`__get_user_pages_locked`), `handle_userfault`'s
 * wait queue, the userspace handler that reads `UFFD_EVENT_PAGEFAULT`, de-duplicates and resolves
 * with `UFFDIO_COPY`, and `signal_wake_up` of sleeping tasks. Pure logic: the page source and the
 * "page became resident" hook are injected, so unit tests drive it without NATS.
 */
import { PageSet, type GfnRange, type SignalName, type WaitState } from "@faultline/shared";
import { WaitQueues, type UffdTopology } from "./wait-queue.ts";

export interface GupRequest {
  vcpu: number;
  gfn: number;
  write: boolean;
  /** FOLL_INTERRUPTIBLE: the task sleeps TASK_INTERRUPTIBLE and gup bails on any signal. */
  interruptible: boolean;
  /** a kernel-mode uaccess fault (`do_user_addr_fault(FAULT_FLAG_DEFAULT)`), not gup */
  uaccess?: boolean;
  /** the async-PF kworker faulting the page in on behalf of `vcpu`: a different task, no signals */
  kworker?: boolean;
}

export interface GupResult {
  result: "ok" | "EINTR" | "EFAULT" | "EHWPOISON";
  fatal: boolean;
  /** times the task entered `handle_userfault` for this gup */
  sleeps: number;
  /** ms spent busy-looping (SPINNING) with a non-fatal signal pending; modelled, not burned */
  spinMs: number;
}

interface Waiter {
  vcpu: number;
  /** the vCPU whose uffd context the waiter sleeps on (a kworker sleeps on its vCPU's) */
  ctxVcpu: number;
  gfn: number;
  state: WaitState;
  sinceMs: number;
  wake: () => void;
}

export interface PagerCounters {
  faultEvents: number;
  copies: number;
  zeropages: number;
  continues: number;
  eexist: number;
  wakes: number;
  duplicateRequests: number;
  /** KVM_EXIT_MEMORY_FAULTs the VMM asked the pager to resolve */
  vmmRequests: number;
  /** UFFD_EVENT_REMOVE: resident pages dropped (MADV_DONTNEED) */
  removes: number;
  /** UFFDIO_WRITEPROTECT (WP=0) resolutions, UFFDIO_POISON markers, explicit UFFDIO_WAKE calls */
  writeprotects: number;
  poisons: number;
  wakeCalls: number;
}

/** What the uffd was registered for and how the handler resolves (scenario `pager`). */
export interface UffdConfig {
  mode: "missing" | "minor" | "wp";
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
}

/** A partial UFFDIO_WAKE batch is flushed after this long. */
export const WAKE_FLUSH_MS = 1;

const DEFAULT_CONFIG: UffdConfig = {
  mode: "missing", threadId: false, sigbus: false, isZero: () => false, poison: new Set(), wakeBatch: 1, wakeFlushMs: WAKE_FLUSH_MS,
};

export interface UffdPorts {
  fetch: (gfn: number) => Promise<void>;
  onResident: (gfn: number) => void;
  now: () => number;
  /** uffd topology and the modelled wait-queue lock (all zero: not modelled) */
  topology?: UffdTopology;
  config?: Partial<UffdConfig>;
}

export class Uffd {
  /** pages present in the uffd-registered range (ranges: memory follows runs of pages, not pages) */
  readonly resident = new PageSet();
  readonly counters: PagerCounters = { faultEvents: 0, copies: 0, zeropages: 0, continues: 0, eexist: 0, wakes: 0, duplicateRequests: 0, vmmRequests: 0, removes: 0,
    writeprotects: 0, poisons: 0, wakeCalls: 0,
  };
  /** UFFD_EVENT_PAGEFAULT messages by `feat.ptid` ("0" without UFFD_FEATURE_THREAD_ID) */
  readonly eventsByPtid: Record<string, number> = {};
  /** write-protected present pages (WP mode) */
  readonly writeProtected = new PageSet();
  /** PTE_MARKER_UFFD_POISON installed */
  readonly poisoned = new PageSet();
  readonly config: UffdConfig;
  #wakeQueue: number[] = [];
  #wakeTimer: NodeJS.Timeout | null = null;
  readonly #waiters = new Map<number, Set<Waiter>>();
  readonly #byTask = new Map<number, Waiter>();
  readonly #inflight = new Set<number>();
  /** async-PF kworkers asleep in handle_userfault now */
  kworkersAsleep = 0;
  readonly #listeners = new Map<number, Set<() => void>>();
  readonly #queues: WaitQueues;
  readonly #pending = new Map<number, { any: boolean; fatal: boolean }>();
  readonly #ports: UffdPorts;
  #released = false;

  constructor(ports: UffdPorts) {
    this.#ports = ports;
    this.config = { ...DEFAULT_CONFIG, ...ports.config };
    this.#queues = new WaitQueues(ports.topology);
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
  #present(gfn: number, write: boolean): boolean {
    return this.resident.has(gfn) && !(write && this.writeProtected.has(gfn));
  }

  /**
   * Before queueing an event: a poison marker answers VM_FAULT_HWPOISON (gup -EHWPOISON), and with
   * UFFD_FEATURE_SIGBUS a missing page is VM_FAULT_SIGBUS (gup -EFAULT), with no event at all.
   */
  #terminal(gfn: number): GupResult | null {
    if (this.poisoned.has(gfn)) return { result: "EHWPOISON", fatal: false, sleeps: 0, spinMs: 0 };
    if (this.config.sigbus) return { result: "EFAULT", fatal: false, sleeps: 0, spinMs: 0 };
    return null;
  }

  #countEvent(vcpu: number): void {
    this.counters.faultEvents++;
    const ptid = !this.config.threadId ? "0" : vcpu < 0 ? "kworker" : `vcpu${vcpu}`;
    this.eventsByPtid[ptid] = (this.eventsByPtid[ptid] ?? 0) + 1;
  }

  /** Attempt 2's `get_user_pages_unlocked()` on one page, with `handle_userfault` sleeps. */
  async gup(req: GupRequest): Promise<GupResult> {
    if (req.uaccess) return this.#uaccess(req);
    if (req.kworker) return this.#kworker(req);
    let sleeps = 0;
    const state: WaitState = req.interruptible ? "TASK_INTERRUPTIBLE" : "TASK_KILLABLE";
    for (;;) {
      // __get_user_pages: "If we have a pending SIGKILL, don't keep faulting pages"
      if (this.#sig(req.vcpu).fatal) return { result: "EINTR", fatal: true, sleeps, spinMs: 0 };
      // faultin_page → handle_mm_fault: a present pte maps at once
      if (this.#present(req.gfn, req.write) || this.#released) return { result: "ok", fatal: false, sleeps, spinMs: 0 };
      const term = this.#terminal(req.gfn);
      if (term) return { ...term, sleeps };
      // handle_userfault: queue a UFFD_EVENT_PAGEFAULT, set_current_state(blocking_state), schedule()
      this.#countEvent(req.vcpu);
      await this.#queues.enqueue(req.vcpu, req.gfn);
      this.#handleEvent(req.gfn, req.write);
      sleeps++;
      if (!this.#wakesFor(state, this.#sig(req.vcpu)) && !this.#present(req.gfn, req.write)) await this.#sleep(req.vcpu, req.gfn, state);
      // VM_FAULT_RETRY → gup_signal_pending(current, flags)
      const sig = this.#sig(req.vcpu);
      if (sig.fatal || (req.interruptible && sig.any)) return { result: "EINTR", fatal: sig.fatal, sleeps, spinMs: 0 };
    }
  }

  /** `async_pf_execute`: `get_user_pages_remote(FOLL_WRITE)`, TASK_KILLABLE, as the kworker. */
  async #kworker(req: GupRequest): Promise<GupResult> {
    let sleeps = 0;
    while (!this.#present(req.gfn, true) && !this.#released) {
      const term = this.#terminal(req.gfn);
      if (term) return { ...term, sleeps };
      this.#countEvent(-1);
      await this.#queues.enqueue(req.vcpu, req.gfn);
      this.#handleEvent(req.gfn, true);
      sleeps++;
      if (this.#present(req.gfn, true)) continue;
      this.kworkersAsleep++;
      await this.#sleep(-1, req.gfn, "TASK_KILLABLE", req.vcpu);
      this.kworkersAsleep--;
    }
    return { result: "ok", fatal: false, sleeps, spinMs: 0 };
  }

  /**
   * A kernel-mode fault on a uffd page (`__copy_from_user` from `kvm_read_guest`): handle_userfault
   * sleeps TASK_INTERRUPTIBLE (FAULT_FLAG_DEFAULT), so any signal wakes it; but for a kernel-mode
   * fault `fault_signal_pending()` is true only for a fatal signal, so the fault is retried, and with
   * the signal still pending `schedule()` returns at once: the task busy-loops until the page arrives
   * (SPINNING), or a fatal signal makes the exception fixup return -EFAULT. (Jens Axboe's 2025 mm fix,
   * a 100 ms sleep per retry, is not modelled: kernel-reference §4.)
   */
  async #uaccess(req: GupRequest): Promise<GupResult> {
    let sleeps = 0;
    let spinMs = 0;
    for (;;) {
      if (this.#present(req.gfn, req.write) || this.#released) return { result: "ok", fatal: false, sleeps, spinMs };
      if (this.#sig(req.vcpu).fatal) return { result: "EFAULT", fatal: true, sleeps, spinMs };
      if (this.#terminal(req.gfn)) return { result: "EFAULT", fatal: false, sleeps, spinMs }; // the uaccess fixup
      this.#countEvent(req.vcpu);
      await this.#queues.enqueue(req.vcpu, req.gfn);
      this.#handleEvent(req.gfn, req.write);
      sleeps++;
      if (this.#present(req.gfn, req.write)) continue;
      const sig = this.#sig(req.vcpu);
      const state: WaitState = sig.any ? "SPINNING" : "TASK_INTERRUPTIBLE";
      if (this.#wakesFor(state, sig)) continue; // signal_pending_state(): a fatal signal ends it at once
      const t = this.#ports.now();
      await this.#sleep(req.vcpu, req.gfn, state);
      if (state === "SPINNING") spinMs += this.#ports.now() - t;
    }
  }

  /** `signal_wake_up(t, fatal)` or a dequeue: update the task's pending view, wake it if its state allows. */
  setPending(vcpu: number, pending: readonly SignalName[], fatal: boolean): void {
    const sig = { any: pending.length > 0, fatal };
    this.#pending.set(vcpu, sig);
    const w = this.#byTask.get(vcpu);
    if (w && this.#wakesFor(w.state, sig)) this.#wakeOne(w);
  }

  /**
   * `UFFDIO_COPY` (or ZEROPAGE, or CONTINUE) of one page. It wakes the page's waiters itself unless
   * the handler batches wakes (`*_MODE_DONTWAKE`, then one `UFFDIO_WAKE` over the batch).
   */
  copy(gfn: number, how: "copy" | "zeropage" | "continue" = "copy"): "copied" | "EEXIST" {
    this.#inflight.delete(gfn);
    if (this.resident.has(gfn)) {
      this.counters.eexist++;
      return "EEXIST";
    }
    this.resident.add(gfn);
    if (how === "copy") this.counters.copies++;
    else if (how === "zeropage") this.counters.zeropages++;
    else this.counters.continues++;
    this.#ports.onResident(gfn);
    if (this.config.wakeBatch > 1) {
      this.#wakeQueue.push(gfn);
      if (this.#wakeQueue.length >= this.config.wakeBatch) this.#flushWakes();
      else this.#wakeTimer ??= setTimeout(() => this.#flushWakes(), this.config.wakeFlushMs);
      return "copied";
    }
    this.#wake(gfn);
    return "copied";
  }

  /** One UFFDIO_WAKE over the pages installed with DONTWAKE. */
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
    this.#queues.wake(gfn, (onCtx) => this.#countWaiters(onCtx), () => this.#wakePage(gfn));
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

  /** modelled wait-queue lock time over all uffd contexts, ms */
  lockHeldMs(): number {
    return this.#queues.heldMs();
  }

  /**
   * The VMM resolving a KVM_EXIT_MEMORY_FAULT (proposed designs): no task sleeps in the uffd; the
   * handler fetches the page (sharing a fetch already in flight) and installs it with UFFDIO_COPY.
   */
  async resolve(gfn: number, vcpu = 0): Promise<"copied" | "present"> {
    this.counters.vmmRequests++;
    this.#queues.notePage(gfn, vcpu);
    if (this.resident.has(gfn)) {
      this.counters.eexist++;
      return "present";
    }
    const arrived = new Promise<void>((r) => {
      let set = this.#listeners.get(gfn);
      if (!set) this.#listeners.set(gfn, (set = new Set()));
      set.add(r);
    });
    this.#handleEvent(gfn, true);
    await arrived;
    return "copied";
  }

  /** MADV_DONTNEED of resident pages: they are missing again (UFFD_EVENT_REMOVE); returns those dropped. */
  drop(gfns: readonly number[]): number[] {
    const dropped = gfns.filter((g) => this.resident.delete(g));
    this.counters.removes += dropped.length;
    return dropped;
  }

  /** Tasks sleeping in `handle_userfault` now. */
  waiters(): Array<{ vcpu: number; gfn: number; waitState: WaitState; sinceMs: number }> {
    return [...this.#byTask.values()].map((w) => ({ vcpu: w.vcpu, gfn: w.gfn, waitState: w.state, sinceMs: w.sinceMs }));
  }

  /** uffd released (VM torn down): wake everyone, faults then see the ctx released. */
  release(): void {
    this.#released = true;
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    for (const set of [...this.#waiters.values()]) for (const w of [...set]) this.#wakeOne(w);
  }

  #sig(vcpu: number): { any: boolean; fatal: boolean } {
    return this.#pending.get(vcpu) ?? { any: false, fatal: false };
  }

  /** `signal_pending_state()`: which pending signals end a sleep in this state. */
  #wakesFor(state: WaitState, sig: { any: boolean; fatal: boolean }): boolean {
    if (state === "TASK_INTERRUPTIBLE") return sig.any;
    return sig.fatal; // TASK_KILLABLE; a SPINNING task only leaves its loop on a fatal signal or the page
  }

  /**
   * The userspace handler read the event and resolves the page once, however many faults ask:
   * UFFDIO_POISON for pages it gives up on, UFFDIO_WRITEPROTECT (WP=0) for a write-protect fault,
   * UFFDIO_ZEROPAGE for zero pages (no fetch), else fetch then UFFDIO_COPY (or CONTINUE in MINOR mode).
   */
  #handleEvent(gfn: number, write: boolean): void {
    if (this.#inflight.has(gfn)) {
      this.counters.duplicateRequests++;
      return;
    }
    this.#inflight.add(gfn);
    if (this.config.poison.has(gfn)) return void queueMicrotask(() => this.#poison(gfn));
    if (this.config.mode === "wp" && this.resident.has(gfn) && write) {
      void this.#ports.fetch(gfn).then(() => this.#unprotect(gfn)); // e.g. copy the old contents out first
      return;
    }
    if (this.config.isZero(gfn)) return void queueMicrotask(() => this.copy(gfn, "zeropage"));
    void this.#ports.fetch(gfn).then(() => {
      if (!this.#released) this.copy(gfn, this.config.mode === "minor" ? "continue" : "copy");
    });
  }

  /** UFFDIO_POISON: install PTE_MARKER_UFFD_POISON and wake; the re-fault sees VM_FAULT_HWPOISON. */
  #poison(gfn: number): void {
    this.#inflight.delete(gfn);
    this.poisoned.add(gfn);
    this.counters.poisons++;
    this.#wake(gfn);
  }

  /** UFFDIO_WRITEPROTECT with mode WP=0: the page becomes writable, waiters are woken. */
  #unprotect(gfn: number): void {
    this.#inflight.delete(gfn);
    this.writeProtected.delete(gfn);
    this.counters.writeprotects++;
    this.#ports.onResident(gfn);
    this.#wake(gfn);
  }

  /** Sleeps in handle_userfault; `vcpu` -1 is a kworker (not a vCPU task, never signal-woken). */
  #sleep(vcpu: number, gfn: number, state: WaitState, ctxVcpu = vcpu): Promise<void> {
    return new Promise((resolve) => {
      const w: Waiter = { vcpu, ctxVcpu, gfn, state, sinceMs: this.#ports.now(), wake: resolve };
      let set = this.#waiters.get(gfn);
      if (!set) this.#waiters.set(gfn, (set = new Set()));
      set.add(w);
      if (vcpu >= 0) this.#byTask.set(vcpu, w);
    });
  }

  /** `userfaultfd_wake_function`: wake once and dequeue. */
  #wakeOne(w: Waiter): void {
    const set = this.#waiters.get(w.gfn);
    // an emptied page entry goes, or the map (walked per wake by #countWaiters) grows with every page ever slept on
    if (set?.delete(w) && set.size === 0) this.#waiters.delete(w.gfn);
    if (this.#byTask.get(w.vcpu) === w) this.#byTask.delete(w.vcpu);
    w.wake();
  }
}
