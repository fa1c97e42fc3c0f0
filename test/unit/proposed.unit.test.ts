/**
 * The proposed designs (docs/profiles.md): `exit-on-missing` (Anish Moorthy, `KVM_MEM_EXIT_ON_MISSING`) and
 * `kvm-userfault` (James Houghton, `KVM_MEM_USERFAULT`), with the VMM's KVM_EXIT_MEMORY_FAULT handling.
 */
import { describe, expect, it } from "vitest";
import { KVM_MEMORY_EXIT_FLAG_USERFAULT, PROPOSED_PROFILES } from "@faultline/shared";
import { harness, settle, until } from "../helpers/inproc.ts";

describe("proposed designs (docs/profiles.md)", () => {
  for (const profile of PROPOSED_PROFILES) {
    it(`${profile} - a missing page exits KVM_RUN with KVM_EXIT_MEMORY_FAULT; the VMM has it installed and re-enters; no task sleeps in uffd`, async () => {
      const h = harness(profile, { pages: 3, autoFill: true });
      await until(() => h.vcpus[0]!.state === "done", "done");
      const v = h.vcpus[0]!;
      expect(v.exits.KVM_EXIT_MEMORY_FAULT).toBe(3);
      expect(v.pagesTouched).toBe(3);
      expect(v.stat.pf_fixed).toBe(3); // the re-entry's fault finds the page (hva_to_pfn_fast)
      expect(h.uffd.counters).toMatchObject({ faultEvents: 0, vmmRequests: 3, copies: 3, wakes: 0 });
      h.close();
    });
  }

  it("memory fault exit - run->memory_fault carries gpa, size and (kvm-userfault) KVM_MEMORY_EXIT_FLAG_USERFAULT", async () => {
    for (const [profile, flags] of [["exit-on-missing", 0], ["kvm-userfault", KVM_MEMORY_EXIT_FLAG_USERFAULT]] as const) {
      const h = harness(profile, { pages: 1 });
      h.close();
      const r = await h.mmu.pageFault(0, 5, true);
      expect(r).toMatchObject({ ret: "ERRNO", errno: "EFAULT", exit: "KVM_EXIT_MEMORY_FAULT", memoryFault: { gpa: 5 * 4096, size: 4096, flags } });
    }
  });

  for (const profile of PROPOSED_PROFILES) {
    it(`${profile}, paused postcopy - SIGUSR1 needs no FOLL_INTERRUPTIBLE: it is taken in the VMM at once and the pause completes with the page still missing`, async () => {
      const h = harness(profile, { vcpus: 2, pages: 2 });
      await until(() => h.fetching.size === 2, "both pages requested by the VMM");
      h.send([0, 1], "SIGUSR1");
      await until(() => h.tasks.records.every((r) => r.outcome !== null), "signals handled");
      expect(h.tasks.records.map((r) => [r.outcome, r.via])).toEqual([
        ["delivered-in-vmm", "memory-fault-wait"],
        ["delivered-in-vmm", "memory-fault-wait"],
      ]);
      void h.pause.pause();
      await until(() => h.pause.history[0]!.completedAtMs !== null, "pause complete");
      expect(h.fetching.size).toBe(2); // nothing arrived
      h.releaseAll();
      await h.pause.resume();
      for (let i = 0; i < 5; i++) {
        await settle();
        h.releaseAll();
      }
      await until(() => h.vcpus.every((v) => v.state === "done"), "done after resume");
      h.close();
    });
  }

  it("guard - the same annotated fault after it was resolved: the VMM gives up after MEMORY_FAULT_REPEATS", async () => {
    const h = harness("kvm-userfault", { pages: 1, autoFill: true });
    h.mmu.hostPresent.has = () => false; // a userfault bit nobody clears: KVM keeps exiting
    await expect(h.runs[0]).rejects.toThrow(/KVM_EXIT_MEMORY_FAULT for gpa 0x0 repeated 3 times/);
    expect(h.vcpus[0]!.exits.KVM_EXIT_MEMORY_FAULT).toBe(4);
    h.close();
  });

  it("kvm-userfault - SIGKILL while the VMM waits for a page kills the VM", async () => {
    const h = harness("kvm-userfault", { vcpus: 2, pages: 2 });
    await until(() => h.fetching.size === 2, "waiting");
    h.send([0], "SIGKILL");
    await until(() => h.vcpus.every((v) => v.state === "killed"), "killed");
    h.close();
  });
});
