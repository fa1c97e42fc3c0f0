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

  it("mmu - a not-present fault racing another vCPU's map is not fast (page_fault_can_be_fast): the slow path finds the SPTE, RET_PF_SPURIOUS", async () => {
    const r = recorder();
    const mmu = new Mmu("6.13", slots, r.gup);
    await mmu.pageFault(0, 5, true); // vCPU 0 maps it through gup
    await expect(mmu.pageFault(1, 5, true)).resolves.toMatchObject({ ret: "RET_PF_SPURIOUS", path: "hva_to_pfn_fast" });
    expect(r.calls).toHaveLength(1); // the racing fault got the pfn from attempt 1
  });

  it("mmu - emulated access: a failed uaccess (UFFD_FEATURE_SIGBUS, poison) is MMIO, not -EFAULT; with a fatal signal it is -EFAULT and fatal", async () => {
    const efault = (fatal: boolean): GupPort => async () => ({ result: "EFAULT", fatal, sleeps: 0, spinMs: 0 });
    await expect(new Mmu("6.13", slots, efault(false)).emulatedAccess(0, 4, false)).resolves.toMatchObject({ ret: "RET_PF_EMULATE", exit: "KVM_EXIT_MMIO", path: "uaccess", fatal: false });
    await expect(new Mmu("6.13", slots, efault(true)).emulatedAccess(0, 4, false)).resolves.toMatchObject({ ret: "ERRNO", errno: "EFAULT", fatal: true });
  });

  it("mmu - a vCPU inside a fault is an SRCU reader until the fault returns, whatever its site", async () => {
    let release: () => void = () => undefined;
    const gup: GupPort = () => new Promise((done) => (release = () => done({ result: "ok", fatal: false, sleeps: 1, spinMs: 0 })));
    const mmu = new Mmu("6.13", slots, gup);
    const f = mmu.access(3, 7, false, "nested-map", false);
    await new Promise((r) => setImmediate(r));
    expect(mmu.srcu.readers()).toEqual([3]);
    release();
    await f;
    expect(mmu.srcu.readers()).toEqual([]);
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
