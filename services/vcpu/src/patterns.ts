/**
 * Page orders for the workload patterns beyond memstress's sequential / random walk: each fills
 * `out` with indices into the vCPU's own pages (0 … n-1), yielding every `slice` draws so a large
 * build shares the event loop (workload.ts). Draws come from the seeded `rnd`.
 *
 * - zipf: page of rank k (k = 1 … n, rank 1 the vCPU's first page) drawn with weight 1/k^s; pages
 *   repeat, and a repeat of a mapped page takes no exit.
 * - hotset: the first ⌈hotFraction·n⌉ pages are hot; an access goes to a uniform hot page with
 *   probability hotShare, else to a uniform cold page.
 * - strided: every `stride`-th page, wrapping through the offsets 0 … stride-1, so every page is
 *   touched exactly once (page i·stride + o for o = 0, 1, …).
 */

/** Cumulative Zipf weights of ranks 1 … n, normalised to end at 1. */
export function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / Math.pow(k + 1, s);
  for (let k = 0; k < n; k++) cdf[k]! /= sum;
  return cdf;
}

/** The first index whose cumulative weight exceeds x (binary search). */
function pick(cdf: Float64Array, x: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function* zipfPages(out: Uint32Array, n: number, s: number, rnd: () => number, slice: number): Generator<void> {
  const cdf = zipfCdf(n, s);
  for (let i = 0; i < out.length; i++) {
    out[i] = pick(cdf, rnd());
    if ((i + 1) % slice === 0) yield;
  }
}

/** Hot pages of a hot set: at least one, at most n. */
export function hotPages(n: number, hotFraction: number): number {
  return Math.min(n, Math.max(1, Math.ceil(hotFraction * n)));
}

export function* hotsetPages(out: Uint32Array, n: number, hotFraction: number, hotShare: number, rnd: () => number, slice: number): Generator<void> {
  const hot = hotPages(n, hotFraction);
  const cold = n - hot;
  for (let i = 0; i < out.length; i++) {
    const toHot = cold === 0 || rnd() < hotShare;
    const r = rnd();
    out[i] = toHot ? Math.floor(r * hot) : hot + Math.floor(r * cold);
    if ((i + 1) % slice === 0) yield;
  }
}

export function* stridedPages(out: Uint32Array, n: number, stride: number, slice: number): Generator<void> {
  let i = 0;
  for (let o = 0; o < Math.min(stride, n); o++) {
    for (let p = o; p < n; p += stride) {
      out[i++] = p;
      if (i % slice === 0) yield;
    }
  }
}

/** A trace's page sequence (triples [page, write, accesses]): pages, write flags, and accesses per entry. */
export function* tracePages(runs: readonly number[], n: number, pages: Uint32Array, writes: Uint8Array, weights: Uint32Array, slice: number): Generator<void> {
  for (let i = 0, r = 0; r < runs.length; i++, r += 3) {
    pages[i] = runs[r]! % n;
    writes[i] = runs[r + 1]!;
    weights[i] = runs[r + 2]!;
    if ((i + 1) % slice === 0) yield;
  }
}

/** Distinct values among `pages` (indices below n). */
export function distinct(pages: Uint32Array, n: number): number {
  const seen = new Uint8Array(n);
  let d = 0;
  for (const p of pages) if (!seen[p]) (seen[p] = 1), d++;
  return d;
}

/** Runs a generator to its end (tests, and a build finished synchronously). */
export function drain(g: Generator<void>): void {
  while (!g.next().done);
}
