/**
 * The kernel-uaccess busy loop as a flood, end to end: an emulated access (`kvm_read_guest` →
 * `__copy_from_user`) blocked on a missing page while the page source stalls, then SIGUSR1. For a
 * kernel-mode fault `fault_signal_pending()` is false with a non-fatal signal, so the fault is
 * retried at once and each pass through `handle_userfault` queues another UFFD_EVENT_PAGEFAULT.
 */
import { describe, expect, it } from "vitest";
import { parseScenario, type Result } from "@faultline/shared";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

const SIGNAL_AT = 300;
const spinScenario = (over: { durationMs: number; stallMs: number }) =>
  parseScenario({
    name: "pager-spin", durationMs: over.durationMs, endWhenDone: true,
    kernel: { profile: "6.13" }, vm: { vcpus: 1 },
    pager: { features: ["thread_id"], latency: { us: 200 }, stalls: [{ atMs: 0, forMs: over.stallMs }] },
    workload: { pagesPerVcpu: 4, site: "emulated" },
    signals: [{ atMs: SIGNAL_AT, vcpus: 0, signal: "SIGUSR1" }],
  });

const planned = (r: Result) => r.vcpus[0]!.signals.find((s) => s.source === "plan")!;

describe("uaccess spin end to end", () => {
  it("pager spin - emulated access, stall, SIGUSR1: thousands of fault events counted during the spin, CPU time = the spin's length x cpuShare", async () => {
    const s = spinScenario({ durationMs: 1500, stallMs: 60_000 });
    const { eventsPerSec, cpuShare } = s.kernel.uaccessSpin;
    const r = await runToEnd(t.api, s);
    const v = r.vcpus[0]!;
    // still in the loop at the end: woken by the signal, never out (the signal is ignored)
    expect(v.blockedIn).toMatchObject({ site: "emulated", waitState: "SPINNING" });
    expect(planned(r).outcome).toBe("ignored");
    expect(v.blockedIn!.sinceMs).toBeGreaterThanOrEqual(SIGNAL_AT); // the spin began with the signal
    const spunMs = r.durationMs - v.blockedIn!.sinceMs;
    // CPU time, not wall time: the spin's length times the share of a CPU the looping task burns
    expect(Math.abs(v.spinCpuMs - spunMs * cpuShare)).toBeLessThan(1);
    expect(v.spinCpuMs).toBeLessThan(spunMs);
    // the flood: thousands of re-faults, every one a UFFD_EVENT_PAGEFAULT of the vCPU's thread; never more than the rate allows
    const p = r.pager;
    expect(p.spinRefaults).toBeGreaterThan(2000);
    expect(p.spinRefaults).toBeLessThanOrEqual(Math.ceil((eventsPerSec * spunMs) / 1000) + 1);
    // the first fault and the pass that found the signal, then the flood; one more pass was seen once under the
    // full suite's load (not pinned down: noted in the issue), never more
    expect(p.faultEvents - p.spinRefaults).toBeGreaterThanOrEqual(2);
    expect(p.faultEvents - p.spinRefaults).toBeLessThanOrEqual(3);
    expect(p.eventsByPtid).toEqual({ vcpu0: p.faultEvents });
    expect(p.copies).toBe(0); // the page never came
  });

  it("pager spin - the page ends the spin: the vCPU takes SIGUSR1 after it, with the CPU time and re-faults of the spin counted", async () => {
    const stallMs = 1000;
    const s = spinScenario({ durationMs: 20_000, stallMs });
    const { eventsPerSec, cpuShare } = s.kernel.uaccessSpin;
    const r = await runToEnd(t.api, s);
    const v = r.vcpus[0]!;
    const sig = planned(r);
    expect(v.state).toBe("done");
    expect(sig.outcome).toBe("KVM_EXIT_INTR");
    const exitAt = sig.sentAtMs + sig.latencyUs! / 1000;
    expect(exitAt).toBeGreaterThanOrEqual(stallMs); // out only once the page came
    // the spin lay between the signal and the vCPU's exit; CPU time is its share of that, and more than a sliver of it
    expect(v.spinCpuMs).toBeLessThanOrEqual(cpuShare * (exitAt - sig.sentAtMs));
    expect(v.spinCpuMs).toBeGreaterThan((cpuShare * (stallMs - SIGNAL_AT)) / 2);
    const p = r.pager;
    expect(p.spinRefaults).toBeGreaterThan(2000);
    expect(p.spinRefaults).toBeLessThanOrEqual(Math.ceil((eventsPerSec * v.spinCpuMs) / cpuShare / 1000) + 1);
    expect(p.copies).toBe(4);
    expect(p.duplicateRequests).toBe(1); // the spin's re-faults are counted apart
  });
});
