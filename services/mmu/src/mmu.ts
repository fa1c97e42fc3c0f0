/**
 * One VM's MMU: memslots, SPTE presence per gfn, `mmu_invalidate_seq`, the host-page-table mirror
 * that attempt 1 reads, `kvm->srcu` (a vCPU inside a fault is a reader), and the x86 fault handler:
 *
 *   kvm_mmu_page_fault → kvm_tdp_page_fault → (fast_page_fault: never for a not-present fault with
 *     A/D bits on, see `page_fault_can_be_fast`) → kvm_mmu_faultin_pfn
 *     → __kvm_mmu_faultin_pfn: attempt 1 FOLL_NOWAIT (never sleeps, the pager never hears of it),
 *       attempt 2 with FOLL_INTERRUPTIBLE (6.2+) or without (pre-6.2): a blocking gup in the pager
 *     → kvm_handle_error_pfn (KVM_PFN_ERR_SIGPENDING → kvm_handle_signal_exit → -EINTR)
 *     → is_page_fault_stale → map → RET_PF_FIXED
 *
 * Pure logic; the pager's gup is an injected port.
 */
import { AsyncPf } from "./async-pf.ts";
import {
  KVM_MEMORY_EXIT_FLAG_USERFAULT, PageSet, clock, follInterruptible, PAGE_SIZE,
  type FaultReply, type GupReply, type GupReq, type MessageBody, type Memslot, type MemslotOp, type MmuCounters, type Profile, type Site,
} from "@faultline/shared";
import { Memslots, type Slot } from "./memslots.ts";
import { Srcu } from "./srcu.ts";

/** The pager's gup, as the GupReq / GupReply messages carry it. */
export type GupPort = (req: MessageBody<GupReq>) => Promise<GupReply>;

/** Zapped gfns per `onZap` call: keeps one NATS message well under the default 1 MiB max_payload. */
export const ZAP_CHUNK = 16_384;

/**
 * A fault on a KVM_MEMSLOT_INVALID slot is RET_PF_RETRY and the guest faults again at once, for as
 * long as the delete or move lasts. The model paces that loop (outside the SRCU read section, as
 * the guest is) so it does not flood the bus.
 */
export const INVALID_SLOT_RETRY_MS = 1;

/** What `kvm_mmu_page_fault` is told beyond the gfn and the access. */
export interface FaultOptions {
  /** an async-PF replay (`kvm_arch_async_page_ready`): no new async PF is set up */
  prefetch?: boolean;
  /** the guest was at CPL3 (`kvm_can_deliver_async_pf`) */
  user?: boolean;
}

export class Mmu {
  readonly profile: Profile;
  /** SPTEs present (TDP MMU leaf entries). Page sets hold ranges, so their memory follows runs of pages, not pages. */
  readonly spte = new PageSet();
  /** Host page tables as `hva_to_pfn_fast` sees them: fed by the pager's UFFDIO_COPY announcements. */
  readonly hostPresent = new PageSet();
  /** host pages present but uffd-write-protected (WP mode): a write cannot take attempt 1 */
  readonly hostWriteProtected = new PageSet();
  /** `kvm->mmu_invalidate_seq`, bumped by `kvm_mmu_invalidate_end`. */
  invalidateSeq = 0;
  /** `kvm->mmu_invalidate_in_progress` */
  invalidateInProgress = 0;
  /** `kvm->mmu_invalidate_range_start/_end` (gfns, [start, end)); -1: INVALID_GPA */
  #invalidateRange: [number, number] = [-1, -1];
  /** invalidations started and not yet ended, by the notifier's id (a repeated start or end is a no-op) */
  readonly #invalidating = new Set<string>();
  #localInvalidations = 0;
  readonly memslots: Memslots;
  /** `kvm->srcu`: every vCPU inside `access` or `apfReady` is a reader */
  readonly srcu = new Srcu();
  /** SPTEs zapped: the vcpu service drops them from its guest's view */
  onZap: (gfns: number[]) => void = () => undefined;
  readonly #gup: GupPort;
  /** async page faults, when the scenario enables them */
  readonly apf: AsyncPf | null;
  /** gfns with an MMIO SPTE (`make_mmio_spte`): later faults there take `handle_mmio_page_fault`. */
  readonly mmioSpte = new PageSet();
  readonly counters: MmuCounters = { faults: 0, attempt1Hits: 0, attempt2: 0, sigpending: 0, stale: 0, noslot: 0, uaccess: 0, vcpuMap: 0, gpcRefresh: 0, memoryFaults: 0, memslotInvalid: 0, roFaults: 0, zapped: 0, hwpoison: 0 };

