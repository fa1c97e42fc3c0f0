/**
 * Who wakes for which signal (docs/signals.md), the rows issue 2 covers (the `tdp` site), each run
 * through the real Vcpu + Mmu + Uffd + Tasks logic. Kernel rules cited by the kernel function they come from.
 */
import { describe, expect, it } from "vitest";
import { MERGED_PROFILES } from "@faultline/shared";
import { harness, settle, until } from "../helpers/inproc.ts";

describe("wake rules (docs/signals.md)", () => {
  for (const profile of ["6.2", "6.13"] as const) {
    it(`tdp attempt 2, profile ${profile} - TASK_INTERRUPTIBLE: SIGUSR1 gets the vCPU out with KVM_EXIT_INTR before the page arrives`, async () => {
      const h = harness(profile);
      await until(() => h.uffd.waiters().length === 1, "vCPU asleep in handle_userfault");
      expect(h.uffd.waiters()[0]).toMatchObject({ vcpu: 0, gfn: 0, waitState: "TASK_INTERRUPTIBLE" });
      h.send([0], "SIGUSR1");
      await until(() => h.tasks.records[0]?.outcome !== null, "signal outcome");
      // handle_userfault: signal_wake_up → VM_FAULT_RETRY → gup_signal_pending(FOLL_INTERRUPTIBLE) → -EINTR
      // kvm_handle_error_pfn: KVM_PFN_ERR_SIGPENDING → kvm_handle_signal_exit: KVM_EXIT_INTR, ++signal_exits
      expect(h.tasks.records[0]).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "gup-eintr" });
      expect(h.fetching.has(0)).toBe(true); // the page still has not arrived
      expect(h.vcpus[0]!.stat.signal_exits).toBe(1);
      expect(h.vcpus[0]!.exits.KVM_EXIT_INTR).toBe(1);
      // kvm_handle_signal_exit: the instruction did not complete; the next KVM_RUN re-faults and posts a second request
      await until(() => h.uffd.waiters().length === 1, "re-fault after KVM_EXIT_INTR");
      expect(h.uffd.counters.duplicateRequests).toBe(1);
      expect(h.vcpus[0]!.pagesTouched).toBe(0);
      h.close();
    });
  }

  it("tdp attempt 2, profile pre-6.2 - TASK_KILLABLE: SIGUSR1 is ignored until the page arrives, then KVM_EXIT_INTR at the pre-entry check", async () => {
    const h = harness("pre-6.2");
    await until(() => h.uffd.waiters().length === 1, "vCPU asleep in handle_userfault");
    expect(h.uffd.waiters()[0]!.waitState).toBe("TASK_KILLABLE");
    h.send([0], "SIGUSR1");
    await settle(50);
    // userfaultfd_get_blocking_state: attempt 2 < 6.2 has FAULT_FLAG_KILLABLE only, TASK_KILLABLE: SIGKILL only
    expect(h.tasks.records[0]!.outcome).toBeNull();
    expect(h.uffd.waiters()).toHaveLength(1);
    expect(h.vcpus[0]!.stat.signal_exits).toBe(0);
    h.release(0);
    await until(() => h.tasks.records[0]!.outcome !== null, "exit after the page arrived");
    // xfer_to_guest_mode_handle_work: before every guest entry a pending unblocked signal gives KVM_EXIT_INTR
    expect(h.tasks.records[0]).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "pre-entry-check" });
    expect(h.vcpus[0]!.stat.pf_fixed).toBe(1);
    expect(h.vcpus[0]!.stat.signal_exits).toBe(1);
    expect(h.uffd.counters.duplicateRequests).toBe(0);
    h.close();
  });

  for (const profile of MERGED_PROFILES) {
    it(`SIGKILL, profile ${profile} - wakes the sleeper in any state and kills every vCPU of the VM`, async () => {
      const h = harness(profile, { vcpus: 3 });
      await until(() => h.uffd.waiters().length === 3, "three vCPUs asleep");
      h.send([1], "SIGKILL");
      // signal_pending_state: TASK_KILLABLE wakes on SIGKILL; gup_signal_pending: gup "always bails if ... a fatal signal is pending"
      await until(() => h.vcpus.every((v) => v.state === "killed"), "all vCPUs killed");
      expect([...h.fetching].sort()).toEqual([0, 4, 8]); // no page ever arrived
      expect(h.tasks.records[0]).toMatchObject({ signal: "SIGKILL", outcome: "killed" });
      expect(h.uffd.waiters()).toHaveLength(0);
      h.close();
    });
  }

  it("SIGTERM to a vCPU thread - QEMU's vCPU threads block it (qemu_thread_create): it stays pending, wakes nothing, kills nobody", async () => {
    const h = harness("pre-6.2");
    await until(() => h.uffd.waiters().length === 1, "vCPU asleep");
    h.send([0], "SIGTERM");
    await settle(50);
    expect(h.tasks.records[0]!.outcome).toBe("blocked");
    expect(h.uffd.waiters()).toHaveLength(1);
    h.release(0);
    await until(() => h.uffd.waiters()[0]?.gfn === 1, "the guest went on to its next page");
    expect(h.vcpus[0]!.stat.signal_exits).toBe(0); // never pending for signal_pending(): no KVM_EXIT_INTR
    expect(h.vcpus[0]!.state).toBe("running");
    h.close();
  });

  it("SIGUSR1 pending before the sleep, profile 6.2 - handle_userfault queues the event but schedule() returns at once", async () => {
    const h = harness("6.2", { pages: 2 });
    await until(() => h.uffd.waiters().length === 1, "asleep on page 0");
    h.release(0);
    h.send([0], "SIGUSR1"); // lands while the vCPU is between faults
    await until(() => h.tasks.records[0]!.outcome !== null, "exit");
    expect(h.tasks.records[0]!.outcome).toBe("KVM_EXIT_INTR");
    h.close();
  });
});

