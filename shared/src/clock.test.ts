import { describe, expect, it } from "vitest";
import { ManualClock, RunClock, epochMs, setClock, sleepPrecise } from "./clock.ts";

describe("clock", () => {
  it("clock - at() never runs before the scenario time it was given", async () => {
    const c = new RunClock(epochMs());
    const seen: Array<[number, number]> = [];
    await Promise.all(
      [1, 2, 3, 5, 8, 13].map((at) => new Promise<void>((r) => c.at(at, () => (seen.push([at, c.now()]), r())))),
    );
    for (const [at, now] of seen) expect(now).toBeGreaterThanOrEqual(at);
  });

  it("clock - cancelAll() stops what has not run yet", async () => {
    const c = new RunClock(epochMs());
    let ran = false;
    c.at(5, () => (ran = true));
    c.cancelAll();
    await new Promise((r) => setTimeout(r, 20));
    expect(ran).toBe(false);
  });

  it("clock - on an injected manual clock, planned actions and modelled delays run in time order, only as time is moved", async () => {
    const manual = new ManualClock();
    const restore = setClock(manual);
    try {
      const c = new RunClock();
      const seen: string[] = [];
      c.at(50, () => seen.push(`plan@${c.now()}`));
      c.at(10, () => seen.push(`early@${c.now()}`));
      c.start(epochMs()); // scenario time 0 is now; nothing has run yet
      void sleepPrecise(30).then(() => seen.push(`delay@${c.now()}`));
      await manual.advance(5);
      expect(seen).toEqual([]);
      await manual.advance(100);
      expect(seen).toEqual(["early@10", "delay@30", "plan@50"]);
      c.cancelAll();
    } finally {
      restore();
    }
  });
});