  constructor(
    profile: Profile,
    memslots: readonly Memslot[],
    gup: GupPort,
    apf?: { pv: boolean; interruptsEnabled: boolean; completed: (vcpu: number, token: number, gfn: number) => void },
  ) {
    this.profile = profile;
    this.apf = apf
      ? new AsyncPf({
          ...apf,
          kworkerGup: async (vcpu, gfn) => {
            const r = await gup({ vcpu, gfn, write: true, interruptible: false, kworker: true });
            if (r.result === "ok") this.hostPresent.add(gfn);
          },
        })
      : null;
    this.#gup = gup;
    this.memslots = new Memslots(memslots);
  }

  /** `__gfn_to_memslot` */
  slotOf(gfn: number): Slot | undefined {
    return this.memslots.find(gfn);
  }

  /**
   * WP mode: the uffd was registered with UFFDIO_REGISTER_MODE_WP over populated memory, so every
   * page of every memslot is present in the host page tables and write-protected. O(memslots).
   */
  populateWriteProtected(): void {
    for (const [a, b] of this.memslots.ranges()) {
      this.hostPresent.addRange(a, b);
      this.hostWriteProtected.addRange(a, b);
    }
  }

  /**
   * KVM_SET_USER_MEMORY_REGION while vCPUs run (see memslots.ts); returns the SPTEs zapped. Resolves
   * only after `synchronize_srcu_expedited`: once every fault in flight when a wait began has ended.
   */
  async memslotOp(op: MemslotOp): Promise<number[]> {
    const zapped: number[] = [];
    await this.memslots.apply(op, (start, end) => this.#zapRange(start, end, zapped), () => this.srcu.synchronize());
    return zapped;
  }

  /**
   * `kvm_mmu_notifier_invalidate_range_start` (the pager's MADV_DONTNEED, before its host pages go):
   * `kvm_mmu_invalidate_begin` (in_progress++, the range reset when it is the only one),
   * `kvm_mmu_invalidate_range_add` (the union of the ranges), then the SPTEs are zapped. Until the
   * end, a fault on a gfn in the range gets RET_PF_RETRY (`mmu_invalidate_retry_gfn`). Returns the
   * SPTEs zapped.
   */
  invalidateRangeStart(id: string, gfns: readonly number[]): number[] {
    if (this.#invalidating.has(id) || !gfns.length) return [];
    this.#invalidating.add(id);
    this.invalidateInProgress++;
    if (this.invalidateInProgress === 1) this.#invalidateRange = [-1, -1];
    let [start, end] = this.#invalidateRange;
    for (const g of gfns) {
      if (start < 0 || g < start) start = g;
      if (end < 0 || g + 1 > end) end = g + 1;
    }
    this.#invalidateRange = [start, end];
    return this.#zap(gfns);
  }

  /**
   * `kvm_mmu_notifier_invalidate_range_end` → `kvm_mmu_invalidate_end`: the host pages `gone` are
   * unmapped (the mirror `hva_to_pfn_fast` reads), `mmu_invalidate_seq++`, in_progress--. A fault
   * that snapshotted the old sequence now fails `is_page_fault_stale`.
   */
  invalidateRangeEnd(id: string, gone: readonly number[]): void {
    if (!this.#invalidating.delete(id)) return;
    for (const g of gone) this.hostPresent.delete(g);
    this.invalidateSeq++;
    this.invalidateInProgress--;
  }

  /** A whole invalidation at once (start, the pages gone, end); returns the SPTEs zapped. */
  invalidate(gfns: readonly number[]): number[] {
    const id = `local.${++this.#localInvalidations}`;
    const zapped = this.invalidateRangeStart(id, gfns);
    this.invalidateRangeEnd(id, gfns);
    return zapped;
  }

  /** The SPTEs of `gfns` zapped, announced in messages of at most ZAP_CHUNK. */
  #zap(gfns: readonly number[]): number[] {
    const zapped = gfns.filter((g) => this.spte.delete(g));
    this.counters.zapped += zapped.length;
    for (let i = 0; i < zapped.length; i += ZAP_CHUNK) this.onZap(zapped.slice(i, i + ZAP_CHUNK));
    return zapped;
  }

  /**
   * `kvm_arch_flush_shadow_memslot` over a slot's gfn range. The SPTEs go at once, in O(SPTE ranges
   * inside it), never a walk over the slot's pages; the host mapping stays (a memslot change does not
   * unmap the VMA). Announcing the zapped gfns is O(SPTEs zapped): one message per ZAP_CHUNK, with a
   * turn of the event loop between them, so a zap of millions of SPTEs never blocks the service.
   */
  async #zapRange(start: number, end: number, out: number[]): Promise<void> {
    this.invalidateInProgress++;
    const ranges = [...this.spte.rangesWithin(start, end)];
    this.spte.deleteRange(start, end);
    this.invalidateSeq++;
    this.invalidateInProgress--;
    let chunk: number[] = [];
    for (const [a, b] of ranges) {
      for (let g = a; g < b; g++) {
        chunk.push(g);
        out.push(g);
        if (chunk.length < ZAP_CHUNK) continue;
        this.counters.zapped += chunk.length;
        this.onZap(chunk);
        chunk = [];
        await new Promise((r) => setImmediate(r));
      }
    }
    this.counters.zapped += chunk.length;
    if (chunk.length) this.onZap(chunk);
  }

  /**
   * A guest access that needs KVM at `site` (`user`: the guest was at CPL3), inside an SRCU read
   * section (`vcpu_run` holds `kvm->srcu` outside the guest): dispatches to the kernel path that site takes.
   */
  async access(vcpu: number, gfn: number, write: boolean, site: Site, user = false): Promise<FaultReply> {
    const idx = this.srcu.readLock(vcpu);
    let r: FaultReply;
    try {
      r = await this.#dispatch(vcpu, gfn, write, site, user);
    } finally {
      this.srcu.readUnlock(idx);
    }
    if (r.path === "memslot_invalid") await new Promise<void>((done) => clock().setTimeout(done, INVALID_SLOT_RETRY_MS));
    return r;
  }

  #dispatch(vcpu: number, gfn: number, write: boolean, site: Site, user: boolean): Promise<FaultReply> {
    switch (site) {
      case "tdp":
        return this.pageFault(vcpu, gfn, write, { user });
      case "emulated":
        return this.emulatedAccess(vcpu, gfn, write);
      case "nested-map":
        return this.kernelMap(vcpu, gfn, write, "kvm_vcpu_map");
      case "pfn-cache":
        return this.kernelMap(vcpu, gfn, true, "gpc_refresh");
    }
  }

