import { describe, expect, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { Mmu, ZAP_CHUNK } from "../../services/mmu/src/mmu.ts";
import { Uffd } from "../../services/pager/src/uffd.ts";

const GiB = 2 ** 30;
const ok = async () => ({ result: "ok" as const, fatal: false, sleeps: 1, spinMs: 0 });

describe("range-backed page structures", () => {
  it("ranges - WP populate of a 256 GiB memslot is a range per set, and a write-protect fault splits it", async () => {
    const s = parseScenario({ vm: { memslots: [{ slot: 0, size: "256GiB" }, { slot: 1, gpa: 512 * GiB, size: "1GiB" }] }, pager: { mode: "wp" }, workload: { pagesPerVcpu: 1 } });
    const mmu = new Mmu("6.13", s.vm.memslots, ok);
    mmu.populateWriteProtected();
    expect(mmu.hostPresent.size).toBe((257 * GiB) / 4096);
    expect(mmu.hostWriteProtected.rangeCount).toBe(2);
    // a read maps through attempt 1; a write goes to gup (write-protected), which then unprotects it
    await expect(mmu.pageFault(0, 5, false)).resolves.toMatchObject({ path: "hva_to_pfn_fast" });
    await expect(mmu.pageFault(0, (512 * GiB) / 4096 + 7, true)).resolves.toMatchObject({ path: "gup" });
    expect(mmu.hostWriteProtected.has((512 * GiB) / 4096 + 7)).toBe(false);
    expect(mmu.hostWriteProtected.rangeCount).toBe(3);

    const fetched: number[] = [];
    const uffd = new Uffd({ fetch: async (g) => void fetched.push(g), onResident: () => undefined, now: () => 0, config: { mode: "wp" } });
    uffd.populateWriteProtectedRanges([[0, (256 * GiB) / 4096]]);
    expect(uffd.resident.size).toBe((256 * GiB) / 4096);
    await expect(uffd.faultIn({ vcpu: 0, gfn: 42, write: false, interruptible: true })).resolves.toMatchObject({ result: "ok", sleeps: 0 });
    await expect(uffd.faultIn({ vcpu: 0, gfn: 42, write: true, interruptible: true })).resolves.toMatchObject({ result: "ok", sleeps: 1 });
    expect(uffd.counters.writeprotects).toBe(1);
    expect(uffd.writeProtected.rangeCount).toBe(2);
  });

  it("ranges - deleting a memslot zaps its SPTEs and announces them in ordered chunks of ZAP_CHUNK", async () => {
    const s = parseScenario({ vm: { memslots: [{ slot: 0, size: "1GiB" }, { slot: 1, gpa: 2 * GiB, size: "1GiB" }] }, workload: { pagesPerVcpu: 1 } });
    const mmu = new Mmu("6.13", s.vm.memslots, ok);
    const n = 2 * ZAP_CHUNK + 100;
    mmu.spte.addRange(10, 10 + n);
    mmu.spte.add((2 * GiB) / 4096); // slot 1 keeps its SPTE
    const zaps: number[][] = [];
    mmu.onZap = (g) => zaps.push(g);
    const zapped = await mmu.memslotOp({ atMs: 0, op: "delete", slot: 0 });
    expect(zaps.map((z) => z.length)).toEqual([ZAP_CHUNK, ZAP_CHUNK, 100]);
    expect(zaps.flat()).toEqual(Array.from({ length: n }, (_, i) => 10 + i));
    expect(zapped).toHaveLength(n);
    expect(mmu.counters.zapped).toBe(n);
    expect(mmu.spte.size).toBe(1);
  });
});
