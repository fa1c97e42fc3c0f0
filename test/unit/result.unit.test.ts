/**
 * How a run's result is put together and judged: a missing report makes it partial (the live view
 * stands in for the vCPUs), incidents land on the run's clock, the testbed warning looks at the
 * processes on the fault path only, and a lost request keeps a run from claiming it completed.
 */
import { describe, expect, it } from "vitest";
import { assembleResult, verdict, type Reports } from "../../services/api/src/result.ts";
import { parseScenario, summarize, type Incident, type ServiceTestbed, type VcpuReport } from "@faultline/shared";

const scenario = parseScenario({ vm: { vcpus: 2 }, workload: { pagesPerVcpu: 8 } });
const T0 = 1_000_000;

function testbed(service: string, p50Ms: number, p99Ms: number, incidents: Incident[] = []): ServiceTestbed {
  return { service, instance: `${service}-1`, loopDelay: { p50Ms, p99Ms, maxMs: p99Ms }, loadAvg1: { start: 0, end: 0 }, retries: 0, incidents, incidentsDropped: 0 };
}

function vcpuReport(faultUs: number[], tb: ServiceTestbed): VcpuReport {
  const stat = { exits: 0, pf_taken: 0, pf_fast: 0, pf_fixed: 0, pf_spurious: 0, pf_emulate: 0, pf_mmio_spte_created: 0, signal_exits: 0, halt_exits: 0, halt_wakeup: 0, insn_emulation: 0 };
  return {
    nowMs: 100,
    vcpus: [0, 1].map((id) => ({ id, state: "done" as const, inFault: null, exits: {}, stat, blocktimeMs: 0, hwpoisonSigbus: 0, pagesTouched: 8, pages: 8, doneAtMs: 90, spinCpuMs: 0, error: null })),
    faultSlow: summarize(faultUs), faultFast: summarize([]), faultAsync: summarize([]),
    demandPaging: { totalGuestExecutionS: 0.09, perVcpuRate: 88, overallRate: 177, allDone: true },
    testbed: tb,
  };
}

const ctx = (over: Partial<Parameters<typeof assembleResult>[0]> = {}) => ({
  runId: "r1", scenario, t0: T0, live: [{ state: "running", pagesTouched: 3 }, { state: "running", pagesTouched: 5 }],
  incidents: [], missing: [], nowMs: 100, ...over,
});

describe("result", () => {
  it("result - without the vcpu report the result is partial and the live view stands in for the vCPUs", () => {
    const r = assembleResult(ctx({ missing: ["vcpu"] }), {});
    expect(r.partial).toBe(true);
    expect(r.missing).toEqual(["vcpu"]);
    expect(r.vcpus.map((v) => [v.state, v.pagesTouched, v.error])).toEqual([["running", 3, "report missing"], ["running", 5, "report missing"]]);
    expect(r.pager.copies).toBe(0);
  });

  it("result - incidents are on the run's clock, in order, from every service and the api", () => {
    const inc = (at: number, service: string, kind: Incident["kind"]): Incident => ({ at, service, instance: `${service}-1`, kind, detail: kind });
    const reports: Reports = { vcpu: vcpuReport([500], testbed("vcpu", 0, 0, [inc(T0 + 30, "vcpu", "nats-reconnect")])) };
    const r = assembleResult(ctx({ incidents: [inc(T0 + 10, "api", "nats-disconnect")] }), reports);
    expect(r.testbed.incidents.map((i) => [i.atMs, i.service, i.kind])).toEqual([[10, "api", "nats-disconnect"], [30, "vcpu", "nats-reconnect"]]);
  });

  it("result - the warning judges the fault path's processes: a slow api loop alone does not warn, a slow mmu loop does", () => {
    const quiet = assembleResult(ctx({ api: testbed("api", 5, 50) }), { vcpu: vcpuReport([1000, 1000, 1000, 4000], testbed("vcpu", 0, 0.5)) });
    expect(quiet.testbed.warning).toBeNull();
    expect(Object.keys(quiet.testbed.services).sort()).toEqual(["api", "vcpu"]);
    const noisy = assembleResult(ctx(), { vcpu: vcpuReport([1000, 1000, 1000, 4000], testbed("vcpu", 0, 0.5)), mmu: { ...emptyMmu(), testbed: testbed("mmu", 0.2, 9) } });
    expect(noisy.testbed.warning).toMatch(/mmu event-loop delay p99 9 ms/);
  });

  it("result - a lost request of a service keeps the run from claiming it completed; the api's own controls do not", () => {
    const failed = (service: string): Incident => ({ at: T0, service, instance: `${service}-1`, kind: "request-failed", detail: "fl.vm.r1.pager.gup: FL_ERR_TIMEOUT after 9 attempts (deadline 31000 ms)" });
    const withMmu = assembleResult(ctx({ incidents: [failed("mmu")] }), {});
    expect(verdict(withMmu, { lost: false, cancelled: false, error: null })).toEqual({
      status: "aborted", error: { code: "FL_ERR_TESTBED", service: "pager", message: expect.stringContaining("fl.vm.r1.pager.gup") },
    });
    const withApi = assembleResult(ctx({ incidents: [failed("api")] }), {});
    expect(verdict(withApi, { lost: false, cancelled: false, error: null })).toEqual({ status: "completed", error: null });
    expect(verdict(withApi, { lost: false, cancelled: true, error: null }).status).toBe("cancelled");
    expect(verdict(withApi, { lost: true, cancelled: false, error: { code: "FL_ERR_SERVICE_LOST", message: "x", service: "mmu" } }).status).toBe("aborted");
  });
});

function emptyMmu() {
  return {
    faults: 0, attempt1Hits: 0, attempt2: 0, sigpending: 0, stale: 0, noslot: 0, sptes: 0, invalidateSeq: 0, uaccess: 0, vcpuMap: 0, gpcRefresh: 0,
    memoryFaults: 0, memslotInvalid: 0, roFaults: 0, zapped: 0, hwpoison: 0, asyncPf: null, asyncPfDelivery: null, memslotOps: [],
  };
}
