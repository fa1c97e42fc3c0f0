import { describe, expect, it } from "vitest";
import { attemptSeed, sampler, type LatencySpec } from "./distributions.ts";
import { prng } from "./random.ts";
import { parseLatencySamples, parseScenario } from "./scenario.ts";
import { ValidationError } from "./errors.ts";

const N = 10_000;
const draws = (spec: LatencySpec, seed = 7) => {
  const rnd = prng(seed);
  const f = sampler(spec);
  return Array.from({ length: N }, () => f(rnd));
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const within = (x: number, want: number, rel: number) => expect(Math.abs(x - want) / want).toBeLessThan(rel);

describe("page-source latency distributions", () => {
  it("distributions - fixed always answers its us", () => {
    expect(new Set(draws({ dist: "fixed", us: 200 }))).toEqual(new Set([200]));
  });

  it("distributions - uniform stays in [minUs, maxUs] with its mean in the middle", () => {
    const xs = draws({ dist: "uniform", minUs: 100, maxUs: 300 });
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...xs)).toBeLessThanOrEqual(300);
    within(mean(xs), 200, 0.03);
  });

  it("distributions - normal has its mean and sd; truncated at 0, never negative", () => {
    const xs = draws({ dist: "normal", meanUs: 500, sdUs: 100 });
    within(mean(xs), 500, 0.02);
    within(Math.sqrt(mean(xs.map((x) => (x - 500) ** 2))), 100, 0.05);
    const cut = draws({ dist: "normal", meanUs: 0, sdUs: 100 });
    expect(Math.min(...cut)).toBe(0);
    within(cut.filter((x) => x === 0).length / N, 0.5, 0.05);
  });

  it("distributions - lognormal has its median, its mean exp(sigma^2/2) above it, and a long right tail", () => {
    const xs = draws({ dist: "lognormal", medianUs: 1000, sigma: 0.5 });
    within(median(xs), 1000, 0.04);
    within(mean(xs), 1000 * Math.exp(0.125), 0.04);
    const p99 = [...xs].sort((a, b) => a - b)[Math.floor(N * 0.99)]!;
    within(p99, 1000 * Math.exp(0.5 * 2.326), 0.1);
  });

  it("distributions - pareto starts at scaleUs with median scale * 2^(1/alpha)", () => {
    const xs = draws({ dist: "pareto", scaleUs: 100, alpha: 3 });
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(100);
    within(median(xs), 100 * 2 ** (1 / 3), 0.03);
  });

  it("distributions - empirical draws only its samples, each about equally often", () => {
    const xs = draws({ dist: "empirical", samplesUs: [10, 20, 30, 40] });
    for (const v of [10, 20, 30, 40]) within(xs.filter((x) => x === v).length / N, 0.25, 0.08);
    expect(xs.every((x) => [10, 20, 30, 40].includes(x))).toBe(true);
  });

  it("distributions - the same seed gives the same draws, another seed others", () => {
    const spec: LatencySpec = { dist: "lognormal", medianUs: 1000, sigma: 1 };
    expect(draws(spec, 3)).toEqual(draws(spec, 3));
    expect(draws(spec, 3)).not.toEqual(draws(spec, 4));
    const seeds = new Set<number>();
    for (let gfn = 0; gfn < 100; gfn++) for (let a = 0; a < 3; a++) seeds.add(attemptSeed(1, gfn, a));
    expect(seeds.size).toBe(300);
    expect(attemptSeed(1, 5, 0)).toBe(attemptSeed(1, 5, 0));
    expect(attemptSeed(1, 5, 0)).not.toBe(attemptSeed(2, 5, 0));
  });
});

describe("pager.latency in the scenario", () => {
  const path = (doc: unknown) => {
    try {
      parseScenario(doc);
    } catch (e) {
      if (e instanceof ValidationError) return e.message;
      throw e;
    }
    return "valid";
  };

  it("scenario - the v1 form and each dist with its parameters are valid", () => {
    expect(parseScenario({ pager: { latency: { dist: "fixed", us: 300 } } }).pager.latency).toMatchObject({ dist: "fixed", us: 300 });
    expect(parseScenario({}).pager.latency).toMatchObject({ dist: "fixed", us: 200 });
    // a parsed scenario parses again to itself (the CLI parses, then the API does)
    const lg = parseScenario({ pager: { latency: { dist: "lognormal", medianUs: 5, sigma: 1 } } });
    expect(parseScenario(JSON.parse(JSON.stringify(lg)))).toEqual(lg);
    for (const latency of [
      { dist: "uniform", minUs: 1, maxUs: 2 }, { dist: "normal", meanUs: 5, sdUs: 1 }, { dist: "lognormal", medianUs: 5, sigma: 1 },
      { dist: "pareto", scaleUs: 5, alpha: 2 }, { dist: "empirical", samplesUs: [1, 2] },
    ]) expect(path({ pager: { latency, bandwidthMBps: 10, loss: { probability: 0.1, retryMs: 5 } } })).toBe("valid");
  });

  it("scenario - a missing, foreign or out-of-range latency parameter is named by its path", () => {
    expect(path({ pager: { latency: { dist: "normal", meanUs: 5 } } })).toContain("/pager/latency/sdUs");
    expect(path({ pager: { latency: { dist: "normal", meanUs: 5, sdUs: -1 } } })).toContain("/pager/latency/sdUs");
    expect(path({ pager: { latency: { dist: "lognormal", medianUs: 5, sigma: 1, us: 3 } } })).toContain("/pager/latency/us");
    expect(path({ pager: { latency: { dist: "uniform", minUs: 5, maxUs: 1 } } })).toContain("/pager/latency/maxUs");
    expect(path({ pager: { latency: { dist: "empirical", samplesUs: [] } } })).toContain("/pager/latency/samplesUs");
    expect(path({ pager: { loss: { probability: 1, retryMs: 5 } } })).toContain("/pager/loss/probability");
    expect(path({ pager: { bandwidthMBps: 0 } })).toContain("/pager/bandwidthMBps");
  });

  it("scenario - an empirical samples file's text becomes samplesUs; an unread file is refused", () => {
    const samplesUs = parseLatencySamples("# measured\n120\n\n340.5  # slow one\n90\n", "lat.txt");
    expect(parseScenario({ pager: { latency: { dist: "empirical", samplesUs } } }).pager.latency).toEqual({ dist: "empirical", samplesUs: [120, 340.5, 90] });
    expect(path({ pager: { latency: { dist: "empirical", file: "lat.txt" } } })).toContain("/pager/latency/file");
    const bad = (text: string) => {
      try {
        parseLatencySamples(text, "lat.txt");
      } catch (e) {
        return (e as Error).message;
      }
      return "valid";
    };
    expect(bad("1\nabc\n")).toMatch(/\/pager\/latency\/file.*line 2/);
    expect(bad("\n# none\n")).toContain("/pager/latency/file");
  });
});
