import { describe, expect, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { Mmu, type GupPort } from "./mmu.ts";
import { Srcu } from "./srcu.ts";

const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

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
  });

  it("KVM_MEM_READONLY - cannot change on an existing slot: -EINVAL, and the slot keeps its protection", async () => {
    const mmu = new Mmu("6.13", scenario.vm.memslots, ok);
    await expect(mmu.memslotOp({ atMs: 0, op: "flags", slot: 0, readonly: true })).rejects.toMatchObject({
      code: "FL_ERR_KVM_EINVAL", errno: "EINVAL", path: "/op/readonly",
    });
    await expect(mmu.pageFault(0, 5, true)).resolves.toMatchObject({ ret: "RET_PF_FIXED" });
    await expect(mmu.memslotOp({ atMs: 0, op: "flags", slot: 1, readonly: true })).resolves.toEqual([]); // unchanged: nothing to do
  });

  it("memslot checks - __kvm_set_memory_region's errnos; a refused op changes nothing", async () => {
    const mmu = new Mmu("6.13", scenario.vm.memslots, ok);
    const zaps: number[][] = [];
    mmu.onZap = (g) => zaps.push(g);
    await mmu.pageFault(0, 3, false);
    const refused = [
      [{ op: "delete", slot: 9 }, "EINVAL", "/op/slot"],
      [{ op: "add", slot: 5, gpa: 512 * 1024, size: "1MiB" }, "EEXIST", "/op/gpa"], // overlaps slot 0's second half
      [{ op: "add", slot: 5, gpa: 100, size: 4096 }, "EINVAL", "/op/gpa"],
      [{ op: "add", slot: 5, gpa: 8 << 20, size: 4097 }, "EINVAL", "/op/size"],
      [{ op: "add", slot: 0, gpa: 8 << 20, size: 4096 }, "EINVAL", "/op/slot"],
      [{ op: "move", slot: 0, gpa: 4 << 20 }, "EEXIST", "/op/gpa"], // onto slot 1
      [{ op: "move", slot: 0, gpa: 16 << 20, size: "2MiB" }, "EINVAL", "/op/size"],
      [{ op: "move", slot: 3, gpa: 16 << 20 }, "EINVAL", "/op/slot"],
    ] as const;
    for (const [op, errno, path] of refused) {
      await expect(mmu.memslotOp({ atMs: 0, ...op }), JSON.stringify(op)).rejects.toMatchObject({ errno, path, code: `FL_ERR_KVM_${errno}` });
    }
    await expect(mmu.memslotOp({ atMs: 0, op: "add", slot: 5 } as never)).rejects.toMatchObject({ code: "FL_ERR_INVALID", path: "/op/size" });
    expect(zaps).toEqual([]);
    expect(mmu.spte.has(3)).toBe(true);
    // a slot may move onto part of its own old range (kvm_check_memslot_overlap skips the slot itself)
    await expect(mmu.memslotOp({ atMs: 0, op: "move", slot: 0, gpa: 512 * 1024 })).resolves.toEqual([3]);
  });

  it("memslot ops - run one at a time (slots_lock): a delete then an add of the same range both succeed", async () => {
    const mmu = new Mmu("6.13", scenario.vm.memslots, ok);
    const del = mmu.memslotOp({ atMs: 0, op: "delete", slot: 0 });
    const add = mmu.memslotOp({ atMs: 0, op: "add", slot: 2, gpa: 0, size: "1MiB" });
    await expect(Promise.all([del, add])).resolves.toEqual([[], []]);
    expect(mmu.memslots.find(0)?.id).toBe(2);
  });

  it("memslot delete - waits (synchronize_srcu_expedited) for every vCPU inside a fault when it began; the slot is INVALID meanwhile; no SPTE is zapped before the fault leaves", async () => {
    const held = new Map<number, () => void>();
    const gup: GupPort = (req) => new Promise((done) => held.set(req.gfn, () => done({ result: "ok", fatal: false, sleeps: 1, spinMs: 0 })));
    const mmu = new Mmu("6.13", scenario.vm.memslots, gup);
    const zaps: number[][] = [];
    mmu.onZap = (g) => zaps.push(g);
    const fault = mmu.access(0, 3, false, "tdp", false); // asleep in the uffd
    await settle();
    let done = false;
    const del = mmu.memslotOp({ atMs: 0, op: "delete", slot: 0 }).then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    expect(mmu.slotOf(4)?.invalid).toBe(true);
    await expect(mmu.access(1, 4, false, "tdp", false)).resolves.toMatchObject({ ret: "RET_PF_RETRY", path: "memslot_invalid" });
    held.get(3)!();
    await expect(fault).resolves.toMatchObject({ ret: "RET_PF_FIXED" }); // mapped before the zap ...
    await del;
    expect(zaps).toEqual([[3]]); // ... and zapped by kvm_arch_flush_shadow_memslot
    expect(mmu.slotOf(3)).toBeUndefined();
  });

  it("memslot add - one grace period: a fault that begins after it began does not hold it up; an idle VM does not wait", async () => {
    let release: () => void = () => undefined;
    const gup: GupPort = () => new Promise((done) => (release = () => done({ result: "ok", fatal: false, sleeps: 1, spinMs: 0 })));
    const mmu = new Mmu("6.13", scenario.vm.memslots, gup);
    await mmu.memslotOp({ atMs: 0, op: "add", slot: 5, gpa: 8 << 20, size: "1MiB" }); // no reader: returns
    const first = mmu.access(0, 3, false, "emulated", false);
    await settle();
    let done = false;
    const add = mmu.memslotOp({ atMs: 0, op: "add", slot: 6, gpa: 16 << 20, size: "1MiB" }).then(() => (done = true));
    await settle();
    const r1 = release;
    const later = mmu.access(1, 9, false, "tdp", false); // begins after the grace period began
    await settle();
    expect(done).toBe(false);
    r1();
    await add;
    expect(mmu.srcu.readers()).toEqual([1]); // still in its fault, and the op is done
    release();
    await Promise.all([first, later]);
  });

  it("srcu - synchronize waits for the readers present when it is called, not for later ones", async () => {
    const srcu = new Srcu();
    const a = srcu.readLock(0);
    let done = false;
    const gp = srcu.synchronize().then(() => (done = true));
    const b = srcu.readLock(1);
    await settle();
    expect(done).toBe(false);
    srcu.readUnlock(a);
    await gp;
    expect(srcu.readers()).toEqual([1]);
    srcu.readUnlock(b);
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
