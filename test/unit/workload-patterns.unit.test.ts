/** Workload patterns beyond memstress (zipf, hotset, strided, trace), the lackey parser, and guest compute time. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kvmRun } from "../../services/vcpu/src/kvm-run.ts";
import { hotPages, zipfCdf } from "../../services/vcpu/src/patterns.ts";
import { VcpuTask } from "../../services/vcpu/src/task.ts";
import { buildWorkload } from "../../services/vcpu/src/workload.ts";
import { FaultlineError, ValidationError, parseLackey, parseScenario, type FaultReply } from "@faultline/shared";

const FIXTURE = join(import.meta.dirname, "..", "fixtures", "lackey-ls.txt");

/** accesses per page index of vCPU 0 (page index = gfn - first gfn of the partition) */
function histogram(w: ReturnType<typeof buildWorkload>, per: number): number[] {
  const h = new Array<number>(per).fill(0);
  const base = Math.min(...w.gfns);
  for (const g of w.gfns) h[g - base]!++;
  return h;
}

describe("workload patterns", () => {
  it("workload zipf - the top page's share matches 1/H(n,s) over a seeded draw, pages repeat", () => {
    const s = parseScenario({ seed: 3, workload: { pattern: "zipf", pagesPerVcpu: 100, accessesPerVcpu: 50_000, zipfS: 1 } });
    const w = buildWorkload(s, 0);
    expect(w.length).toBe(50_000);
    const h = histogram(w, 100);
    const expected = zipfCdf(100, 1)[0]!; // 1/H(100) ≈ 0.193
    expect(expected).toBeCloseTo(0.1928, 3);
    expect(Math.abs(h[0]! / 50_000 - expected)).toBeLessThan(0.01);
    expect(h[0]!).toBeGreaterThan(h[9]! * 5); // rank 1 vs rank 10: 10x expected
    expect(w.distinctPages).toBeLessThanOrEqual(100);
    expect(w.distinctPages).toBeLessThan(w.length);
  });

  it("workload zipf - the same seed draws the same accesses, another seed others", () => {
    const a = (seed: number) => Array.from(buildWorkload(parseScenario({ seed, workload: { pattern: "zipf", pagesPerVcpu: 64, accessesPerVcpu: 500 } }), 1).gfns);
    expect(a(7)).toEqual(a(7));
    expect(a(7)).not.toEqual(a(8));
  });

  it("workload hotset - the hot pages take hotShare of the accesses within tolerance", () => {
    const s = parseScenario({ seed: 11, workload: { pattern: "hotset", pagesPerVcpu: 200, accessesPerVcpu: 40_000, hotFraction: 0.1, hotShare: 0.9 } });
    const h = histogram(buildWorkload(s, 0), 200);
    const hot = hotPages(200, 0.1);
    expect(hot).toBe(20);
    const share = h.slice(0, hot).reduce((a, b) => a + b, 0) / 40_000;
    expect(Math.abs(share - 0.9)).toBeLessThan(0.01);
    expect(h.slice(hot).every((c) => c > 0)).toBe(true); // every cold page drawn at least once (≈22 each)
  });

  it("workload strided - every page exactly once, consecutive accesses stridePages apart within a pass", () => {
    const s = parseScenario({ vm: { vcpus: 2 }, workload: { pattern: "strided", pagesPerVcpu: 100, stridePages: 8 } });
    const w = buildWorkload(s, 1);
    const g = Array.from(w.gfns);
    expect(g).toHaveLength(100);
    expect(new Set(g).size).toBe(100);
    expect(Math.min(...g)).toBe(100); // vCPU 1's partition: pages 100..199
    expect(g[1]! - g[0]!).toBe(8);
    expect(g[13]).toBe(g[0]! + 1); // ceil(100/8) = 13 accesses in the first pass, then offset 1
    expect(w.distinctPages).toBe(100);
  });
});