  /**
   * `kvm_mmu_page_fault(vcpu, gpa, error_code)` for a TDP violation on `gfn`: the guest's view has no
   * SPTE there, so the fault is a not-present one.
   */
  async pageFault(vcpu: number, gfn: number, write: boolean, o: FaultOptions = {}): Promise<FaultReply> {
    const prefetch = o.prefetch ?? false;
    this.counters.faults++;
    const slot = this.slotOf(gfn);
    if (!slot) {
      // kvm_handle_noslot_fault: cache an MMIO SPTE, emulate → KVM_EXIT_MMIO to userspace
      this.counters.noslot++;
      const created = !this.mmioSpte.has(gfn);
      this.mmioSpte.add(gfn);
      return { ret: "RET_PF_EMULATE", exit: "KVM_EXIT_MMIO", path: "noslot", sleeps: 0, fatal: false, spinMs: 0, mmioSpte: created };
    }
    // kvm_mmu_faultin_pfn: a slot being deleted or moved → RET_PF_RETRY (the guest re-faults)
    if (slot.invalid) {
      this.counters.memslotInvalid++;
      return { ret: "RET_PF_RETRY", path: "memslot_invalid", sleeps: 0, fatal: false, spinMs: 0 };
    }
    // a write to a KVM_MEM_READONLY slot: KVM_HVA_ERR_RO_BAD → KVM_PFN_ERR_RO_FAULT → RET_PF_EMULATE,
    // and the emulated write to read-only memory exits to userspace as MMIO
    if (write && slot.readonly) {
      this.counters.roFaults++;
      return { ret: "RET_PF_EMULATE", exit: "KVM_EXIT_MMIO", path: "ro_fault", sleeps: 0, fatal: false, spinMs: 0 };
    }
    // fast_page_fault is not tried: page_fault_can_be_fast() is false for a not-present fault when
    // KVM uses A/D bits. A fault that races with another vCPU's map takes the slow path below and
    // finds the SPTE present when it maps (RET_PF_SPURIOUS: pf_spurious, not pf_fast).
    // kvm_mmu_faultin_pfn: fault->mmu_seq = kvm->mmu_invalidate_seq (snapshot before any GUP)
    const mmuSeq = this.invalidateSeq;
    // KVM Userfault: the memslot's userfault bitmap is tested before any GUP. The VMM clears a bit
    // once it has installed the page, so here a set bit is a page not yet resident.
    if (this.profile === "kvm-userfault" && !this.hostPresent.has(gfn)) return this.#memoryFault(gfn, KVM_MEMORY_EXIT_FLAG_USERFAULT);
    // attempt 1, FOLL_NOWAIT: hva_to_pfn_fast, or KVM_PFN_ERR_NEEDS_IO (6.13) / *async = true (6.2)
    if (this.hostPresent.has(gfn) && !(write && this.hostWriteProtected.has(gfn))) {
      this.counters.attempt1Hits++;
      return this.#map(gfn, mmuSeq, "hva_to_pfn_fast", 0);
    }
    // KVM_MEM_EXIT_ON_MISSING: fast GUP only; a miss exits to userspace instead of sleeping in uffd
    if (this.profile === "exit-on-missing") return this.#memoryFault(gfn, 0);
    // if (!fault->prefetch && kvm_can_do_async_pf(vcpu)): repeated fault → APF halt, else set one up
    if (!prefetch && this.apf?.canDo()) {
      const a = this.apf.trySetup(vcpu, gfn, o.user ?? false);
      if (a) return { ret: "RET_PF_RETRY", path: "async_pf", apf: a, sleeps: 0, fatal: false, spinMs: 0 };
    }
    // attempt 2: foll |= FOLL_INTERRUPTIBLE (6.2+); foll &= ~FOLL_NOWAIT
    this.counters.attempt2++;
    const r = await this.#gup({ vcpu, gfn, write, interruptible: follInterruptible(this.profile) });
    if (r.result === "EINTR" && !follInterruptible(this.profile)) {
      // before 6.2 hva_to_pfn had no KVM_PFN_ERR_SIGPENDING: gup's -EINTR (SIGKILL) became KVM_PFN_ERR_FAULT,
      // and handle_abnormal_pfn → kvm_handle_bad_page returned -EFAULT: no KVM_EXIT_INTR, no signal_exits++
      return { ret: "ERRNO", errno: "EFAULT", path: "gup", sleeps: r.sleeps, fatal: r.fatal, spinMs: 0 };
    }
    if (r.result === "EINTR") {
      // hva_to_pfn_slow: -EINTR → KVM_PFN_ERR_SIGPENDING; kvm_handle_error_pfn → kvm_handle_signal_exit
      this.counters.sigpending++;
      return { ret: "ERRNO", errno: "EINTR", exit: "KVM_EXIT_INTR", path: "gup", sleeps: r.sleeps, fatal: r.fatal, spinMs: 0 };
    }
    if (r.result === "EHWPOISON") {
      // KVM_PFN_ERR_HWPOISON: kvm_send_hwpoison_signal (SIGBUS, BUS_MCEERR_AR), RET_PF_RETRY
      this.counters.hwpoison++;
      return { ret: "RET_PF_RETRY", path: "gup", hwpoison: true, sleeps: r.sleeps, fatal: false, spinMs: 0 };
    }
    if (r.result === "EFAULT") {
      // VM_FAULT_SIGBUS (UFFD_FEATURE_SIGBUS) → KVM_PFN_ERR_FAULT → kvm_handle_error_pfn: -EFAULT
      return { ret: "ERRNO", errno: "EFAULT", path: "gup", sleeps: r.sleeps, fatal: false, spinMs: 0 };
    }
    this.hostPresent.add(gfn);
    this.hostWriteProtected.delete(gfn);
    return this.#map(gfn, mmuSeq, "gup", r.sleeps);
  }

