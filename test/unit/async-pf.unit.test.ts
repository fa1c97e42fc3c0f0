/** Async page faults (docs/faults.md), through the real Vcpu + Mmu + Uffd logic. */
import { describe, expect, it } from "vitest";
import { ASYNC_PF_PER_VCPU, Mmu } from "../../services/mmu/src/index.ts";
import { parseScenario } from "@faultline/shared";
import { harness, until } from "../helpers/inproc.ts";

describe("async page faults (docs/faults.md)", () => {
  it("PV async PF - the vCPU is not blocked in gup: it runs other pages while kworkers wait in uffd; blocktime 0, fault latency high", async () => {
    const h = harness("6.13", { pages: 4, asyncPf: { pv: true }, userModeShare: 1 });
    await until(() => h.fetching.size === 4, "all four pages requested");
    const v = h.vcpus[0]!;
    expect(h.uffd.waiters()).toEqual([]); // no vCPU task in handle_userfault
    expect(h.uffd.kworkersAsleep).toBe(4); // async_pf_execute: the kworker sleeps, TASK_KILLABLE
    expect(h.mmu.apf!.events).toMatchObject({ kvm_try_async_get_page: 4, kvm_async_pf_not_present: 4, kvm_async_pf_completed: 0 });
    expect(v.state).toBe("running");
    h.releaseAll();
    await until(() => v.state === "done", "done");
    expect(v.pagesTouched).toBe(4);
    expect(v.blocktimeMs).toBe(0); // "blocktime reads zero" …
    expect(v.asyncUs).toHaveLength(4); // … while each fault waited for its page
    expect(v.asyncUs.every((us) => us > 0)).toBe(true);
    expect(v.stat.pf_fixed).toBe(4); // the prefetch replays (kvm_arch_async_page_ready)
    expect(h.mmu.apf!.events).toMatchObject({ kvm_async_pf_completed: 4, kvm_async_pf_ready: 4 });
    h.close();
  });

  it("no PV - KVM_REQ_APF_HALT parks the vCPU in an artificial halt that a signal wakes (KVM_EXIT_INTR); apf.halted stays set, so it blocks again on re-entry without a new fault", async () => {
    const h = harness("pre-6.2", { pages: 2, asyncPf: { pv: false }, userModeShare: 1 });
    const v = h.vcpus[0]!;
    await until(() => v.inFault?.waitState === "TASK_INTERRUPTIBLE", "artificial halt");
    h.send([0], "SIGUSR1"); // even on pre-6.2: the halt is kvm_vcpu_block, TASK_INTERRUPTIBLE
    await until(() => h.tasks.records[0]!.outcome !== null, "exit");
    expect(h.tasks.records[0]).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "halt-wakeup" });
    await until(() => v.inFault?.waitState === "TASK_INTERRUPTIBLE", "blocked again after re-entry");
    // vcpu_run went to vcpu_block at once: no guest entry, no second exit, no second fault
    expect(h.mmu.apf!.events).toMatchObject({ kvm_try_async_get_page: 1, kvm_async_pf_repeated_fault: 0 });
    expect(v.stat).toMatchObject({ pf_taken: 1, exits: 1, halt_wakeup: 0, signal_exits: 1 });
    h.releaseAll();
    await until(() => v.stat.halt_wakeup === 1, "the completion's kvm_vcpu_kick wakes the halted vCPU");
    await until(() => h.fetching.size === 1, "second page requested");
    h.releaseAll();
    await until(() => v.state === "done", "done");
    expect(v.pagesTouched).toBe(2);
    h.close();
  });

  it(`queue limit - past ${ASYNC_PF_PER_VCPU} outstanding async page faults per vCPU the fault goes synchronous`, async () => {
    const h = harness("6.13", { pages: ASYNC_PF_PER_VCPU + 2, asyncPf: { pv: true }, userModeShare: 1 });
    await until(() => h.uffd.waiters().length === 1, "the vCPU itself asleep in uffd");
    expect(h.uffd.kworkersAsleep).toBe(ASYNC_PF_PER_VCPU);
    expect(h.mmu.apf!.queued(0)).toBe(ASYNC_PF_PER_VCPU);
    expect(h.uffd.waiters()[0]).toMatchObject({ vcpu: 0, gfn: ASYNC_PF_PER_VCPU, waitState: "TASK_INTERRUPTIBLE" });
    h.releaseAll();
    h.close();
  });

  it("CPL0 - with PV on, a guest-kernel access is not deliverable: the async PF is set up (kworker, tracepoint) but the vCPU halts; no 'page not present' nor 'page ready' reaches the guest", async () => {
    const h = harness("6.13", { pages: 2, asyncPf: { pv: true }, userModeShare: 0 });
    const v = h.vcpus[0]!;
    await until(() => v.inFault?.waitState === "TASK_INTERRUPTIBLE" && h.fetching.size === 1, "artificial halt, kworker fetching");
    expect(h.uffd.kworkersAsleep).toBe(1);
    expect(h.uffd.waiters()).toEqual([]);
    expect(h.mmu.apf!.events).toMatchObject({ kvm_async_pf_not_present: 1 });
    expect(h.mmu.apf!.delivery).toEqual({ notPresentInjected: 0, haltRequests: 1, pageReadyInjected: 0 });
    h.releaseAll();
    await until(() => h.fetching.size === 1, "second page requested");
    h.releaseAll();
    await until(() => v.state === "done", "done");
    expect(h.mmu.apf!.events).toMatchObject({ kvm_async_pf_not_present: 2, kvm_async_pf_ready: 2 });
    expect(h.mmu.apf!.delivery).toEqual({ notPresentInjected: 0, haltRequests: 2, pageReadyInjected: 0 });
    expect(v.blocktimeMs).toBeGreaterThan(0);
    h.close();
  });

  it("CPL3 - with PV on, a guest-user access gets 'page not present', then 'page ready'", async () => {
    const h = harness("6.13", { pages: 2, asyncPf: { pv: true }, userModeShare: 1 });
    await until(() => h.fetching.size === 2, "both pages requested");
    h.releaseAll();
    await until(() => h.vcpus[0]!.state === "done", "done");
    expect(h.mmu.apf!.delivery).toEqual({ notPresentInjected: 2, haltRequests: 0, pageReadyInjected: 2 });
    h.close();
  });

  it("gate - with guest interrupts off (IF=0) kvm_can_do_async_pf is false and the fault is synchronous", async () => {
    const slots = parseScenario({}).vm.memslots;
    const calls: unknown[] = [];
    const mmu = new Mmu("6.13", slots, async (req) => (calls.push(req), { result: "ok", fatal: false, sleeps: 1, spinMs: 0 }), {
      pv: true, interruptsEnabled: false, completed: () => undefined,
    });
    await expect(mmu.pageFault(0, 1, false)).resolves.toMatchObject({ ret: "RET_PF_FIXED", path: "gup" });
    expect(calls).toEqual([{ vcpu: 0, gfn: 1, write: false, interruptible: true }]);
    expect(mmu.apf!.events.kvm_try_async_get_page).toBe(0);
  });
});