describe("fault path (docs/faults.md)", () => {
  it("uffd - one fetch per page however many vCPUs wait on it; UFFDIO_COPY wakes them all", async () => {
    const h = harness("6.13", { vcpus: 1, pages: 1 });
    await until(() => h.uffd.waiters().length === 1, "asleep");
    const second = h.uffd.faultIn({ vcpu: 1, gfn: 0, write: false, interruptible: true });
    await settle();
    expect(h.uffd.waiters()).toHaveLength(2);
    expect(h.uffd.counters).toMatchObject({ faultEvents: 2, duplicateRequests: 1 });
    h.release(0);
    await expect(second).resolves.toMatchObject({ result: "ok" });
    await until(() => h.vcpus[0]!.state === "done", "vCPU 0 done");
    expect(h.uffd.counters).toMatchObject({ copies: 1, wakes: 2 });
    expect(h.uffd.copy(0)).toBe("EEXIST"); // a fill of a present page is EEXIST, not an error
    expect(h.uffd.counters.eexist).toBe(1);
    h.close();
  });

  it("retry - after KVM_EXIT_INTR and resume the vCPU re-faults, finds the page, and finishes its pages", async () => {
    const h = harness("6.2", { vcpus: 2, pages: 3, autoFill: false });
    await until(() => h.uffd.waiters().length === 2, "both asleep");
    void h.pause.pause();
    await until(() => h.vcpus.every((v) => v.state === "paused"), "both parked");
    const p = h.pause.history[0]!;
    expect(p.completedAtMs).not.toBeNull();
    expect(p.kicks).toBeGreaterThanOrEqual(2);
    h.releaseAll();
    await settle();
    await h.pause.resume();
    for (let i = 0; i < 3; i++) {
      await settle();
      h.releaseAll();
    }
    await until(() => h.vcpus.every((v) => v.state === "done"), "both done");
    for (const v of h.vcpus) {
      expect(v.pagesTouched).toBe(3);
      expect(v.stat.pf_fixed).toBe(3);
      expect(v.stat.signal_exits).toBeGreaterThanOrEqual(1);
    }
    h.close();
  });

  it("pause_all_vcpus, profile pre-6.2 - does not complete while a vCPU sleeps TASK_KILLABLE; completes once the page arrives", async () => {
    const h = harness("pre-6.2", { vcpus: 2, pages: 2 });
    await until(() => h.uffd.waiters().length === 2, "both asleep");
    void h.pause.pause();
    await settle(50);
    expect(h.pause.history[0]!.completedAtMs).toBeNull();
    expect(h.vcpus.map((v) => v.state)).toEqual(["running", "running"]);
    h.release(0); // only vCPU 0's page
    await until(() => h.vcpus[0]!.state === "paused", "vCPU 0 parked");
    await settle(50);
    expect(h.pause.history[0]!.completedAtMs).toBeNull();
    h.release(2);
    await until(() => h.pause.history[0]!.completedAtMs !== null, "pause complete");
    h.close();
  });
});