  /**
   * `kvm_check_async_pf_completion` for one done item: `kvm_arch_async_page_ready` replays the fault
   * with prefetch=true (pf_fixed if FIXED), then `kvm_arch_async_page_present` retires it.
   */
  async apfReady(vcpu: number, gfn: number): Promise<FaultReply> {
    const idx = this.srcu.readLock(vcpu); // vcpu_enter_guest runs it under kvm->srcu
    try {
      const r = await this.pageFault(vcpu, gfn, true, { prefetch: true });
      this.apf?.present(vcpu, gfn);
      return r;
    } finally {
      this.srcu.readUnlock(idx);
    }
  }

  /**
   * The emulator touches guest memory itself (`x86_emulate_instruction` → `kvm_read_guest` /
   * `kvm_write_guest` → `__copy_{from,to}_user`): a kernel-mode fault, no gup flags, no SPTE.
   * When that access fails (UFFD_FEATURE_SIGBUS, a poisoned page: the exception fixup's -EFAULT),
   * `emulator_read_write_onepage` treats it as MMIO: KVM_RUN exits KVM_EXIT_MMIO, it does not fail.
   * A fatal signal also makes the uaccess fail; the task then dies on its way out.
   */
  async emulatedAccess(vcpu: number, gfn: number, write: boolean): Promise<FaultReply> {
    this.counters.uaccess++;
    if (!this.slotOf(gfn)) return { ret: "RET_PF_EMULATE", exit: "KVM_EXIT_MMIO", path: "noslot", sleeps: 0, fatal: false, spinMs: 0 };
    if (this.hostPresent.has(gfn)) return { ret: "RET_PF_EMULATE", path: "uaccess", sleeps: 0, fatal: false, spinMs: 0 };
    const r = await this.#gup({ vcpu, gfn, write, interruptible: true, uaccess: true });
    if (r.result !== "ok" && r.fatal) return { ret: "ERRNO", errno: "EFAULT", path: "uaccess", sleeps: r.sleeps, fatal: true, spinMs: r.spinMs };
    if (r.result !== "ok") return { ret: "RET_PF_EMULATE", exit: "KVM_EXIT_MMIO", path: "uaccess", sleeps: r.sleeps, fatal: false, spinMs: r.spinMs };
    this.hostPresent.add(gfn);
    return { ret: "RET_PF_EMULATE", path: "uaccess", sleeps: r.sleeps, fatal: false, spinMs: r.spinMs };
  }

