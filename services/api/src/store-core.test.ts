import { ValidationError, parseScenario } from "@faultline/shared";
import { pino } from "pino";
import { describe, expect, test } from "vitest";
import { decodeCursor, encodeCursor, pageOf, parseRecord, pruneVictims, type RunRecord } from "./store-core.ts";

const scenario = parseScenario({ name: "unit" });
const rec = (id: string, status: RunRecord["status"] = "completed"): RunRecord => ({
  id, status, scenario, createdAt: "2026-01-01T00:00:00.000Z", t0: null, endedAt: null, error: null, vcpus: [],
});

function capture() {
  const lines: Array<{ level: number; key?: string }> = [];
  return { log: pino({ level: "warn" }, { write: (s: string) => void lines.push(JSON.parse(s)) }), lines };
}

describe("store-core", () => {
  test("store-core - a cursor round-trips and a forged one is refused", () => {
    expect(decodeCursor(encodeCursor("rmi5k2a1b2c3d"))).toBe("rmi5k2a1b2c3d");
    expect(() => decodeCursor("x")).toThrow(ValidationError);
    expect(() => decodeCursor(encodeCursor("r.>"))).toThrow(ValidationError);
  });

  test("store-core - pages are newest first and the last has no cursor", () => {
    const all = ["ra1", "ra3", "ra2", "ra5", "ra4"].map((id) => rec(id));
    const p1 = pageOf(all, { limit: 2 });
    expect(p1.runs.map((r) => r.id)).toEqual(["ra5", "ra4"]);
    const p2 = pageOf(all, { limit: 2, cursor: p1.nextCursor! });
    expect(p2.runs.map((r) => r.id)).toEqual(["ra3", "ra2"]);
    const p3 = pageOf(all, { limit: 2, cursor: p2.nextCursor! });
    expect(p3).toEqual({ runs: [rec("ra1")], nextCursor: null });
    // an exact fit ends without a cursor
    expect(pageOf(all, { limit: 5 }).nextCursor).toBeNull();
    // pages are copies
    p1.runs[0]!.status = "failed";
    expect(all.find((r) => r.id === "ra5")?.status).toBe("completed");
  });

  test("store-core - retention picks the oldest finished runs only", () => {
    const all = [rec("ra1", "running"), rec("ra2", "starting"), rec("ra3", "failed"), rec("ra4"), rec("ra5", "cancelled"), rec("ra6", "aborted")];
    expect(pruneVictims(all, 2)).toEqual(["ra3", "ra4"]);
    expect(pruneVictims(all, 4)).toEqual([]);
    expect(pruneVictims(all, 0)).toEqual(["ra3", "ra4", "ra5", "ra6"]);
  });

  test("store-core - an unreadable entry is skipped with a warning", () => {
    const { log, lines } = capture();
    expect(parseRecord("ra1", JSON.stringify(rec("ra1")), log)).toEqual(rec("ra1"));
    expect(parseRecord("ra1", "{", log)).toBeNull();
    expect(parseRecord("ra1", JSON.stringify({ ...rec("ra1"), status: "lost" }), log)).toBeNull();
    expect(parseRecord("ra1", JSON.stringify(rec("ra2")), log)).toBeNull();
    expect(lines.map((l) => [l.level, l.key])).toEqual([[40, "ra1"], [40, "ra1"], [40, "ra1"]]);
  });

  test("store-core - a record written before a scenario default existed still reads", () => {
    const { log, lines } = capture();
    const old = JSON.parse(JSON.stringify(rec("ra1"))) as { scenario: Record<string, unknown> };
    delete old.scenario.endWhenDone;
    expect(parseRecord("ra1", JSON.stringify(old), log)?.scenario.endWhenDone).toBe(true);
    expect(lines).toEqual([]);
  });
});
