import { describe, expect, it } from "vitest";
import { RunClock, epochMs } from "./clock.ts";

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
});
