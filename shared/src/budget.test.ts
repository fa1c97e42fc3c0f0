import { describe, expect, it } from "vitest";
import { FAULTLINE_MAX_ACCESSES, FAULTLINE_MAX_DROPPED_GFNS, FAULTLINE_MAX_SIGNAL_RECORDS, MAX_MEMSLOT_BYTES } from "./budget.ts";
import { ValidationError } from "./errors.ts";
import { parseScenario } from "./scenario.ts";

function errorOf(doc: unknown): ValidationError {
  try {
    parseScenario(doc);
  } catch (e) {
    if (e instanceof ValidationError) return e;
    throw e;
  }
  throw new Error("did not throw");
}

const TiB = 2 ** 40;

describe("budget", () => {
  it("budget - vcpus x pagesPerVcpu over FAULTLINE_MAX_ACCESSES is refused at /workload/pagesPerVcpu, though the schema takes each", () => {
    const e = errorOf({ vm: { vcpus: 256, memslots: [{ slot: 0, size: 8 * TiB - 4096 }] }, workload: { pagesPerVcpu: 1_048_576 } });
    expect(e.path).toBe("/workload/pagesPerVcpu");
    expect(e.code).toBe("FL_ERR_BUDGET");
    expect(e.message).toContain(`256 vCPUs x 1048576 pages = 268435456 accesses exceeds the budget of ${FAULTLINE_MAX_ACCESSES} (FAULTLINE_MAX_ACCESSES)`);
  });

  it("budget - exactly FAULTLINE_MAX_ACCESSES is accepted", () => {
    const per = FAULTLINE_MAX_ACCESSES / 256;
    const s = parseScenario({ vm: { vcpus: 256, memslots: [{ slot: 0, size: "64GiB" }] }, workload: { pagesPerVcpu: per } });
    expect(s.vm.vcpus * s.workload.pagesPerVcpu).toBe(FAULTLINE_MAX_ACCESSES);
  });

  it("budget - signal records over FAULTLINE_MAX_SIGNAL_RECORDS are refused at the plan that tips it over", () => {
    const plans = Math.floor(FAULTLINE_MAX_SIGNAL_RECORDS / 256);
    const signals = Array.from({ length: plans + 1 }, (_, i) => ({ atMs: i % 1000, vcpus: "all", signal: "SIGUSR1" }));
    const e = errorOf({ vm: { vcpus: 256 }, workload: { pagesPerVcpu: 1 }, signals });
    expect(e.path).toBe(`/signals/${plans}/vcpus`);
    expect(e.code).toBe("FL_ERR_BUDGET");
    expect(e.message).toContain(`exceeds the budget of ${FAULTLINE_MAX_SIGNAL_RECORDS} (FAULTLINE_MAX_SIGNAL_RECORDS)`);
    // the same number of plans on one vCPU each is within budget
    expect(() => parseScenario({ vm: { vcpus: 256 }, workload: { pagesPerVcpu: 1 }, signals: signals.map((p) => ({ ...p, vcpus: [0, 0] })) })).not.toThrow();
  });

  it("budget - dropped gfns over FAULTLINE_MAX_DROPPED_GFNS are refused at the drop that tips it over", () => {
    const gfns = Array.from({ length: 65536 }, (_, i) => i);
    const n = FAULTLINE_MAX_DROPPED_GFNS / 65536;
    const drops = Array.from({ length: n + 1 }, (_, i) => ({ atMs: i, gfns }));
    const e = errorOf({ pager: { drops } });
    expect(e.path).toBe(`/pager/drops/${n}/gfns`);
    expect(e.message).toContain(`exceeds the budget of ${FAULTLINE_MAX_DROPPED_GFNS} (FAULTLINE_MAX_DROPPED_GFNS)`);
    expect(() => parseScenario({ pager: { drops: drops.slice(0, n) } })).not.toThrow();
  });

  it("budget - a memslot is at most KVM_MEM_MAX_NR_PAGES pages, as an integer (schema) or a string (parseScenario)", () => {
    expect(errorOf({ vm: { memslots: [{ slot: 0, size: MAX_MEMSLOT_BYTES + 4096 }] } }).path).toBe("/vm/memslots/0/size");
    const e = errorOf({ vm: { memslots: [{ slot: 0, size: "8192GiB" }] } });
    expect(e.path).toBe("/vm/memslots/0/size");
    expect(e.message).toContain("KVM_MEM_MAX_NR_PAGES");
    expect(errorOf({ vm: { memslotOps: [{ atMs: 0, op: "add", slot: 3, gpa: 0, size: "9000GiB" }] } }).path).toBe("/vm/memslotOps/0/size");
    expect(parseScenario({ vm: { memslots: [{ slot: 0, size: MAX_MEMSLOT_BYTES }] } }).vm.memslots[0]!.size).toBe(MAX_MEMSLOT_BYTES);
  });

  it("budget - a memslot ending above 2^52 is refused", () => {
    expect(errorOf({ vm: { memslots: [{ slot: 0, gpa: 2 ** 52 - 4096, size: 8192 }] } }).path).toBe("/vm/memslots/0");
  });
});
