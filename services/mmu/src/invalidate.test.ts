import { describe, expect, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { Mmu, type GupPort } from "./mmu.ts";

const slots = parseScenario({ vm: { memslots: [{ slot: 0, gpa: 0, size: "1MiB" }] }, workload: { pagesPerVcpu: 1 } }).vm.memslots;
const ok: GupPort = async () => ({ result: "ok", fatal: false, sleeps: 1, spinMs: 0 });

describe("mmu notifier, start and end", () => {
  it("mmu notifier - start zaps the SPTEs and holds in_progress: a fault in the range retries until the end, one outside maps", async () => {
    const zaps: number[][] = [];
    const mmu = new Mmu("6.13", slots, ok);
    mmu.onZap = (g) => void zaps.push(g);
    await mmu.pageFault(0, 10, false);
    await mmu.pageFault(0, 40, false);
    expect(mmu.invalidateRangeStart("a", [10, 11, 12])).toEqual([10]);
    expect(zaps).toEqual([[10]]);
    expect(mmu.invalidateInProgress).toBe(1);
    expect(mmu.invalidateSeq).toBe(0); // the seq moves at the end, not at the start
    // the host page is still mapped (hva_to_pfn_fast finds it), but mmu_invalidate_retry_gfn sees in_progress over gfn 10
    await expect(mmu.pageFault(0, 10, false)).resolves.toMatchObject({ ret: "RET_PF_RETRY", path: "stale" });
    await expect(mmu.pageFault(0, 12, false)).resolves.toMatchObject({ ret: "RET_PF_RETRY", path: "stale" });
    await expect(mmu.pageFault(0, 20, false)).resolves.toMatchObject({ ret: "RET_PF_FIXED" }); // outside [10, 13)
    expect(mmu.spte.has(10)).toBe(false);
    mmu.invalidateRangeEnd("a", [10]);
    expect(mmu).toMatchObject({ invalidateInProgress: 0, invalidateSeq: 1 });
    expect(mmu.hostPresent.has(10)).toBe(false); // the page went between start and end
    await expect(mmu.pageFault(0, 10, false)).resolves.toMatchObject({ ret: "RET_PF_FIXED", path: "gup" });
    expect(mmu.counters.stale).toBe(2);
  });

  it("mmu notifier - a fault whose gup spans the end is stale by the sequence (is_page_fault_stale)", async () => {
    let mmu: Mmu;
    const gup: GupPort = async (req) => {
      mmu.invalidateRangeStart("b", [req.gfn]);
      mmu.invalidateRangeEnd("b", []);
      return { result: "ok", fatal: false, sleeps: 1, spinMs: 0 };
    };
    mmu = new Mmu("6.13", slots, gup);
    await expect(mmu.pageFault(0, 3, false)).resolves.toMatchObject({ ret: "RET_PF_RETRY", path: "stale" });
  });

  it("mmu notifier - concurrent invalidations: the range is their union until the last ends; a repeated start or end is a no-op", () => {
    const mmu = new Mmu("6.13", slots, ok);
    mmu.invalidateRangeStart("a", [10]);
    mmu.invalidateRangeStart("b", [30]);
    mmu.invalidateRangeStart("a", [10]); // a retried request: no second begin
    expect(mmu.invalidateInProgress).toBe(2);
    mmu.invalidateRangeEnd("a", []);
    mmu.invalidateRangeEnd("a", []);
    expect(mmu).toMatchObject({ invalidateInProgress: 1, invalidateSeq: 1 });
    mmu.invalidateRangeEnd("b", []);
    expect(mmu).toMatchObject({ invalidateInProgress: 0, invalidateSeq: 2 });
  });

  it("mmu notifier - the union covers the gfns between two ranges while both are in progress", async () => {
    const mmu = new Mmu("6.13", slots, ok);
    mmu.hostPresent.add(20);
    mmu.invalidateRangeStart("a", [10]);
    mmu.invalidateRangeStart("b", [30]);
    await expect(mmu.pageFault(0, 20, false)).resolves.toMatchObject({ ret: "RET_PF_RETRY", path: "stale" }); // [10, 31)
    mmu.invalidateRangeEnd("a", []);
    mmu.invalidateRangeEnd("b", []);
    await expect(mmu.pageFault(0, 20, false)).resolves.toMatchObject({ ret: "RET_PF_FIXED", path: "hva_to_pfn_fast" });
  });
});
