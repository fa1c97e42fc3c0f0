/**
 * One VM's MMU: memslots, SPTE presence per gfn, `mmu_invalidate_seq`, the host-page-table mirror
 * that attempt 1 reads, and the x86 fault handler:
 *
 *   kvm_mmu_page_fault → kvm_tdp_page_fault → fast_page_fault → kvm_mmu_faultin_pfn
 *     → __kvm_mmu_faultin_pfn: attempt 1 FOLL_NOWAIT (never sleeps, the pager never hears of it),
 *       attempt 2 with FOLL_INTERRUPTIBLE (6.2+) or without (pre-6.2): a blocking gup in the pager
 *     → kvm_handle_error_pfn (KVM_PFN_ERR_SIGPENDING → kvm_handle_signal_exit → -EINTR)
 *     → is_page_fault_stale → map → RET_PF_FIXED
 *
 * Pure logic; the pager's gup is an injected port.
 */
import { follInterruptible, PAGE_SIZE, parseSize, type FaultReply, type Memslot, type Profile } from "@faultline/shared";

export interface GupPort {
  (req: { vcpu: number; gfn: number; write: boolean; interruptible: boolean }): Promise<{ result: "ok" | "EINTR"; fatal: boolean; sleeps: number }>;
}

interface Slot {
  id: number;
  baseGfn: number;
  npages: number;
}

export class Mmu {
  readonly profile: Profile;
  /** SPTEs present (TDP MMU leaf entries). */
  readonly spte = new Set<number>();
  /** Host page tables as `hva_to_pfn_fast` sees them: fed by the pager's UFFDIO_COPY announcements. */
  readonly hostPresent = new Set<number>();
  /** `kvm->mmu_invalidate_seq`, bumped by `kvm_mmu_invalidate_end` (issue 3 adds the notifiers). */
  invalidateSeq = 0;
  readonly #slots: Slot[];
  readonly #gup: GupPort;
  readonly counters = { faults: 0, attempt1Hits: 0, attempt2: 0, sigpending: 0, stale: 0, noslot: 0 };

  constructor(profile: Profile, memslots: readonly Memslot[], gup: GupPort) {
    this.profile = profile;
    this.#gup = gup;
    this.#slots = memslots.map((m) => ({ id: m.slot, baseGfn: m.gpa / PAGE_SIZE, npages: parseSize(m.size) / PAGE_SIZE }));
  }

  /** `__gfn_to_memslot` */
  slotOf(gfn: number): Slot | undefined {
    return this.#slots.find((s) => gfn >= s.baseGfn && gfn < s.baseGfn + s.npages);
  }

  /** `kvm_mmu_page_fault(vcpu, gpa, error_code)` for a TDP violation on `gfn`. */
  async pageFault(vcpu: number, gfn: number, write: boolean): Promise<FaultReply> {
    this.counters.faults++;
    const slot = this.slotOf(gfn);
    if (!slot) {
      // kvm_handle_noslot_fault: MMIO → emulate → KVM_EXIT_MMIO to userspace
      this.counters.noslot++;
      return { ret: "RET_PF_EMULATE", exit: "KVM_EXIT_MMIO", path: "noslot", sleeps: 0, fatal: false };
    }
    // fast_page_fault: another vCPU already installed the SPTE
    if (this.spte.has(gfn)) return { ret: "RET_PF_SPURIOUS", path: "fast_page_fault", sleeps: 0, fatal: false };
    // kvm_mmu_faultin_pfn: fault->mmu_seq = kvm->mmu_invalidate_seq (snapshot before any GUP)
    const mmuSeq = this.invalidateSeq;
    // attempt 1, FOLL_NOWAIT: hva_to_pfn_fast, or KVM_PFN_ERR_NEEDS_IO (6.13) / *async = true (6.2)
    if (this.hostPresent.has(gfn)) {
      this.counters.attempt1Hits++;
      return this.#map(gfn, mmuSeq, "hva_to_pfn_fast", 0);
    }
    // (async PF would be tried here: kvm_can_do_async_pf; scenarios reject asyncPf: true for now)
    // attempt 2: foll |= FOLL_INTERRUPTIBLE (6.2+); foll &= ~FOLL_NOWAIT
    this.counters.attempt2++;
    const r = await this.#gup({ vcpu, gfn, write, interruptible: follInterruptible(this.profile) });
    if (r.result === "EINTR") {
      // hva_to_pfn_slow: -EINTR → KVM_PFN_ERR_SIGPENDING; kvm_handle_error_pfn → kvm_handle_signal_exit
      this.counters.sigpending++;
      return { ret: "ERRNO", errno: "EINTR", exit: "KVM_EXIT_INTR", path: "gup", sleeps: r.sleeps, fatal: r.fatal };
    }
    this.hostPresent.add(gfn);
    return this.#map(gfn, mmuSeq, "gup", r.sleeps);
  }

  #map(gfn: number, mmuSeq: number, path: FaultReply["path"], sleeps: number): FaultReply {
    // is_page_fault_stale: an invalidation ran since the snapshot → RET_PF_RETRY, the guest re-faults
    if (mmuSeq !== this.invalidateSeq) {
      this.counters.stale++;
      return { ret: "RET_PF_RETRY", path: "stale", sleeps, fatal: false };
    }
    const spurious = this.spte.has(gfn);
    this.spte.add(gfn);
    return { ret: spurious ? "RET_PF_SPURIOUS" : "RET_PF_FIXED", path, sleeps, fatal: false };
  }
}
