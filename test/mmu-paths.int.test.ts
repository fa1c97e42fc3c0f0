/**
 * Kernel paths on the mmu side, end to end through the real services: async-PF deliverability by
 * guest CPL (`kvm_can_deliver_async_pf`), the emulator's failed access as MMIO
 * (`emulator_read_write_onepage`), memslot ops waiting for vCPUs inside a fault
 * (`kvm_swap_active_memslots` → `synchronize_srcu_expedited`), and pf_fast vs pf_spurious.
 */
import { describe, expect, it } from "vitest";
import type { RunView } from "../cli/src/index.ts";
import { parseScenario, type Result } from "@faultline/shared";
import { httpError, runToEnd, useTestStack, waitFor } from "./helpers/stack.ts";

const t = useTestStack();
const MiB = 1024 * 1024;

/** 6.13, two vCPUs, postcopy paused from 0 to `stallMs`. */
const base = (stallMs: number, over: { kernel?: object; vm?: object; pager?: object; workload?: object; signals?: object[]; durationMs?: number } = {}) =>
  parseScenario({
    durationMs: over.durationMs ?? 6000,
    kernel: { profile: "6.13", ...over.kernel },
    vm: { vcpus: 2, ...over.vm },
    pager: { latency: { us: 200 }, stalls: stallMs > 0 ? [{ atMs: 0, forMs: stallMs }] : [], ...over.pager },
    workload: { pagesPerVcpu: 16, site: "tdp", ...over.workload },
    signals: over.signals ?? [],
  });

/** slot 0 holds the workload; slot 1, 1 MiB at 1 GiB, is never touched (its delete zaps nothing) */
const twoSlots = { memslots: [{ slot: 0, gpa: 0, size: "64MiB" }, { slot: 1, gpa: 1024 * MiB, size: "1MiB" }] };

