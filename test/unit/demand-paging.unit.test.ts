/** The demand-paging figures as demand_paging_test computes them, with paused time taken out; and the lines it prints. */
import { describe, expect, it } from "vitest";
import { PauseLog, demandPaging } from "../../services/vcpu/src/demand-paging.ts";
import { formatResult } from "../../cli/src/summary.ts";
import { summarize, type Result } from "@faultline/shared";

describe("demand paging", () => {
  it("demand paging - without pauses: time to the last vCPU's last page, rate = pages per vCPU / time, overall = rate × nr_vcpus", () => {
    const d = demandPaging([
      { pages: 100, pagesTouched: 100, doneAtMs: 400, paused: [] },
      { pages: 100, pagesTouched: 100, doneAtMs: 500, paused: [] },
    ], 900);
    expect(d.allDone).toBe(true);
    expect(d.totalGuestExecutionS).toBe(0.5);
    expect(d.totalGuestExecutionNs).toBe(500_000_000);
    expect(d.perVcpuRate).toBe(200);
    expect(d.overallRate).toBe(400);
    expect(d.vcpuExecutionNs).toEqual([400_000_000, 500_000_000]);
    expect(d.pausedS).toBe(0);
  });

  it("demand paging - a pause of the whole VM is taken out of the total and of each vCPU's time", () => {
    // both vCPUs parked from 100 to 300 ms (vCPU 1 parks 20 ms later: it was blocked in a fault until then)
    const d = demandPaging([
      { pages: 100, pagesTouched: 100, doneAtMs: 400, paused: [[100, 300]] },
      { pages: 100, pagesTouched: 100, doneAtMs: 500, paused: [[120, 300]] },
    ], 900);
    expect(d.pausedS).toBe(0.18); // 120 → 300: every unfinished vCPU parked
    expect(d.totalGuestExecutionNs).toBe(320_000_000);
    expect(d.perVcpuRate).toBe(312.5);
    expect(d.overallRate).toBe(625);
    expect(d.vcpuExecutionNs).toEqual([200_000_000, 320_000_000]); // each loses its own parked time
  });

  it("demand paging - a finished vCPU does not hold the VM's pause open, and a pause after the last page does not count", () => {
    const d = demandPaging([
      { pages: 10, pagesTouched: 10, doneAtMs: 100, paused: [] }, // done before the pause, never parked
      { pages: 10, pagesTouched: 10, doneAtMs: 600, paused: [[200, 400], [700, null]] },
    ], 800);
    expect(d.pausedS).toBe(0.2);
    expect(d.totalGuestExecutionNs).toBe(400_000_000);
    expect(d.vcpuExecutionNs).toEqual([100_000_000, 400_000_000]);
  });

  it("demand paging - while vCPUs still run: up to now, from the pages touched so far", () => {
    const d = demandPaging([
      { pages: 100, pagesTouched: 30, doneAtMs: null, paused: [[50, null]] },
      { pages: 100, pagesTouched: 50, doneAtMs: null, paused: [] },
    ], 200);
    expect(d.allDone).toBe(false);
    expect(d.pagesPerVcpu).toBe(40);
    expect(d.totalGuestExecutionS).toBe(0.2); // vCPU 1 never parked: nothing taken out
    expect(d.vcpuExecutionNs).toEqual([null, null]);
  });

  it("demand paging - the pause log turns state changes into parked intervals", () => {
    const log = new PauseLog();
    log.note(0, "paused", 10);
    log.note(0, "paused", 15); // a repeat does not reopen
    log.note(0, "running", 30);
    log.note(0, "blocked", 40);
    log.note(0, "paused", 50);
    expect(log.of(0)).toEqual([[10, 30], [50, null]]);
    expect(log.of(1)).toEqual([]);
  });

  it("demand paging - the summary prints demand_paging_test's own lines, unrounded", () => {
    const stat = { exits: 0, pf_taken: 0, pf_fast: 0, pf_fixed: 0, pf_spurious: 0, pf_emulate: 0, pf_mmio_spte_created: 0, signal_exits: 0, halt_exits: 0, halt_wakeup: 0, insn_emulation: 0 };
    const z = summarize([]);
    const d = demandPaging([
      { pages: 512, pagesTouched: 512, doneAtMs: 1234.5678912, paused: [] },
      { pages: 512, pagesTouched: 512, doneAtMs: 1000, paused: [] },
    ], 2000);
    const r = {
      scenario: "s", runId: "r1", durationMs: 2000, profile: "6.2", pause: null, pauses: [], asyncPf: null, asyncPfDelivery: null, memslotOps: [], partial: false, missing: [],
      vcpus: [0, 1].map((id) => ({ id, state: "done", blockedIn: null, exits: {}, stat, signals: [], blocktimeMs: 0, hwpoisonSigbus: 0, pagesTouched: 512, pages: 512, doneAtMs: 1000, spinCpuMs: 0, error: null })),
      pager: { faultEvents: 0, copies: 0, zeropages: 0, continues: 0, eexist: 0, wakes: 0, duplicateRequests: 0, resident: 0, vmmRequests: 0, removes: 0, writeprotects: 0, poisons: 0, wakeCalls: 0, eventsByPtid: {}, waitQueueLockMs: 0, spinRefaults: 0, removeEvents: 0, eagain: 0, lostFetches: 0 },
      latency: { faultSlow: z, faultFast: z, faultAsync: z, signalToExit: z },
      mmu: { memslotInvalid: 0, roFaults: 0, zapped: 0, invalidateSeq: 0, hwpoison: 0, memoryFaults: 0, uaccess: 0, vcpuMap: 0, gpcRefresh: 0, stale: 0 },
      demandPaging: d, testbed: { services: {}, incidents: [], warning: null },
    } as Result;
    const lines = formatResult(r).split("\n");
    expect(lines).toContain("vCPU 0 execution time: 1.234567891s");
    expect(lines).toContain("vCPU 1 execution time: 1.000000000s");
    expect(lines).toContain("Total guest execution time:\t1.234567891s");
    const per = 512 / 1.234567891;
    expect(lines).toContain(`Per-vcpu demand paging rate:\t${per.toFixed(6)} pgs/sec/vcpu`);
    expect(lines).toContain(`Overall demand paging rate:\t${(per * 2).toFixed(6)} pgs/sec`);
    const at = (p: string) => lines.findIndex((l) => l.startsWith(p));
    expect(at("Total guest")).toBeLessThan(at("Per-vcpu"));
    expect(at("Per-vcpu")).toBeLessThan(at("Overall demand"));
  });
});
