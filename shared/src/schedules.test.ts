import { describe, expect, it } from "vitest";
import { FaultlineError, ValidationError } from "./errors.ts";
import { parseScenario } from "./scenario.ts";

function errOf(f: () => unknown): ValidationError {
  try {
    f();
  } catch (e) {
    if (e instanceof ValidationError) return e;
    throw e;
  }
  throw new Error("did not throw");
}

const base = { durationMs: 10_000, vm: { vcpus: 2 }, workload: { pagesPerVcpu: 64 } };

describe("schedules", () => {
  it("schedules - periodic stalls, signals and pauses expand into the concrete plans", () => {
    const s = parseScenario({
      ...base,
      schedules: {
        stalls: [{ fromMs: 100, toMs: 1000, everyMs: 300, forMs: 100 }],
        signals: [{ fromMs: 0, toMs: 500, everyMs: 200, signal: "SIGUSR1", vcpus: "all" }],
        pauses: [{ fromMs: 2000, everyMs: 1000, pauseForMs: 400, count: 3 }],
      },
    });
    expect(s.pager.stalls).toEqual([{ atMs: 100, forMs: 100 }, { atMs: 400, forMs: 100 }, { atMs: 700, forMs: 100 }]);
    expect(s.signals).toEqual([0, 200, 400].map((atMs) => ({ atMs, signal: "SIGUSR1", vcpus: "all" })));
    expect(s.vmm.pauses).toEqual([{ atMs: 2000, resumeAtMs: 2400 }, { atMs: 3000, resumeAtMs: 3400 }, { atMs: 4000, resumeAtMs: 4400 }]);
    expect(s.schedules).toBeUndefined();
  });

  it("schedules - random signals are seeded: same seed, same times; another seed, other times; all in [fromMs, toMs)", () => {
    const doc = (seed: number) => ({ ...base, seed, schedules: { signals: [{ kind: "random", fromMs: 100, toMs: 900, count: 50, signal: "SIGUSR1", process: true }] } });
    const a = parseScenario(doc(7)).signals.map((p) => p.atMs);
    const b = parseScenario(doc(7)).signals.map((p) => p.atMs);
    const c = parseScenario(doc(8)).signals.map((p) => p.atMs);
    expect(a).toHaveLength(50);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    for (const t of a) expect(t >= 100 && t < 900).toBe(true);
    expect(parseScenario(doc(7)).signals[0]).toMatchObject({ process: true, signal: "SIGUSR1" });
  });

  it("schedules - jitter delays each event by at most jitterMs, never past toMs, and is seeded", () => {
    const doc = (seed: number) => ({
      ...base, seed,
      schedules: {
        stalls: [{ fromMs: 0, toMs: 5000, everyMs: 100, forMs: 50, jitterMs: 40 }],
        signals: [{ fromMs: 0, toMs: 1010, everyMs: 10, jitterMs: 30, signal: "SIGUSR1", vcpus: 0 }],
      },
    });
    const s = parseScenario(doc(3));
    expect(s.pager.stalls).toHaveLength(50);
    s.pager.stalls.forEach((w, k) => expect(w.atMs - k * 100).toSatisfy((d: number) => d >= 0 && d <= 40));
    expect(s.pager.stalls.some((w, k) => w.atMs !== k * 100)).toBe(true); // the jitter is applied
    s.signals.forEach((p, k) => expect(p.atMs - k * 10).toSatisfy((d: number) => d >= 0 && d <= 30 && p.atMs < 1010));
    expect(parseScenario(doc(3))).toEqual(s);
  });

  it("schedules - an expanded scenario parsed again does not expand twice", () => {
    const once = parseScenario({
      ...base, seed: 5,
      schedules: {
        stalls: [{ fromMs: 0, toMs: 1000, everyMs: 250, forMs: 100, jitterMs: 50 }],
        signals: [{ kind: "random", fromMs: 0, toMs: 1000, count: 5, signal: "SIGUSR2", vcpus: [0, 1] }],
        pauses: [{ fromMs: 1000, everyMs: 500, pauseForMs: 100, count: 2 }],
      },
    });
    const twice = parseScenario(JSON.parse(JSON.stringify(once)));
    expect(twice).toEqual(once);
    expect(twice.pager.stalls).toHaveLength(4);
    expect(twice.signals).toHaveLength(5);
    expect(twice.vmm.pauses).toHaveLength(2);
  });

  it("schedules - an expansion past a list's budget is refused naming the schedule", () => {
    const stalls = errOf(() => parseScenario({ ...base, durationMs: 600_000, schedules: { stalls: [{ fromMs: 0, toMs: 600_000, everyMs: 10, forMs: 5 }] } }));
    expect(stalls.path).toBe("/schedules/stalls/0/everyMs");
    expect((stalls as FaultlineError).code).toBe("FL_ERR_BUDGET");
    const sig = errOf(() => parseScenario({ ...base, durationMs: 20_000, schedules: { signals: [{ fromMs: 0, toMs: 20_000, everyMs: 1, signal: "SIGUSR1", vcpus: 0 }] } }));
    expect(sig.path).toBe("/schedules/signals/0/everyMs");
    expect(sig.code).toBe("FL_ERR_BUDGET");
    const records = errOf(() =>
      parseScenario({ ...base, vm: { vcpus: 8 }, schedules: { signals: [{ kind: "random", fromMs: 0, toMs: 10_000, count: 9000, signal: "SIGUSR1", vcpus: "all" }] } }),
    );
    expect(records.path).toBe("/schedules/signals/0/vcpus");
    expect(records.code).toBe("FL_ERR_BUDGET");
  });

  it("schedules - bad schedules name their field", () => {
    const path = (sch: object) => errOf(() => parseScenario({ ...base, schedules: sch })).path;
    expect(path({ stalls: [{ fromMs: 0, toMs: 1000, everyMs: 100, forMs: 80, jitterMs: 30 }] })).toBe("/schedules/stalls/0/forMs");
    expect(path({ stalls: [{ fromMs: 500, toMs: 500, everyMs: 100, forMs: 50 }] })).toBe("/schedules/stalls/0/toMs");
    expect(path({ signals: [{ fromMs: 0, toMs: 20_000, everyMs: 100, signal: "SIGUSR1", vcpus: 0 }] })).toBe("/schedules/signals/0/toMs");
    expect(path({ signals: [{ fromMs: 0, toMs: 1000, everyMs: 100, signal: "SIGUSR1" }] })).toBe("/schedules/signals/0");
    expect(path({ signals: [{ kind: "random", fromMs: 0, toMs: 1000, signal: "SIGUSR1", vcpus: 0 }] })).toBe("/schedules/signals/0/count");
    expect(path({ signals: [{ fromMs: 0, toMs: 1000, everyMs: 100, signal: "SIGUSR1", vcpus: 5 }] })).toBe("/schedules/signals/0/vcpus");
    expect(path({ pauses: [{ fromMs: 0, everyMs: 100, pauseForMs: 100, count: 2 }] })).toBe("/schedules/pauses/0/pauseForMs");
    expect(path({ pauses: [{ fromMs: 9000, everyMs: 1000, pauseForMs: 100, count: 2 }] })).toBe("/schedules/pauses/0/count");
  });

  it("schedules - vmm.pauses are ordered, non-overlapping, and not mixed with pauseAllAtMs", () => {
    const path = (vmm: object) => errOf(() => parseScenario({ ...base, vmm })).path;
    expect(parseScenario({ ...base, vmm: { pauses: [{ atMs: 100, resumeAtMs: 200 }, { atMs: 300 }] } }).vmm.pauses).toHaveLength(2);
    expect(path({ pauses: [{ atMs: 100 }, { atMs: 300, resumeAtMs: 400 }] })).toBe("/vmm/pauses/1/atMs");
    expect(path({ pauses: [{ atMs: 100, resumeAtMs: 400 }, { atMs: 300, resumeAtMs: 500 }] })).toBe("/vmm/pauses/1/atMs");
    expect(path({ pauses: [{ atMs: 100, resumeAtMs: 50 }] })).toBe("/vmm/pauses/0/resumeAtMs");
    expect(path({ pauses: [{ atMs: 100, resumeAtMs: 200 }], pauseAllAtMs: 500 })).toBe("/vmm/pauses");
  });
});
