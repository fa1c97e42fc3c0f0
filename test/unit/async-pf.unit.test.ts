/** Async page faults (docs/faults.md), through the real Vcpu + Mmu + Uffd logic. */
import { describe, expect, it } from "vitest";
import { ASYNC_PF_PER_VCPU, Mmu } from "../../services/mmu/src/index.ts";
import { parseScenario } from "../../shared/src/index.ts";
import { harness, until } from "../helpers/inproc.ts";

describe("async page faults (docs/faults.md)", () => {
  it("PV async PF - the vCPU is not blocked in gup: it runs other pages while kworkers wait in uffd; blocktime 0, fault latency high", async () => {
    const h = harness("6.13", { pages: 4, asyncPf: { pv: true } });
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

  it("no PV - KVM_REQ_APF_HALT parks the vCPU in an artificial halt that a signal wakes (KVM_EXIT_INTR); the re-executed access is a repeated fault", async () => {
    const h = harness("pre-6.2", { pages: 2, asyncPf: { pv: false } });
    const v = h.vcpus[0]!;
    await until(() => v.inFault?.waitState === "TASK_INTERRUPTIBLE", "artificial halt");
    h.send([0], "SIGUSR1"); // even on pre-6.2: the halt is kvm_vcpu_block, TASK_INTERRUPTIBLE
    await until(() => h.tasks.records[0]!.outcome !== null, "exit");
    expect(h.tasks.records[0]).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "halt-wakeup" });
    await until(() => h.mmu.apf!.events.kvm_async_pf_repeated_fault === 1, "repeated fault after re-entry");
    expect(v.inFault?.waitState).toBe("TASK_INTERRUPTIBLE");
    h.releaseAll();
    await until(() => h.fetching.size === 1, "second page requested");
    h.releaseAll();
    await until(() => v.state === "done", "done");
    expect(v.pagesTouched).toBe(2);
    h.close();
  });

  it(`queue limit - past ${ASYNC_PF_PER_VCPU} outstanding async page faults per vCPU the fault goes synchronous`, async () => {
    const h = harness("6.13", { pages: ASYNC_PF_PER_VCPU + 2, asyncPf: { pv: true } });
    await until(() => h.uffd.waiters().length === 1, "the vCPU itself asleep in uffd");
    expect(h.uffd.kworkersAsleep).toBe(ASYNC_PF_PER_VCPU);
    expect(h.mmu.apf!.queued(0)).toBe(ASYNC_PF_PER_VCPU);
    expect(h.uffd.waiters()[0]).toMatchObject({ vcpu: 0, gfn: ASYNC_PF_PER_VCPU, waitState: "TASK_INTERRUPTIBLE" });
    h.releaseAll();
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
