/**
 * Schedules (Jepsen-nemesis style, seeded) end to end: `parseScenario` expands them into
 * `pager.stalls`, `signals` and `vmm.pauses`, and the services run those unchanged (the pauses:
 * QEMU's pause_all_vcpus / resume_all_vcpus, one record per cycle). Orderings, never ms windows.
 */
import { describe, expect, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

describe("schedules", () => {
  it("schedules - 6.2, periodic stalls and SIGUSR1: every SIGUSR1 sent in a stall exits KVM_RUN (KVM_EXIT_INTR) or is coalesced, and every vCPU finishes", async () => {
    const scenario = parseScenario({
      name: "sched-stall-sigusr1", seed: 11, durationMs: 15_000,
      kernel: { profile: "6.2" }, vm: { vcpus: 2 },
      // ~2.5 s of guest compute per vCPU, so the vCPUs fault across several stall windows
      workload: { pagesPerVcpu: 128, computeUs: 20_000 },
      pager: { latency: { us: 200 } },
      schedules: {
        stalls: [{ fromMs: 100, toMs: 3000, everyMs: 1000, forMs: 500, jitterMs: 100 }],
        signals: [{ fromMs: 50, toMs: 3000, everyMs: 150, jitterMs: 20, signal: "SIGUSR1", vcpus: "all" }],
      },
    });
    expect(scenario.pager.stalls).toHaveLength(3);
    const r = await runToEnd(t.api, scenario);
    const windows = scenario.pager.stalls.map((w) => [w.atMs, w.atMs + w.forMs] as const);
    const inStall = (ms: number) => windows.some(([a, b]) => ms >= a && ms < b);
    let duringStall = 0;
    let woken = 0;
    for (const v of r.vcpus) {
      expect(v.state).toBe("done");
      const plan = v.signals.filter((s) => s.source === "plan" && s.signal === "SIGUSR1" && s.sentAtMs < v.doneAtMs!);
      expect(plan.length).toBeGreaterThan(5);
      for (const s of plan.filter((s) => inStall(s.sentAtMs))) {
        duringStall++;
        expect(["KVM_EXIT_INTR", "coalesced"]).toContain(s.outcome);
        if (s.via === "gup-eintr") woken++;
      }
    }
    expect(duringStall).toBeGreaterThan(5);
    // some of them found the vCPU asleep in the stalled fault (FOLL_INTERRUPTIBLE) and woke it
    expect(woken).toBeGreaterThan(0);
    expect(r.demandPaging.allDone).toBe(true);
  });

  it("schedules - a pause schedule of 3 cycles: 3 pause records, each requested, completed and resumed in order", async () => {
    const scenario = parseScenario({
      name: "sched-pauses", seed: 3, durationMs: 15_000,
      kernel: { profile: "6.2" }, vm: { vcpus: 2 },
      workload: { pagesPerVcpu: 128, computeUs: 20_000 },
      pager: { latency: { us: 200 } },
      schedules: { pauses: [{ fromMs: 300, everyMs: 900, pauseForMs: 300, count: 3 }] },
    });
    expect(scenario.vmm.pauses).toEqual([{ atMs: 300, resumeAtMs: 600 }, { atMs: 1200, resumeAtMs: 1500 }, { atMs: 2100, resumeAtMs: 2400 }]);
    const r = await runToEnd(t.api, scenario);
    expect(r.pauses).toHaveLength(3);
    let prevResumed = -1;
    for (const p of r.pauses) {
      expect(p.completedAtMs).not.toBeNull();
      expect(p.resumedAtMs).not.toBeNull();
      expect(p.requestedAtMs).toBeGreaterThanOrEqual(prevResumed);
      expect(p.completedAtMs!).toBeGreaterThanOrEqual(p.requestedAtMs);
      expect(p.resumedAtMs!).toBeGreaterThanOrEqual(p.completedAtMs!);
      prevResumed = p.resumedAtMs!;
    }
    expect(r.pause).toEqual(r.pauses.at(-1));
    for (const v of r.vcpus) expect(v.state).toBe("done");
    expect(r.demandPaging.pausedS).toBeGreaterThan(0);
  });
});