  /**
   * KVM maps a guest page for its own use: `kvm_vcpu_map` (vmcs12 pages, from
   * `nested_get_vmcs12_pages` before a nested entry) or a `gfn_to_pfn_cache` refresh
   * (`hva_to_pfn_retry`). Both call `hva_to_pfn` without FOLL_INTERRUPTIBLE in every profile, so
   * the task sleeps TASK_KILLABLE; a fatal signal gives KVM_PFN_ERR_SIGPENDING, which
   * `__kvm_vcpu_map` turns into -EINVAL and `kvm_gpc_refresh` into -EFAULT.
   */
  async kernelMap(vcpu: number, gfn: number, write: boolean, path: "kvm_vcpu_map" | "gpc_refresh"): Promise<FaultReply> {
    if (path === "kvm_vcpu_map") this.counters.vcpuMap++;
    else this.counters.gpcRefresh++;
    if (!this.slotOf(gfn)) return { ret: "ERRNO", errno: path === "kvm_vcpu_map" ? "EINVAL" : "EFAULT", path, sleeps: 0, fatal: false, spinMs: 0 };
    if (this.hostPresent.has(gfn)) return { ret: "RET_PF_CONTINUE", path, sleeps: 0, fatal: false, spinMs: 0 };
    const r = await this.#gup({ vcpu, gfn, write, interruptible: false });
    if (r.result !== "ok") {
      return { ret: "ERRNO", errno: path === "kvm_vcpu_map" ? "EINVAL" : "EFAULT", path, sleeps: r.sleeps, fatal: r.fatal, spinMs: 0 };
    }
    this.hostPresent.add(gfn);
    return { ret: "RET_PF_CONTINUE", path, sleeps: r.sleeps, fatal: false, spinMs: 0 };
  }

