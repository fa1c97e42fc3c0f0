/** The CLI's one-run summary: the async-PF and memslot lines appear with what the result holds, and only then. */
import { describe, expect, it } from "vitest";
import { formatResult } from "../../cli/src/summary.ts";
import { assembleResult } from "../../services/api/src/result.ts";
import { parseScenario, summarize, type Result } from "@faultline/shared";

const base = (): Result =>
  assembleResult(
    { runId: "r1", scenario: parseScenario({ vm: { vcpus: 1 }, workload: { pagesPerVcpu: 4 } }), t0: 0, live: [{ state: "done", pagesTouched: 4 }], incidents: [], missing: [], nowMs: 100 },
    {},
  );

describe("summary", () => {
  it("summary - async fault latency, tracepoint counts and what the guest was told, when async PF is on", () => {
    const r = base();
    expect(formatResult(r)).not.toMatch(/async/);
    const on: Result = {
      ...r,
      latency: { ...r.latency, faultAsync: summarize([1500, 2_000_000]) },
      asyncPf: { kvm_try_async_get_page: 2, kvm_async_pf_repeated_fault: 0, kvm_async_pf_not_present: 2, kvm_async_pf_completed: 2, kvm_async_pf_ready: 2 },
      asyncPfDelivery: { notPresentInjected: 0, haltRequests: 2, pageReadyInjected: 0 },
    };
    const text = formatResult(on);
    expect(text).toMatch(/async faults: 2 \(fault → page ready\)/);
    expect(text).toMatch(/async-PF tracepoints: try_async_get_page 2, async_pf_repeated_fault 0, async_pf_not_present 2/);
    expect(text).toMatch(/0 "page not present", 2 artificial halts \(KVM_REQ_APF_HALT\), 0 "page ready"/);
  });

  it("summary - one line per memslot op: completed with its wait, still waiting, or refused with KVM's errno", () => {
    const r: Result = {
      ...base(),
      memslotOps: [
        { op: "delete", slot: 1, atMs: 300, requestedAtMs: 300.2, completedAtMs: 1501.7, errno: null },
        { op: "move", slot: 2, atMs: 400, requestedAtMs: 400, completedAtMs: null, errno: null },
        { op: "delete", slot: 9, atMs: null, requestedAtMs: 50, completedAtMs: 50, errno: "EINVAL" },
      ],
    };
    const lines = formatResult(r).split("\n").filter((l) => l.includes("memslot"));
    expect(lines).toEqual([
      "  memslot delete slot 1: requested 300 ms, completed 1502 ms (waited 1201.5 ms)",
      "  memslot move slot 2: requested 400 ms, did NOT complete (vCPUs still inside a fault hold kvm->srcu)",
      "  memslot delete slot 9 (API): requested 50 ms, refused -EINVAL",
    ]);
  });
});
