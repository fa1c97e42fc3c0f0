import { describe, expect, it } from "vitest";
import { ManualClock, setClock } from "@faultline/shared";
import { PageSource } from "./source.ts";

const turn = () => new Promise<void>((r) => setImmediate(r));

describe("page source", () => {
  it("source - answers nothing while stalled, and answers once unstalled", async () => {
    const s = new PageSource(0);
    s.stall();
    let got = false;
    const p = s.fetch(1).then(() => (got = true));
    for (let i = 0; i < 50; i++) await turn();
    expect(got).toBe(false);
    s.unstall();
    await p;
    expect(got).toBe(true);
    expect(s.answered).toBe(1);
  });

  it("source - an answer that falls due during a stall is held until the stall ends", async () => {
    const s = new PageSource(3000); // 3 ms: timer path
    let got = false;
    const p = s.fetch(7).then(() => (got = true));
    s.stall();
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBe(false);
    s.unstall();
    await p;
    expect(got).toBe(true);
  });

  it("source - on a manual clock: each page after its latency, a stall holds what falls due in it, then the full latency again", async () => {
    const manual = new ManualClock();
    const restore = setClock(manual);
    try {
      const s = new PageSource(5000); // 5 ms
      const got: Array<[number, number]> = [];
      const t0 = manual.now();
      const at = () => Math.round((manual.now() - t0) * 1000) / 1000;
      void s.fetch(1).then(() => got.push([1, at()]));
      await manual.advance(2);
      void s.fetch(2).then(() => got.push([2, at()])); // due at 7 ms
      await manual.advance(4); // 6 ms: page 1 came at 5
      s.stall(); // page 2 falls due inside the stall
      await manual.advance(10);
      expect(got).toEqual([[1, 5]]);
      s.unstall(); // at 16 ms: re-sent, the full 5 ms again
      await manual.advance(10);
      expect(got).toEqual([[1, 5], [2, 21]]);
      s.close();
    } finally {
      restore();
    }
  });
});
