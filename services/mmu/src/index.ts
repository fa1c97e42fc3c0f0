/** The mmu service: one `Mmu` per VM, fault requests from vcpu, gup requests to the pager. */
import { ApfReadyReq, FaultReq, InvalidateMsg, MemslotReq, ResidentMsg, defineService, endpoint, subjects } from "@faultline/shared";
import { MmuVm } from "./vm.ts";

export { Mmu, INVALID_SLOT_RETRY_MS, type FaultOptions, type GupPort } from "./mmu.ts";
export { Srcu } from "./srcu.ts";
export { MmuVm } from "./vm.ts";
export { AsyncPf, APF_EVENTS, ASYNC_PF_PER_VCPU, type ApfDelivery, type ApfEvent } from "./async-pf.ts";

export const mmuService = defineService<MmuVm>({
  name: "mmu",
  version: "0.1.0",
  description: "arch/x86/kvm/mmu + kvm_main.c gfn→pfn: memslots, SPTEs, mmu_invalidate_seq, kvm_mmu_page_fault",
  create: (ctx) => new MmuVm(ctx),
  endpoints: [
    endpoint(subjects.fault, FaultReq, (v: MmuVm, m) => v.mmu.access(m.vcpu, m.gfn, m.write, m.site, m.user)),
    endpoint(subjects.apfReady, ApfReadyReq, (v: MmuVm, m) => v.mmu.apfReady(m.vcpu, m.gfn)),
    endpoint(subjects.memslot, MemslotReq, async (v: MmuVm, m) => ({ zapped: (await v.memslotOp(m.op, null)).length })),
    // the mmu notifier's two halves around the pager's zap (MADV_DONTNEED)
    endpoint(subjects.invalidate, InvalidateMsg, (v: MmuVm, m) =>
      void (m.phase === "start" ? v.mmu.invalidateRangeStart(m.id, m.gfns) : v.mmu.invalidateRangeEnd(m.id, m.gfns))),
    endpoint(subjects.resident, ResidentMsg, (v: MmuVm, m) => v.resident(m.gfns), { event: true }),
  ],
});
