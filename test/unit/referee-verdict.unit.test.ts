/** The referee's verdicts and its report parsing, on made-up measures (no kernel, no services). */
import { describe, expect, it } from "vitest";
import { parseReport, RefereeError, type Measure } from "../kernel/referee-kernel.ts";
import { BEGIN, disagreements, END, PAIRS, renderTable, withTable } from "../kernel/referee-table.ts";

const sleeper: Measure = { honouredBeforeFill: false, state: "D", cpuShare: 0, eventsInWindow: 0, windowMs: 600, eventsPerSec: 0, killedBeforeFill: true };
const spinner: Measure = { ...sleeper, state: "R", cpuShare: 0.4, eventsInWindow: 60_000, eventsPerSec: 100_000 };

describe("referee verdict", () => {
  it("referee - equal measures agree, and each check flips on its own", () => {
    expect(disagreements(sleeper, sleeper)).toEqual([]);
    expect(disagreements(sleeper, { ...sleeper, honouredBeforeFill: true })).toEqual(["signal"]);
    expect(disagreements(sleeper, { ...sleeper, cpuShare: 1 })).toEqual(["cpu"]);
    expect(disagreements(sleeper, { ...sleeper, killedBeforeFill: false })).toEqual(["sigkill"]);
    expect(disagreements(spinner, { ...spinner, eventsPerSec: 1.1 })).toEqual(["events"]);
  });

  it("referee - the message rate is compared by order of magnitude; a handful of events counts as one a second", () => {
    expect(disagreements(spinner, { ...spinner, eventsPerSec: 20_000 })).toEqual([]);
    expect(disagreements(spinner, { ...spinner, eventsPerSec: 5_000 })).toEqual(["events"]);
    expect(disagreements({ ...sleeper, eventsPerSec: 1.7 }, { ...sleeper, eventsPerSec: 0 })).toEqual([]);
  });

  it("referee - the table has one row per pair between its markers, and replaces only that block", () => {
    const rs = PAIRS.map((p) => ({ ...p, kernel: sleeper, modelMeasure: p.kind === "kernel-uaccess" ? spinner : sleeper, disagree: [] }));
    const table = renderTable(rs, "header");
    expect(table.split("\n").filter((l) => l.startsWith("| `"))).toHaveLength(PAIRS.length);
    expect(withTable(`intro\n${BEGIN}\nold\n${END}\noutro\n`, table)).toBe(`intro\n${table}\noutro\n`);
    expect(() => withTable("no markers", table)).toThrow(/markers/);
  });

  it("referee - the program's error document and garbage are typed errors", () => {
    expect(() => parseReport('{"error":"userfaultfd unavailable: Operation not permitted","kernel":"6.18"}')).toThrow(RefereeError);
    expect(() => parseReport("not json")).toThrow(/not JSON/);
    expect(() => parseReport('{"kernel":"6.18","windowMs":600,"kinds":{}}')).toThrow(/unexpected report/);
  });
});