describe("lackey trace", () => {
  it("lackey parser - L and S are read and write, M is a write, I is skipped unless asked, ==pid== lines ignored", () => {
    const text = ["==1== Lackey", "I  04000000,3", " L 04001008,8", " S 04001010,8", " M 05000000,4", " L 04001000,4", "garbage"].join("\n");
    const p = parseLackey(text);
    // pages in first-touch order: 0x4001 → 0, 0x5000 → 1; L,S on page 0 are two runs (kind changes)
    expect(p.runs).toEqual([0, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1]);
    expect(p.distinctPages).toBe(2);
    const withI = parseLackey(text, { instructions: true });
    expect(withI.distinctPages).toBe(3);
    expect(withI.runs.slice(0, 3)).toEqual([0, 0, 1]); // the I fetch of page 0x4000 comes first
  });

  it("lackey parser - an access whose bytes cross a page boundary touches both pages", () => {
    const p = parseLackey(" L 04000ffc,8\n S 04001ffe,2\n");
    expect(p.runs).toEqual([0, 0, 1, 1, 0, 1, 1, 1, 1]);
    expect(p.accesses).toBe(3);
  });

  it("lackey parser - more page runs than the budget is refused naming the field", () => {
    const text = Array.from({ length: 10 }, (_, i) => ` L ${(i * 4096).toString(16)},4`).join("\n");
    let e: unknown;
    try {
      parseLackey(text, { maxRuns: 5, path: "/workload/trace/file" });
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(ValidationError);
    expect((e as ValidationError).path).toBe("/workload/trace/file");
    expect((e as FaultlineError).code).toBe("FL_ERR_BUDGET");
  });

  it("lackey parser - the checked-in ls trace parses to a page sequence with as many distinct pages as first-touch numbers", () => {
    const p = parseLackey(readFileSync(FIXTURE, "utf8"));
    expect(p.runs.length % 3).toBe(0);
    expect(p.distinctPages).toBeGreaterThan(1);
    const pages = new Set(p.runs.filter((_, i) => i % 3 === 0));
    expect([...pages].sort((a, b) => a - b)).toEqual(Array.from({ length: p.distinctPages }, (_, i) => i));
  });

  it("trace workload - inline accesses become runs at parse; each run one access with the trace's write flag", () => {
    const s = parseScenario({ workload: { pattern: "trace", pagesPerVcpu: 16, writeRatio: 0, trace: { accesses: " L 1000,4\n L 1004,4\n S 2000,8\n L 1000,4\n" } } });
    expect(s.workload.trace?.runs).toEqual([0, 0, 2, 1, 1, 1, 0, 0, 1]);
    expect(s.workload.trace?.accesses).toBeUndefined();
    const w = buildWorkload(s, 0);
    expect(w.length).toBe(3);
    expect([w.write(0), w.write(1), w.write(2)]).toEqual([false, true, false]);
    expect(w.gfn(2)).toBe(w.gfn(0));
    expect(w.weight(0)).toBe(2);
    expect(w.distinctPages).toBe(2);
  });

  it("trace workload - a bare file over the API, a missing trace, and too few pages are refused naming the field", () => {
    const path = (doc: unknown) => {
      try {
        parseScenario(doc);
      } catch (e) {
        return (e as ValidationError).path;
      }
      return "accepted";
    };
    expect(path({ workload: { pattern: "trace", trace: { file: "x.txt" } } })).toBe("/workload/trace/file");
    expect(path({ workload: { pattern: "trace" } })).toBe("/workload/trace");
    expect(path({ workload: { pattern: "trace", pagesPerVcpu: 1, trace: { runs: [0, 0, 1, 1, 0, 1] } } })).toBe("/workload/pagesPerVcpu");
    expect(path({ workload: { pattern: "trace", trace: { runs: [0, 2, 1] } } })).toBe("/workload/trace/runs/1");
  });
});

describe("guest compute time", () => {
  const reply: FaultReply = { ret: "RET_PF_FIXED", path: "gup", sleeps: 0, fatal: false, spinMs: 0 };

  async function run(computeUs: number, doc: Record<string, unknown> = {}) {
    const s = parseScenario({ workload: { pagesPerVcpu: 50, computeUs, ...doc } });
    const w = buildWorkload(s, 0);
    const t = new VcpuTask(0, "tdp", w, {
      now: () => performance.now(),
      fault: async () => reply,
      dequeue: async () => undefined,
      apfReady: async () => reply,
      resolve: async () => undefined,
      state: () => undefined,
    });
    const start = performance.now();
    const r = kvmRun(t);
    while (t.state !== "done") await new Promise((res) => setImmediate(res));
    const elapsed = performance.now() - start;
    t.closed = true;
    t.notify();
    await r;
    return { t, elapsed, w };
  }

  it("compute time - every access's computeUs is slept before the vCPU is done, and counts in its run time", async () => {
    const { t, elapsed } = await run(300); // 50 accesses x 300 µs = 15 ms
    expect(t.computeUs).toBe(15_000);
    expect(elapsed).toBeGreaterThanOrEqual(14); // setTimeout never fires early (1 ms rounding)
    expect(t.stat.pf_taken).toBe(50);
  });

  it("compute time - a trace run's accesses each compute (weight), with none it is not slept", async () => {
    const trace = await run(100, { pattern: "trace", trace: { runs: [0, 0, 30, 1, 1, 20] } });
    expect(trace.t.computeUs).toBe(5_000);
    const none = await run(0);
    expect(none.t.computeUs).toBe(0);
  });
});
