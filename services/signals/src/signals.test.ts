import { describe, expect, it } from "vitest";
import { PauseController } from "./pause.ts";
import { Tasks } from "./tasks.ts";

describe("signals", () => {
  it("signals - a second SIGUSR1 while one is pending coalesces and shares its outcome", () => {
    const t = new Tasks(2);
    t.send([0], "SIGUSR1", "plan", 10);
    const [c] = t.send([0], "SIGUSR1", "pause-kick", 12);
    expect(c!.pending).toEqual(["SIGUSR1"]);
    const { eaten } = t.dequeue(0, 15, "KVM_EXIT_INTR", "gup-eintr");
    expect(eaten).toEqual(["SIGUSR1"]);
    expect(t.records.map((r) => [r.outcome, r.latencyUs])).toEqual([["KVM_EXIT_INTR", 5000], ["KVM_EXIT_INTR", 3000]]);
    expect(t.pendingOf(0)).toEqual([]);
  });

  it("signals - a fatal signal to one task queues SIGKILL on, and wakes, every task of the VM (complete_signal)", () => {
    const t = new Tasks(3);
    const changes = t.send([1], "SIGKILL", "api", 0);
    expect(changes.map((c) => [c.vcpu, c.fatal])).toEqual([[1, true], [0, true], [2, true]]);
    expect(t.vmKilled).toBe(true);
    // KVM_EXIT_INTR does not consume a fatal signal: the task dies on its way to userspace
    t.dequeue(0, 1, "KVM_EXIT_INTR", "gup-eintr");
    expect(t.fatalPending(0)).toBe(true);
  });

  it("signals - SIGUSR1, SIGINT and SIGTRAP are handled by the VMM and are not fatal; SIGTERM is", () => {
    const t = new Tasks(1);
    for (const s of ["SIGUSR1", "SIGINT", "SIGTRAP"] as const) expect(t.send([0], s, "plan", 0)[0]!.fatal).toBe(false);
    expect(t.send([0], "SIGTERM", "plan", 0)[0]!.fatal).toBe(true);
  });

  function pc(vcpus: number) {
    const kicks: number[][] = [];
    const p = new PauseController(vcpus, 100, {
      now: () => 0,
      stopAll: async () => undefined,
      contAll: async () => undefined,
      kick: (v) => kicks.push(v),
      every: () => () => undefined,
    });
    return { p, kicks };
  }

  it("pause - kicks every vCPU, re-kicks the unparked ones when one parks, completes when all parked", async () => {
    const { p, kicks } = pc(3);
    const rec = await p.pause();
    expect(kicks).toEqual([[0, 1, 2]]);
    p.onState(0, "paused");
    expect(kicks.at(-1)).toEqual([1, 2]);
    p.onState(1, "paused");
    expect(rec.completedAtMs).toBeNull();
    p.onState(2, "paused");
    expect(rec.completedAtMs).not.toBeNull();
    expect(rec.kicks).toBe(6);
  });

  it("pause - never completes once a vCPU is killed, and stops kicking", async () => {
    const { p, kicks } = pc(2);
    const rec = await p.pause();
    p.onState(1, "killed");
    p.onState(0, "paused");
    expect(rec.completedAtMs).toBeNull();
    expect(kicks).toHaveLength(1);
  });
});
