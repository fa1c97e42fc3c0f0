import { describe, expect, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { Mmu, type GupPort } from "./mmu.ts";

const slots = parseScenario({ vm: { memslots: [{ slot: 0, gpa: 0, size: "1MiB" }] }, workload: { pagesPerVcpu: 1 } }).vm.memslots;

function recorder(result: "ok" | "EINTR" = "ok") {
  const calls: Array<Parameters<GupPort>[0]> = [];
  const gup: GupPort = async (req) => {
    calls.push(req);
    return { result, fatal: false, sleeps: 1, spinMs: 0 };
  };
  return { calls, gup };
}

describe("mmu", () => {
  it("mmu - a resident page is served by attempt 1 (FOLL_NOWAIT) and the pager never hears of it", async () => {
    const r = recorder();
    const mmu = new Mmu("6.13", slots, r.gup);
    mmu.hostPresent.add(3);
    await expect(mmu.pageFault(0, 3, false)).resolves.toMatchObject({ ret: "RET_PF_FIXED", path: "hva_to_pfn_fast", sleeps: 0 });
    expect(r.calls).toHaveLength(0);
  });

  it("mmu - an installed SPTE makes the fault spurious via fast_page_fault", async () => {
    const mmu = new Mmu("6.13", slots, recorder().gup);
    mmu.spte.add(5);
    await expect(mmu.pageFault(1, 5, true)).resolves.toMatchObject({ ret: "RET_PF_SPURIOUS", path: "fast_page_fault" });
  });

  it("mmu - a gfn outside every memslot is MMIO: RET_PF_EMULATE and KVM_EXIT_MMIO", async () => {
    const mmu = new Mmu("6.13", slots, recorder().gup);
    await expect(mmu.pageFault(0, 256, false)).resolves.toMatchObject({ ret: "RET_PF_EMULATE", exit: "KVM_EXIT_MMIO", path: "noslot" });
  });

  it("mmu - attempt 2 passes FOLL_INTERRUPTIBLE from 6.2 on, not before", async () => {
    for (const [profile, interruptible] of [["pre-6.2", false], ["6.2", true], ["6.13", true]] as const) {
      const r = recorder();
      await new Mmu(profile, slots, r.gup).pageFault(2, 7, true);
      expect(r.calls).toEqual([{ vcpu: 2, gfn: 7, write: true, interruptible }]);
    }
  });

  it("mmu - gup -EINTR becomes KVM_PFN_ERR_SIGPENDING: -EINTR with KVM_EXIT_INTR, no SPTE", async () => {
    const mmu = new Mmu("6.2", slots, recorder("EINTR").gup);
    await expect(mmu.pageFault(0, 9, false)).resolves.toMatchObject({ ret: "ERRNO", errno: "EINTR", exit: "KVM_EXIT_INTR", path: "gup" });
    expect(mmu.spte.has(9)).toBe(false);
    expect(mmu.counters.sigpending).toBe(1);
  });

  it("mmu - an invalidation during the gup makes the fault stale: RET_PF_RETRY, no SPTE (is_page_fault_stale)", async () => {
    let mmu: Mmu;
    const gup: GupPort = async () => {
      mmu.invalidateSeq++; // kvm_mmu_invalidate_end ran while the task slept
      return { result: "ok", fatal: false, sleeps: 1, spinMs: 0 };
    };
    mmu = new Mmu("6.13", slots, gup);
    await expect(mmu.pageFault(0, 11, false)).resolves.toMatchObject({ ret: "RET_PF_RETRY", path: "stale" });
    expect(mmu.spte.has(11)).toBe(false);
    await expect(mmu.pageFault(0, 11, false)).resolves.toMatchObject({ ret: "RET_PF_FIXED", path: "hva_to_pfn_fast" });
  });
});
