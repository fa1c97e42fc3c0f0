import { describe, expect, it } from "vitest";
import { ValidationError } from "./errors.ts";
import { parseScenario, parseScenarioText } from "./scenario.ts";

function pathOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ValidationError) return e.path;
    throw e;
  }
  throw new Error("did not throw");
}

describe("scenario", () => {
  it("scenario - an empty document gets every documented default", () => {
    const s = parseScenario({});
    expect(s).toMatchObject({
      name: "unnamed", seed: 1, durationMs: 3000, endWhenDone: true,
      kernel: { profile: "6.13", asyncPf: false },
      vm: { vcpus: 1, memslots: [{ slot: 0, gpa: 0, size: 64 * 1024 * 1024 }] },
      pager: { mode: "missing", latency: { dist: "fixed", us: 200 }, stalls: [] },
      workload: { pattern: "sequential", pagesPerVcpu: 1024, writeRatio: 0, site: "tdp" },
      signals: [], vmm: { signalMask: "immediate-exit" },
    });
    expect(s.vmm.rekickMs).toBeUndefined(); // QEMU has no timed re-kick: opt-in only
  });

  it("scenario - a signal plan names exactly one of vcpus and process", () => {
    expect(parseScenario({ signals: [{ atMs: 0, signal: "SIGTERM", process: true }] }).signals[0]).toMatchObject({ process: true });
    for (const p of [{ atMs: 0, signal: "SIGTERM" }, { atMs: 0, signal: "SIGTERM", process: true, vcpus: 0 }]) {
      expect(() => parseScenario({ signals: [p] })).toThrow(/exactly one of vcpus .* and process/);
    }
  });

  it("scenario - the documented example scenario parses from YAML", () => {
    const s = parseScenarioText(`
name: postcopy-stall-sigusr1
seed: 1
durationMs: 3000
kernel: { profile: "6.13", asyncPf: false }
vm:
  vcpus: 2
  memslots: [ { slot: 0, gpa: 0, size: 64MiB } ]
pager:
  mode: missing
  latency: { dist: fixed, us: 200 }
  stalls: [ { atMs: 100, forMs: 2000 } ]
workload: { pattern: sequential, pagesPerVcpu: 4096, writeRatio: 0, site: tdp }
signals:  [ { atMs: 400, vcpus: all, signal: SIGUSR1 } ]
vmm:      { pauseAllAtMs: 400, resumeAtMs: 2500 }
`);
    expect(s.vm.vcpus).toBe(2);
    expect(s.signals[0]).toEqual({ atMs: 400, vcpus: "all", signal: "SIGUSR1" });
  });

  it("scenario - unknown fields are rejected with their path", () => {
    expect(pathOf(() => parseScenario({ kernel: { profile: "6.2", fast: true } }))).toBe("/kernel/fast");
    expect(pathOf(() => parseScenario({ bogus: 1 }))).toBe("/bogus");
  });

  it("scenario - bad values name the field", () => {
    expect(pathOf(() => parseScenario({ kernel: { profile: "5.10" } }))).toBe("/kernel/profile");
    expect(pathOf(() => parseScenario({ vm: { vcpus: 0 } }))).toBe("/vm/vcpus");
    expect(pathOf(() => parseScenario({ signals: [{ atMs: 1, vcpus: "all", signal: "SIGSTOP" }] }))).toBe("/signals/0/signal");
    expect(pathOf(() => parseScenario({ durationMs: "3000" }))).toBe("/durationMs");
  });

  it("scenario - semantic checks name the field", () => {
    expect(pathOf(() => parseScenario({ vm: { vcpus: 2, memslots: [{ slot: 0, size: "4MiB" }] }, workload: { pagesPerVcpu: 1024 } }))).toBe(
      "/workload/pagesPerVcpu",
    );
    expect(pathOf(() => parseScenario({ vm: { vcpus: 2 }, signals: [{ atMs: 1, vcpus: [0, 2], signal: "SIGUSR1" }] }))).toBe("/signals/0/vcpus");
    expect(pathOf(() => parseScenario({ vmm: { resumeAtMs: 10 } }))).toBe("/vmm/resumeAtMs");
    expect(pathOf(() => parseScenario({ durationMs: 100, signals: [{ atMs: 100, vcpus: 0, signal: "SIGUSR1" }] }))).toBe("/signals/0/atMs");
    expect(pathOf(() => parseScenario({ vm: { memslots: [{ slot: 0, size: 5000 }] } }))).toBe("/vm/memslots/0/size");
    expect(
      pathOf(() => parseScenario({ vm: { memslots: [{ slot: 0, gpa: 0, size: "1MiB" }, { slot: 1, gpa: 4096, size: "1MiB" }] }, workload: { pagesPerVcpu: 1 } })),
    ).toBe("/vm/memslots/1");
    expect(pathOf(() => parseScenario({ kernel: { asyncPf: true, profile: "kvm-userfault" } }))).toBe("/kernel/asyncPf");
  });

  it("scenario - text that is not YAML or JSON, or not a mapping, is rejected", () => {
    expect(() => parseScenarioText("a: [1, 2")).toThrow(/not YAML or JSON/);
    expect(() => parseScenarioText("- 1\n- 2")).toThrow(/expected an object/);
  });
});
