import { describe, expect, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { Mmu, type GupPort } from "./mmu.ts";

const scenario = parseScenario({
  vm: { memslots: [{ slot: 0, gpa: 0, size: "1MiB" }, { slot: 1, gpa: 4 * 1024 * 1024, size: "1MiB", readonly: true }] },
  workload: { pagesPerVcpu: 1 },
});
const ok: GupPort = async () => ({ result: "ok", fatal: false, sleeps: 1, spinMs: 0 });
const SLOT1 = 1024; // first gfn of slot 1

describe("memslots and invalidation", () => {
  it("memslot delete - faults in the KVM_MEMSLOT_INVALID window are RET_PF_RETRY; SPTEs are zapped; afterwards the gfns are MMIO", async () => {
    const mmu = new Mmu("6.13", scenario.vm.memslots, ok);
    const zaps: number[][] = [];
    mmu.onZap = (g) => zaps.push(g);
    await mmu.pageFault(0, 3, false);
    const seq = mmu.invalidateSeq;
    const op = mmu.memslotOp({ atMs: 0, op: "delete", slot: 0 });
    await expect(mmu.pageFault(0, 4, false)).resolves.toMatchObject({ ret: "RET_PF_RETRY", path: "memslot_invalid" });
    await op;
    expect(zaps).toEqual([[3]]);
    expect(mmu.invalidateSeq).toBe(seq + 1);
    await expect(mmu.pageFault(0, 4, false)).resolves.toMatchObject({ ret: "RET_PF_EMULATE", exit: "KVM_EXIT_MMIO", path: "noslot" });
  });

  it("memslot move - the old gfns become MMIO, the new ones fault in", async () => {
    const mmu = new Mmu("6.13", scenario.vm.memslots, ok);
    await mmu.memslotOp({ atMs: 0, op: "move", slot: 0, gpa: 16 * 1024 * 1024 });
    await expect(mmu.pageFault(0, 2, false)).resolves.toMatchObject({ path: "noslot" });
    await expect(mmu.pageFault(0, 4096 + 2, false)).resolves.toMatchObject({ ret: "RET_PF_FIXED", path: "gup" });
  });

  it("memslot add - a new slot's gfns stop being MMIO", async () => {
    const mmu = new Mmu("6.13", scenario.vm.memslots, ok);
    await expect(mmu.pageFault(0, 8192, false)).resolves.toMatchObject({ path: "noslot", mmioSpte: true });
    await mmu.memslotOp({ atMs: 0, op: "add", slot: 7, gpa: 8192 * 4096, size: 4096 * 4 });
    await expect(mmu.pageFault(0, 8192, false)).resolves.toMatchObject({ ret: "RET_PF_FIXED" });
  });

  it("KVM_MEM_READONLY - a write is KVM_PFN_ERR_RO_FAULT → RET_PF_EMULATE → KVM_EXIT_MMIO; a read maps normally", async () => {
    const mmu = new Mmu("6.13", scenario.vm.memslots, ok);
    await expect(mmu.pageFault(0, SLOT1, true)).resolves.toMatchObject({ ret: "RET_PF_EMULATE", exit: "KVM_EXIT_MMIO", path: "ro_fault" });
    await expect(mmu.pageFault(0, SLOT1, false)).resolves.toMatchObject({ ret: "RET_PF_FIXED" });
    await mmu.memslotOp({ atMs: 0, op: "flags", slot: 0, readonly: true });
    await expect(mmu.pageFault(0, 5, true)).resolves.toMatchObject({ path: "ro_fault" });
  });

  it("mmu notifier - pages dropped while a fault slept in gup make it stale (is_page_fault_stale → RET_PF_RETRY)", async () => {
    let mmu: Mmu;
    const gup: GupPort = async (req) => {
      mmu.invalidate([req.gfn]); // UFFD_EVENT_REMOVE lands after the fill, before the map
      return { result: "ok", fatal: false, sleeps: 1, spinMs: 0 };
    };
    mmu = new Mmu("6.13", scenario.vm.memslots, gup);
    await expect(mmu.pageFault(0, 9, false)).resolves.toMatchObject({ ret: "RET_PF_RETRY", path: "stale" });
    expect(mmu.spte.has(9)).toBe(false);
  });

  it("mmu notifier - invalidating a mapped page zaps its SPTE and its host mapping", async () => {
    const mmu = new Mmu("6.13", scenario.vm.memslots, ok);
    await mmu.pageFault(0, 10, false);
    expect(mmu.invalidate([10, 11])).toEqual([10]);
    expect(mmu.spte.has(10)).toBe(false);
    expect(mmu.hostPresent.has(10)).toBe(false);
  });
});