  /** `kvm_prepare_memory_fault_exit`: KVM_RUN returns -1/EFAULT with exit_reason KVM_EXIT_MEMORY_FAULT. */
  #memoryFault(gfn: number, flags: number): FaultReply {
    this.counters.memoryFaults++;
    return {
      ret: "ERRNO", errno: "EFAULT", exit: "KVM_EXIT_MEMORY_FAULT", path: "memory_fault", sleeps: 0, fatal: false, spinMs: 0,
      memoryFault: { gpa: gfn * PAGE_SIZE, size: PAGE_SIZE, flags },
    };
  }

  /**
   * `mmu_invalidate_retry_gfn`: an invalidation in progress over `gfn` (or with no range yet, the
   * WARN_ON_ONCE case, which retries too), or one that ended since the fault's snapshot.
   */
  #invalidateRetryGfn(mmuSeq: number, gfn: number): boolean {
    if (this.invalidateInProgress > 0) {
      const [start, end] = this.#invalidateRange;
      if (start < 0 || (gfn >= start && gfn < end)) return true;
    }
    return mmuSeq !== this.invalidateSeq;
  }

  #map(gfn: number, mmuSeq: number, path: FaultReply["path"], sleeps: number): FaultReply {
    // is_page_fault_stale: an invalidation in progress over the gfn or run since the snapshot → RET_PF_RETRY, the guest re-faults
    if (this.#invalidateRetryGfn(mmuSeq, gfn)) {
      this.counters.stale++;
      return { ret: "RET_PF_RETRY", path: "stale", sleeps, fatal: false, spinMs: 0 };
    }
    const spurious = this.spte.has(gfn);
    this.spte.add(gfn);
    return { ret: spurious ? "RET_PF_SPURIOUS" : "RET_PF_FIXED", path, sleeps, fatal: false, spinMs: 0 };
  }
}
