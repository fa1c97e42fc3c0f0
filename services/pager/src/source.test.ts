import { describe, expect, it } from "vitest";
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
});
