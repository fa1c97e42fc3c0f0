/**
 * The live view's parts without NATS: Linger shows only what lasts, the pager's userfaultfd tells
 * who sleeps and wakes, and the api's join of vcpu states with the pager's sleepers.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LiveVcpus, joinVcpu } from "../../services/api/src/live.ts";
import { Userfaultfd } from "../../services/pager/src/userfaultfd.ts";
import { stateCounts } from "../../cli/src/progress.ts";
import { Linger, ManualClock, setClock, type WaitState } from "@faultline/shared";

let clock: ManualClock;
let restore: () => void;
beforeEach(() => {
  clock = new ManualClock();
  restore = setClock(clock);
});
afterEach(() => restore());

describe("live view", () => {
  it("live view - Linger shows a condition only once it has lasted, and its end only if it was shown", async () => {
    const shown: Array<[number, string | null]> = [];
    const t0 = clock.now();
    const l = new Linger<number, string>(10, () => clock.now() - t0, (k, v) => shown.push([k, v]));
    l.begin(0, "fast");
    await clock.advance(5);
    l.end(0); // a fast fault: nothing at all
    l.begin(1, "slow");
    await clock.advance(9);
    expect(shown).toEqual([]);
    await clock.advance(2);
    expect(shown).toEqual([[1, "slow"]]);
    expect(l.shown(1)).toBe("slow");
    l.end(1);
    expect(shown).toEqual([[1, "slow"], [1, null]]);
    l.begin(2, "x");
    l.close();
    await clock.advance(50);
    expect(shown).toHaveLength(2); // closed: nothing more
  });

  it("live view - the userfaultfd tells its hook who sleeps (vCPUs, not kworkers) and who is woken, by a fill or a signal", async () => {
    const seen: Array<[number, number, WaitState | null]> = [];
    const ctx = new Userfaultfd({ onResident: () => undefined, now: () => 0, onWait: (v, g, s) => seen.push([v, g, s]) });
    const a = ctx.sleep(0, 7, "TASK_KILLABLE");
    const b = ctx.sleep(1, 8, "TASK_INTERRUPTIBLE");
    const k = ctx.sleep(-1, 9, "TASK_KILLABLE", 0);
    ctx.setPending(0, ["SIGUSR1"], false); // TASK_KILLABLE: not woken
    ctx.setPending(1, ["SIGUSR1"], false); // TASK_INTERRUPTIBLE: woken
    await b;
    ctx.copy(7, "copy");
    await a;
    ctx.copy(9, "copy");
    await k;
    expect(seen).toEqual([[0, 7, "TASK_KILLABLE"], [1, 8, "TASK_INTERRUPTIBLE"], [1, 8, null], [0, 7, null]]);
  });

  it("live view - the join: blocked with the pager's wait state, spinning for SPINNING, halted for the async-PF halt, else the vcpu's state", () => {
    const f = { site: "tdp", gfn: 5, sinceMs: 10 };
    expect(joinVcpu("running", f, { gfn: 5, waitState: "TASK_KILLABLE", sinceMs: 12 })).toEqual({ state: "blocked", blockedIn: { site: "tdp", gfn: 5, waitState: "TASK_KILLABLE", sinceMs: 12 } });
    expect(joinVcpu("running", { ...f, site: "emulated" }, { gfn: 5, waitState: "SPINNING", sinceMs: 12 }).state).toBe("spinning");
    expect(joinVcpu("halted", { ...f, waitState: "TASK_INTERRUPTIBLE" }, undefined)).toEqual({ state: "halted", blockedIn: { site: "apf-halt", gfn: 5, waitState: "TASK_INTERRUPTIBLE", sinceMs: 10 } });
    expect(joinVcpu("running", f, undefined)).toEqual({ state: "running", blockedIn: null }); // in flight, not asleep
    expect(joinVcpu("running", null, { gfn: 5, waitState: "TASK_KILLABLE", sinceMs: 12 })).toEqual({ state: "running", blockedIn: null });
    expect(joinVcpu("paused", null, undefined).state).toBe("paused");
  });

  it("live view - messages from both services merge per vCPU; a wake or the end of the fault unblocks it", () => {
    const live = new LiveVcpus(2);
    live.onState({ vcpu: 0, state: "running", pagesTouched: 40, inFault: { site: "tdp", gfn: 40, sinceMs: 100 } });
    expect(live.view[0]!.state).toBe("running"); // the pager has not said it sleeps
    live.onWait({ vcpu: 0, gfn: 40, waitState: "TASK_KILLABLE", atMs: 101 });
    expect(live.view[0]).toEqual({ state: "blocked", pagesTouched: 40, blockedIn: { site: "tdp", gfn: 40, waitState: "TASK_KILLABLE", sinceMs: 101 } });
    live.onState({ vcpu: 0, state: "running", pagesTouched: 41 }); // progress without inFault: the fault is still in flight
    expect(live.view[0]!.state).toBe("blocked");
    live.onWait({ vcpu: 0, gfn: 40, waitState: null, atMs: 300 });
    expect(live.view[0]).toEqual({ state: "running", pagesTouched: 41, blockedIn: null });
    // a stale sleeper on another page does not block a newer fault
    live.onWait({ vcpu: 1, gfn: 3, waitState: "TASK_KILLABLE", atMs: 5 });
    live.onState({ vcpu: 1, state: "running", pagesTouched: 4, inFault: { site: "tdp", gfn: 4, sinceMs: 20 } });
    expect(live.view[1]!.state).toBe("running");
    live.onState({ vcpu: 1, state: "paused", pagesTouched: 4, inFault: null });
    expect(live.view[1]).toEqual({ state: "paused", pagesTouched: 4, blockedIn: null });
    expect(stateCounts(live.view)).toBe("1 running, 1 paused");
  });

  it("live view - the progress line counts vCPUs per state and where they wait", () => {
    const b = { site: "tdp", gfn: 1, waitState: "TASK_KILLABLE", sinceMs: 0 };
    expect(stateCounts([{ state: "paused", pagesTouched: 0 }, { state: "blocked", pagesTouched: 0, blockedIn: b }, { state: "blocked", pagesTouched: 0, blockedIn: { ...b, gfn: 2 } }]))
      .toBe("2 blocked (tdp TASK_KILLABLE), 1 paused");
  });
});
