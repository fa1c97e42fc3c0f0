/**
 * The page source's latency distributions (`pager.latency`): each turns uniform draws from a seeded
 * generator (`prng`) into one page's fetch delay in microseconds. Small closed forms, no library:
 * Box–Muller for the normal and lognormal, inverse transform for the Pareto, a draw from the list
 * for the empirical one.
 */
export type LatencySpec =
  | { dist: "fixed"; us: number }
  | { dist: "uniform"; minUs: number; maxUs: number }
  | { dist: "normal"; meanUs: number; sdUs: number }
  | { dist: "lognormal"; medianUs: number; sigma: number }
  | { dist: "pareto"; scaleUs: number; alpha: number }
  | { dist: "empirical"; samplesUs: readonly number[] };

export type Sampler = (rnd: () => number) => number;

/** A standard normal draw (Box–Muller; 1 - u keeps the log's argument in (0, 1]). */
function gauss(rnd: () => number): number {
  const u = 1 - rnd();
  const v = rnd();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function sampler(spec: LatencySpec): Sampler {
  switch (spec.dist) {
    case "fixed":
      return () => spec.us;
    case "uniform":
      return (rnd) => spec.minUs + rnd() * (spec.maxUs - spec.minUs);
    case "normal":
      // truncated at 0: a page cannot come before it is asked for
      return (rnd) => Math.max(0, spec.meanUs + spec.sdUs * gauss(rnd));
    case "lognormal":
      return (rnd) => spec.medianUs * Math.exp(spec.sigma * gauss(rnd));
    case "pareto":
      return (rnd) => spec.scaleUs / Math.pow(1 - rnd(), 1 / spec.alpha);
    case "empirical": {
      const xs = spec.samplesUs;
      return (rnd) => xs[Math.min(xs.length - 1, Math.floor(rnd() * xs.length))]!;
    }
  }
}

/** The parameters each distribution needs (and the only ones it takes besides `dist`). */
export const LATENCY_PARAMS: Record<LatencySpec["dist"], readonly string[]> = {
  fixed: ["us"],
  uniform: ["minUs", "maxUs"],
  normal: ["meanUs", "sdUs"],
  lognormal: ["medianUs", "sigma"],
  pareto: ["scaleUs", "alpha"],
  empirical: ["samplesUs"],
};

/**
 * The generator of one fetch attempt: seeded from the scenario's seed, the gfn and the attempt number,
 * so a page's draws do not depend on the order in which concurrent faults reached the source.
 */
export function attemptSeed(seed: number, gfn: number, attempt: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (gfn >>> 0) ^ Math.floor(gfn / 2 ** 32), 0xc2b2ae35);
  h = Math.imul(h ^ attempt ^ (h >>> 16), 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0;
}

/** The scenario's `pager.latency` (validated by parseScenario: the dist's parameters are all there) as a spec. */
export function latencySpec(l: { dist: LatencySpec["dist"] } & Record<string, unknown>): LatencySpec {
  const spec: Record<string, unknown> = { dist: l.dist };
  for (const k of LATENCY_PARAMS[l.dist]) spec[k] = l[k];
  return spec as LatencySpec;
}
