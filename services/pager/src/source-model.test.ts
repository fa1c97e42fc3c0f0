import { describe, expect, it } from "vitest";
import { ManualClock, PAGE_SIZE, setClock } from "@faultline/shared";
import { PageSource, type SourceModel } from "./source.ts";

/** Fetches `gfns` at the clock's start and returns each page's arrival (ms since then) once `runMs` of model time passed. */
async function arrivals(model: SourceModel, gfns: number[], runMs: number): Promise<{ at: Map<number, number>; source: PageSource }> {
  const manual = new ManualClock();
  const restore = setClock(manual);
  try {
    const source = new PageSource(model);
    const t0 = manual.now();
    const at = new Map<number, number>();
    for (const g of gfns) void source.fetch(g).then(() => at.set(g, Math.round((manual.now() - t0) * 1000) / 1000));
    await manual.advance(runMs);
    source.close();
    return { at, source };
  } finally {
    restore();
  }
}

describe("page source model", () => {
  it("source - bandwidth: pages fetched together queue on the link, one page's transfer time apart", async () => {
    const bandwidthMBps = PAGE_SIZE / 5000; // 5 ms per 4 KiB page
    const { at } = await arrivals({ latency: { dist: "fixed", us: 1000 }, bandwidthMBps }, [1, 2, 3, 4], 100);
    expect([...at.entries()]).toEqual([[1, 6], [2, 11], [3, 16], [4, 21]]);
  });

  it("source - bandwidth: a fetch after the link went idle waits only for its own transfer", async () => {
    const manual = new ManualClock();
    const restore = setClock(manual);
    try {
      const s = new PageSource({ latency: { dist: "fixed", us: 1000 }, bandwidthMBps: PAGE_SIZE / 5000 });
      const t0 = manual.now();
      const got: number[] = [];
      void s.fetch(1).then(() => got.push(manual.now() - t0));
      void s.fetch(2).then(() => got.push(manual.now() - t0));
      await manual.advance(50);
      void s.fetch(3).then(() => got.push(manual.now() - t0));
      await manual.advance(50);
      expect(got).toEqual([6, 11, 56]);
      s.close();
    } finally {
      restore();
    }
  });

  it("source - without bandwidth, concurrent pages all arrive after one delay", async () => {
    const { at } = await arrivals({ latency: { dist: "fixed", us: 3000 } }, [1, 2, 3, 4], 100);
    expect([...at.values()]).toEqual([3, 3, 3, 3]);
  });

  it("source - loss: lost fetches are counted and re-sent after retryMs; every page still arrives", async () => {
    const gfns = Array.from({ length: 200 }, (_, i) => i);
    const model: SourceModel = { latency: { dist: "fixed", us: 3000 }, seed: 11, loss: { probability: 0.3, retryMs: 10 } };
    const { at, source } = await arrivals(model, gfns, 1000);
    expect(at.size).toBe(200);
    expect(source.answered).toBe(200);
    // each page comes 3 ms after its last send; each loss before it cost 10 ms
    const losses = [...at.values()].map((t) => (t - 3) / 10);
    expect(losses.every((k) => Number.isInteger(k) && k >= 0)).toBe(true);
    expect(losses.reduce((a, b) => a + b, 0)).toBe(source.lostFetches);
    expect(source.lostFetches).toBeGreaterThan(200 * 0.3 * 0.6);
    expect(source.lostFetches).toBeLessThan(200 * 0.5);
    // seeded: the same seed loses the same fetches, another seed others
    const again = await arrivals(model, gfns, 1000);
    expect([...again.at.entries()]).toEqual([...at.entries()]);
    const other = await arrivals({ ...model, seed: 12 }, gfns, 1000);
    expect([...other.at.entries()]).not.toEqual([...at.entries()]);
  });

  it("source - lognormal latency: seeded per gfn, so the request order does not change a page's delay", async () => {
    const model: SourceModel = { latency: { dist: "lognormal", medianUs: 5000, sigma: 0.8 }, seed: 3 };
    const a = await arrivals(model, [1, 2, 3, 4, 5, 6], 1000);
    const b = await arrivals(model, [6, 5, 4, 3, 2, 1], 1000);
    for (const g of [1, 2, 3, 4, 5, 6]) expect(b.at.get(g)).toBe(a.at.get(g));
    expect(new Set(a.at.values()).size).toBeGreaterThan(3);
  });
});
