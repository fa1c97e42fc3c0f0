/**
 * The sites beyond `tdp` (docs/faults.md, "The sites and their wait states": KVM's own accesses, which
 * stay uninterruptible by ordinary signals), each through the real Vcpu + Mmu + Uffd + Tasks logic, ordered by the test.
 */
import { describe, expect, it } from "vitest";
import { PROFILES } from "@faultline/shared";
import { harness, settle, until } from "../helpers/inproc.ts";

describe("sites (docs/faults.md)", () => {
  for (const profile of PROFILES) {
    it(`emulated, profile ${profile} - SIGUSR1 wakes the uaccess fault but it spins until the page arrives, then KVM_EXIT_INTR`, async () => {
      const h = harness(profile, { site: "emulated" });
      await until(() => h.uffd.waiters().length === 1, "uaccess asleep");
      // do_user_addr_fault: kernel uaccess faults with FAULT_FLAG_DEFAULT, incl. INTERRUPTIBLE
      expect(h.uffd.waiters()[0]!.waitState).toBe("TASK_INTERRUPTIBLE");
      h.send([0], "SIGUSR1");
      // fault_signal_pending() is false for a kernel-mode fault and a non-fatal signal: busy-loop
      await until(() => h.uffd.waiters()[0]?.waitState === "SPINNING", "spinning");
      await settle(50);
      expect(h.tasks.records[0]!.outcome).toBeNull();
      expect(h.vcpus[0]!.stat.signal_exits).toBe(0);
      h.release(0);
      await until(() => h.tasks.records[0]!.outcome !== null, "exit after the page");
      expect(h.tasks.records[0]).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "pre-entry-check" });
      expect(h.vcpus[0]!.spinCpuMs).toBeGreaterThan(0);
      expect(h.vcpus[0]!.stat.insn_emulation).toBe(1);
      expect(h.vcpus[0]!.stat.pf_taken).toBe(0); // no stage-2 fault: KVM read the page itself
      h.close();
    });
  }

  it("emulated - SIGKILL ends the spin at once: the uaccess fails (-EFAULT) and the VM dies", async () => {
    const h = harness("6.13", { site: "emulated", vcpus: 2 });
    await until(() => h.uffd.waiters().length === 2, "both asleep");
    h.send([0, 1], "SIGUSR1");
    await until(() => h.uffd.waiters().length === 2 && h.uffd.waiters().every((w) => w.waitState === "SPINNING"), "both spinning");
    h.send([1], "SIGKILL");
    await until(() => h.vcpus.every((v) => v.state === "killed"), "killed");
    expect(h.fetching.size).toBe(2); // no page arrived
    h.close();
  });

  for (const site of ["nested-map", "pfn-cache"] as const) {
    for (const profile of ["pre-6.2", "6.13"] as const) {
      it(`${site}, profile ${profile} - TASK_KILLABLE in every profile: SIGUSR1 ignored until the page arrives, SIGKILL works`, async () => {
        const h = harness(profile, { site, vcpus: 2 });
        await until(() => h.uffd.waiters().length === 2, "asleep");
        // kvm_vcpu_map / hva_to_pfn_retry pass no FOLL_INTERRUPTIBLE
        expect(h.uffd.waiters().map((w) => w.waitState)).toEqual(["TASK_KILLABLE", "TASK_KILLABLE"]);
        h.send([0], "SIGUSR1");
        await settle(50);
        expect(h.tasks.records[0]!.outcome).toBeNull();
        h.release(0);
        await until(() => h.tasks.records[0]!.outcome !== null, "exit after the page");
        expect(h.tasks.records[0]).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "pre-entry-check" });
        // vCPU 1 is still asleep: SIGKILL gets it (SIGPENDING pfn → -EINVAL / -EFAULT → the task dies)
        h.send([1], "SIGKILL");
        await until(() => h.vcpus.every((v) => v.state === "killed"), "killed");
        expect(h.fetching.has(4)).toBe(true);
        h.close();
      });
    }
  }

  it("nested-map - pause_all_vcpus does not complete while one vCPU is in kvm_vcpu_map, though the others parked", async () => {
    const h = harness("6.13", { site: "nested-map", vcpus: 3, pages: 1 });
    await until(() => h.uffd.waiters().length === 3, "asleep");
    h.release(0);
    h.release(1); // vCPUs 0 and 1 get their pages and halt; vCPU 2 stays in kvm_vcpu_map
    await until(() => h.vcpus[0]!.state === "done" && h.vcpus[1]!.state === "done", "two done");
    void h.pause.pause();
    await until(() => h.vcpus[0]!.state === "paused" && h.vcpus[1]!.state === "paused", "two parked");
    await settle(50);
    expect(h.pause.history[0]!.completedAtMs).toBeNull();
    expect(h.vcpus[2]!.state).toBe("running");
    h.release(2);
    await until(() => h.pause.history[0]!.completedAtMs !== null, "pause complete");
    h.close();
  });

  it("site mix - each access draws its site from the seeded mix", async () => {
    const h = harness("6.13", { pages: 4 });
    h.close();
    const { buildWorkload } = await import("../../services/vcpu/src/index.ts");
    const { parseScenario } = await import("@faultline/shared");
    const s = parseScenario({ workload: { pagesPerVcpu: 1000, site: { tdp: 0.9, emulated: 0.1 } } });
    const a = buildWorkload(s, 0).toArray();
    const emulated = a.filter((x) => x.site === "emulated").length;
    expect(emulated).toBeGreaterThan(50);
    expect(emulated).toBeLessThan(150);
    expect(a.every((x) => x.site === "tdp" || x.site === "emulated")).toBe(true);
    expect(buildWorkload(s, 0).toArray()).toEqual(a); // same seed, same draw
  });
});
