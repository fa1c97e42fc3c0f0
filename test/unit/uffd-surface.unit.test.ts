/** The uffd surface (`struct uffd_msg`, registration modes, the UFFDIO_* ioctls, UFFDIO_POISON; docs/faults.md) through the real Vcpu + Mmu + Uffd logic. */
import { describe, expect, it } from "vitest";
import { harness, settle, until } from "../helpers/inproc.ts";

describe("uffd surface", () => {
  it("MINOR mode - the page is resolved with UFFDIO_CONTINUE, not UFFDIO_COPY", async () => {
    const h = harness("6.13", { pages: 2, autoFill: true, config: { mode: "minor" } });
    await until(() => h.vcpus[0]!.state === "done", "done");
    expect(h.uffd.counters).toMatchObject({ continues: 2, copies: 0, faultEvents: 2 });
    h.close();
  });

  it("UFFDIO_ZEROPAGE - zero pages are installed without a fetch", async () => {
    const h = harness("6.13", { pages: 3, config: { isZero: (g) => g !== 1 } });
    await until(() => h.fetching.size === 1, "only the non-zero page fetched");
    expect([...h.fetching]).toEqual([1]);
    h.release(1);
    await until(() => h.vcpus[0]!.state === "done", "done");
    expect(h.uffd.counters).toMatchObject({ zeropages: 2, copies: 1 });
    h.close();
  });

  it("*_MODE_DONTWAKE + UFFDIO_WAKE - fills do not wake; one UFFDIO_WAKE wakes the batch", async () => {
    // a flush interval far beyond the test, so that only the batch count can wake
    const h = harness("6.13", { vcpus: 2, pages: 1, config: { wakeBatch: 2, wakeFlushMs: 60_000 } });
    await until(() => h.uffd.waiters().length === 2, "both asleep");
    h.release(0);
    await settle(20);
    expect(h.uffd.resident.has(0)).toBe(true);
    expect(h.uffd.waiters()).toHaveLength(2); // installed, nobody woken
    h.release(1);
    await until(() => h.vcpus.every((v) => v.state === "done"), "both done");
    expect(h.uffd.counters).toMatchObject({ wakeCalls: 1, wakes: 2, copies: 2 });
    h.close();
  });

  it("UFFDIO_POISON - KVM_PFN_ERR_HWPOISON: SIGBUS (BUS_MCEERR_AR) to the vCPU, RET_PF_RETRY, the guest drops the page", async () => {
    const h = harness("6.13", { pages: 3, autoFill: true, config: { poison: new Set([1]) } });
    await until(() => h.vcpus[0]!.state === "done", "done");
    const v = h.vcpus[0]!;
    expect(v.hwpoisonSigbus).toBe(1);
    expect(v.pagesTouched).toBe(2);
    expect(v.exits.KVM_EXIT_INTR).toBe(1);
    expect(h.uffd.counters.poisons).toBe(1);
    expect(h.mmu.counters.hwpoison).toBe(1);
    h.close();
  });

  it("UFFD_FEATURE_THREAD_ID - events carry the faulting task: the vCPU, or the async-PF kworker", async () => {
    const a = harness("6.13", { vcpus: 2, pages: 2, autoFill: true, config: { threadId: true } });
    await until(() => a.vcpus.every((v) => v.state === "done"), "done");
    expect(a.uffd.eventsByPtid).toEqual({ vcpu0: 2, vcpu1: 2 });
    a.close();
    const b = harness("6.13", { pages: 2, autoFill: true, config: { threadId: true }, asyncPf: { pv: true } });
    await until(() => b.vcpus[0]!.state === "done", "done");
    expect(b.uffd.eventsByPtid).toEqual({ kworker: 2 });
    b.close();
    const c = harness("6.13", { pages: 2, autoFill: true });
    await until(() => c.vcpus[0]!.state === "done", "done");
    expect(c.uffd.eventsByPtid).toEqual({ "0": 2 }); // without the feature ptid is 0
    c.close();
  });

  it("UFFD_FEATURE_SIGBUS - no event is queued; gup gets VM_FAULT_SIGBUS and KVM_RUN fails with -EFAULT", async () => {
    const h = harness("6.13", { pages: 2, config: { sigbus: true } });
    await expect(h.runs[0]).rejects.toThrow(/KVM_RUN failed with -EFAULT/);
    expect(h.uffd.counters.faultEvents).toBe(0);
    expect(h.fetching.size).toBe(0);
    h.close();
  });

  it("WP mode - reads of present pages never reach the uffd; a write is a WP fault resolved by UFFDIO_WRITEPROTECT", async () => {
    const h = harness("6.13", { pages: 4, autoFill: true, writeRatio: 0.5, config: { mode: "wp" } });
    await until(() => h.vcpus[0]!.state === "done", "done");
    const writes = h.vcpus[0]!.accesses.toArray().filter((a) => a.write).length;
    expect(writes).toBeGreaterThan(0);
    expect(h.uffd.counters).toMatchObject({ faultEvents: writes, writeprotects: writes, copies: 0 });
    expect(h.vcpus[0]!.pagesTouched).toBe(4);
    h.close();
  });
});
