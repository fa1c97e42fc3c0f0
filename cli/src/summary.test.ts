import { describe, expect, it } from "vitest";
import { assembleResult } from "../../services/api/src/result.ts";
import { parseScenario } from "@faultline/shared";
import { formatResult } from "./summary.ts";

/** a result with no reports (partial), then the fields the test names */
function result() {
  const scenario = parseScenario({ vm: { vcpus: 2 }, workload: { pagesPerVcpu: 8 } });
  return assembleResult({ runId: "r1", scenario, t0: 0, live: [{ state: "running", pagesTouched: 1 }, { state: "running", pagesTouched: 1 }], incidents: [], missing: ["vcpu"], nowMs: 100 }, {});
}

describe("summary", () => {
  it("summary - a spin gets a line with each spinning vCPU's CPU time and the spin re-faults; no spin, no line", () => {
    const r = result();
    expect(formatResult(r)).not.toContain("uaccess spin");
    r.vcpus[1]!.spinCpuMs = 1115.4;
    r.pager.spinRefaults = 119_232;
    expect(formatResult(r)).toContain("  uaccess spin: CPU time vCPU 1 1115 ms; 119232 spin re-faults");
  });

  it("summary - drops get a line with the REMOVE events, pages dropped, -EAGAIN retries and retried faults", () => {
    const r = result();
    expect(formatResult(r)).not.toContain("drops:");
    Object.assign(r.pager, { removeEvents: 12, removes: 265, eagain: 36 });
    r.mmu.stale = 344;
    expect(formatResult(r)).toContain("  drops: 12 UFFD_EVENT_REMOVE, 265 pages dropped, 36 UFFDIO_COPY -EAGAIN (retried), 344 faults retried (invalidation)");
  });
});
