import { describe, expect, it } from "vitest";
import { KvmErrnoError } from "./errors.ts";
import { checkMemslotOp, simulateMemslotOps } from "./memslot-check.ts";
import { parseScenario } from "./scenario.ts";

const MiB = 1 << 20;
const withOps = (memslotOps: unknown[]) =>
  parseScenario({ durationMs: 1000, vm: { memslots: [{ slot: 0, gpa: 0, size: "8MiB" }, { slot: 1, gpa: 16 * MiB, size: "1MiB", readonly: true }], memslotOps }, workload: { pagesPerVcpu: 16 } });
const refused = (ops: unknown[]) => {
  try {
    withOps(ops);
  } catch (e) {
    return e as KvmErrnoError;
  }
  throw new Error("expected the scenario to be refused");
};

describe("memslot checks", () => {
  it("memslot checks - vm.memslotOps get KVM's errnos with the op's path", () => {
    expect(refused([{ atMs: 1, op: "add", slot: 2, gpa: 4 * MiB, size: "1MiB" }])).toMatchObject({ code: "FL_ERR_KVM_EEXIST", errno: "EEXIST", path: "/vm/memslotOps/0/gpa" });
    expect(refused([{ atMs: 1, op: "add", slot: 2, gpa: 32 * MiB + 512, size: "1MiB" }])).toMatchObject({ errno: "EINVAL", path: "/vm/memslotOps/0/gpa" });
    expect(refused([{ atMs: 1, op: "add", slot: 2, gpa: 32 * MiB, size: "4097" }])).toMatchObject({ errno: "EINVAL", path: "/vm/memslotOps/0/size" });
    expect(refused([{ atMs: 1, op: "delete", slot: 7 }])).toMatchObject({ errno: "EINVAL", path: "/vm/memslotOps/0/slot" });
    expect(refused([{ atMs: 1, op: "flags", slot: 1, readonly: false }])).toMatchObject({ errno: "EINVAL", path: "/vm/memslotOps/0/readonly" });
    expect(refused([{ atMs: 1, op: "move", slot: 1, gpa: 0 }])).toMatchObject({ errno: "EEXIST", path: "/vm/memslotOps/0/gpa" });
    expect(refused([{ atMs: 1, op: "move", slot: 1, gpa: 32 * MiB, size: "2MiB" }])).toMatchObject({ errno: "EINVAL", path: "/vm/memslotOps/0/size" });
  });

  it("memslot checks - missing or misplaced fields are FL_ERR_INVALID naming the field", () => {
    expect(refused([{ atMs: 1, op: "add", slot: 2 }])).toMatchObject({ code: "FL_ERR_INVALID", path: "/vm/memslotOps/0/size" });
    expect(refused([{ atMs: 1, op: "add", slot: 2, size: "1MiB" }])).toMatchObject({ code: "FL_ERR_INVALID", path: "/vm/memslotOps/0/gpa" });
    expect(refused([{ atMs: 1, op: "move", slot: 1 }])).toMatchObject({ code: "FL_ERR_INVALID", path: "/vm/memslotOps/0/gpa" });
    expect(refused([{ atMs: 1, op: "delete", slot: 1, readonly: true }])).toMatchObject({ code: "FL_ERR_INVALID", path: "/vm/memslotOps/0/readonly" });
    expect(refused([{ atMs: 1, op: "flags", slot: 1 }])).toMatchObject({ code: "FL_ERR_INVALID", path: "/vm/memslotOps/0/readonly" });
  });

  it("memslot checks - the layout is simulated through the ops in time order, ties in document order", () => {
    const ok = withOps([
      { atMs: 30, op: "add", slot: 1, gpa: 16 * MiB, size: "2MiB" }, // after the delete at 20 ms, with a new size
      { atMs: 20, op: "delete", slot: 1 },
      { atMs: 40, op: "move", slot: 0, gpa: 64 * MiB },
      { atMs: 40, op: "add", slot: 3, gpa: 0, size: "8MiB" }, // slot 0's old place, free once the move (same time, earlier) ran
    ]);
    expect(ok.vm.memslotOps[0]!.size).toBe(2 * MiB);
    expect(refused([{ atMs: 30, op: "delete", slot: 1 }, { atMs: 20, op: "delete", slot: 1 }]).path).toBe("/vm/memslotOps/0/slot");
    expect(refused([{ atMs: 40, op: "add", slot: 3, gpa: 0, size: "8MiB" }, { atMs: 40, op: "move", slot: 0, gpa: 64 * MiB }])).toMatchObject({ errno: "EEXIST", path: "/vm/memslotOps/0/gpa" });
  });

  it("memslot checks - a slot may move onto part of its own range; an unchanged region is no change", () => {
    const slots = [{ id: 0, baseGfn: 0, npages: 256, readonly: false }];
    expect(checkMemslotOp(slots, { op: "move", slot: 0, gpa: 128 * 4096 }, "op", "")).toEqual({ change: "KVM_MR_MOVE", id: 0, baseGfn: 128 });
    expect(checkMemslotOp(slots, { op: "move", slot: 0, gpa: 0 }, "op", "")).toEqual({ change: "none", id: 0 });
    expect(checkMemslotOp(slots, { op: "flags", slot: 0, readonly: false }, "op", "")).toEqual({ change: "none", id: 0 });
    expect(simulateMemslotOps([], [{ op: "add", slot: 0, gpa: 0, size: 4096 }], "op", "/ops")).toEqual([{ id: 0, baseGfn: 0, npages: 1, readonly: false }]);
  });
});