describe("mmu paths end to end", () => {
  it("async PF at CPL0 - with userModeShare 0 each fault is set up (kvm_async_pf_not_present) but the vCPU takes the artificial halt; no 'page not present' reaches the guest; a signal exits and the vCPU halts again", async () => {
    const r = await runToEnd(t.api, base(1000, {
      kernel: { asyncPf: true }, vm: { guest: { pvAsyncPf: true } }, workload: { userModeShare: 0 },
      signals: [{ atMs: 300, vcpus: "all", signal: "SIGUSR1" }],
    }));
    expect(r.asyncPf).toMatchObject({ kvm_try_async_get_page: 32, kvm_async_pf_not_present: 32, kvm_async_pf_completed: 32, kvm_async_pf_ready: 32 });
    // apf.halted survived the signal exit: the vCPU blocked again on re-entry, no repeated fault
    expect(r.asyncPf!.kvm_async_pf_repeated_fault).toBe(0);
    expect(r.asyncPfDelivery).toEqual({ notPresentInjected: 0, haltRequests: 32, pageReadyInjected: 0 });
    expect(r.latency.faultSlow.count).toBe(0); // the kworker waited in the uffd, not the vCPU ...
    for (const v of r.vcpus) {
      expect(v.state).toBe("done");
      expect(v.blocktimeMs).toBeGreaterThan(500); // ... but the vCPU sat in the halt through the stall
      expect(v.signals.find((s) => s.source === "plan")).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "halt-wakeup" });
      expect(v.stat.pf_taken).toBe(16); // one guest exit per page: the re-block after the signal took none
    }

    // control: the same run at CPL3 delivers "page not present" and the vCPUs do not halt
    const user = await runToEnd(t.api, base(1000, { kernel: { asyncPf: true }, vm: { guest: { pvAsyncPf: true } }, workload: { userModeShare: 1 } }));
    expect(user.asyncPfDelivery).toEqual({ notPresentInjected: 32, haltRequests: 0, pageReadyInjected: 32 });
    for (const v of user.vcpus) expect(v.blocktimeMs).toBeLessThan(r.vcpus[v.id]!.blocktimeMs);
  });

  it("emulated - with UFFD_FEATURE_SIGBUS the emulator's failed guest-memory access exits KVM_EXIT_MMIO; KVM_RUN does not fail and the run completes", async () => {
    const r = await runToEnd(t.api, base(0, { durationMs: 3000, pager: { features: ["sigbus"] }, workload: { site: "emulated" } }));
    expect(r.pager.faultEvents).toBe(0); // SIGBUS mode: no uffd event at all
    for (const v of r.vcpus) {
      expect(v.error).toBeNull();
      expect(v.state).toBe("done");
      expect(v.exits.KVM_EXIT_MMIO).toBe(16);
      expect(v.stat.insn_emulation).toBe(16);
    }
  });

  it("memslot delete - during a stall with vCPUs blocked in tdp faults it completes only after the stall; with SIGUSR1 just after it, as soon as the gup returns -EINTR", async () => {
    const del = { atMs: 300, op: "delete", slot: 1 };
    const blocked = await runToEnd(t.api, base(1500, { vm: { ...twoSlots, memslotOps: [del] } }));
    const op = blocked.memslotOps[0]!;
    expect(op).toMatchObject({ op: "delete", slot: 1, atMs: 300, errno: null });
    expect(op.requestedAtMs).toBeGreaterThanOrEqual(300);
    expect(op.completedAtMs!).toBeGreaterThanOrEqual(1500); // synchronize_srcu_expedited waited out the stall

    const signalled = await runToEnd(t.api, base(1500, { vm: { ...twoSlots, memslotOps: [del] }, signals: [{ atMs: 320, vcpus: "all", signal: "SIGUSR1" }] }));
    const op2 = signalled.memslotOps[0]!;
    const sent = Math.max(...signalled.vcpus.map((v) => v.signals.find((s) => s.source === "plan")!.sentAtMs));
    for (const v of signalled.vcpus) expect(v.signals.find((s) => s.source === "plan")).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "gup-eintr" });
    expect(op2.completedAtMs!).toBeGreaterThanOrEqual(sent);
    expect(op2.completedAtMs!).toBeLessThan(1500); // the faults left SRCU long before the stall ended
  });

  it("memslot ops through the API - a refused op is recorded with KVM's errno, an accepted one with its completion", async () => {
    const run = await t.api.createRun({ ...base(0, { durationMs: 1500, vm: twoSlots }), endWhenDone: false });
    const id = run.id;
    await waitFor(t.api, id, (v: RunView) => v.status === "running", "running");
    const refused = await httpError(t.api.call("POST", `/v1/runs/${id}/memslots`, { op: "delete", slot: 9 }));
    expect({ status: refused.status, ...refused.body }).toMatchObject({ status: 400, errno: "EINVAL" });
    await t.api.call("POST", `/v1/runs/${id}/memslots`, { op: "delete", slot: 1 });
    const done = await t.api.waitRun(id);
    const r = done.result as Result;
    expect(r.memslotOps).toHaveLength(2);
    expect(r.memslotOps[0]).toMatchObject({ op: "delete", slot: 9, atMs: null, errno: "EINVAL" });
    expect(r.memslotOps[1]).toMatchObject({ op: "delete", slot: 1, atMs: null, errno: null });
    expect(r.memslotOps[1]!.completedAtMs!).toBeGreaterThanOrEqual(r.memslotOps[1]!.requestedAtMs);
  });

  it("pf_fast - demand paging takes only not-present faults, which are never fast with A/D bits: pf_fast 0, each page pf_fixed", async () => {
    const r = await runToEnd(t.api, base(0, { durationMs: 3000 }));
    for (const v of r.vcpus) {
      expect(v.state).toBe("done");
      expect(v.stat.pf_fast).toBe(0);
      expect(v.stat.pf_fixed).toBe(16);
    }
  });
});
