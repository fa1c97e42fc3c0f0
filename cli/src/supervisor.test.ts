import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { Supervisor, type GiveUp, type RestartInfo } from "./supervisor.ts";

const sleeper = () => spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
const crasher = (code: number) => () => spawn(process.execPath, ["-e", `process.exit(${code})`], { stdio: "ignore" });
const gone = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

let sup: Supervisor | null = null;
afterEach(async () => {
  await sup?.stop();
  sup = null;
});

/** Waits for the next `spawn` of `name`. */
async function respawn(s: Supervisor, name: string): Promise<ChildProcess> {
  for (;;) {
    const [n, child] = (await once(s, "spawn")) as [string, ChildProcess];
    if (n === name) return child;
  }
}

describe("supervisor", () => {
  it("supervisor - a child killed with SIGKILL is started again, with a new pid, and the restart is logged in one line", async () => {
    const lines: string[] = [];
    sup = new Supervisor({ initialDelayMs: 50 }, { log: (l) => lines.push(l) });
    const first = sup.add("mmu", sleeper);
    sup.add("vcpu", sleeper);
    const pid0 = first.pid!;
    expect(sup.pid("mmu")).toBe(pid0);
    const next = respawn(sup, "mmu");
    first.kill("SIGKILL");
    const second = await next;
    expect(second.pid).not.toBe(pid0);
    expect(sup.child("mmu")).toBe(second);
    expect(sup.pid("mmu")).toBe(second.pid);
    expect(lines).toEqual(["service mmu exited (SIGKILL); restart 1 in 50 ms"]);
  });

  it("supervisor - delays double per consecutive restart up to the cap; the Nth death in the window gives up and stops everything", async () => {
    const lines: string[] = [];
    sup = new Supervisor({ initialDelayMs: 20, maxDelayMs: 80, maxDeaths: 6, windowMs: 60_000 }, { log: (l) => lines.push(l) });
    const restarts: RestartInfo[] = [];
    sup.on("restart", (r: RestartInfo) => restarts.push(r));
    const other = sup.add("pager", sleeper);
    sup.add("api", crasher(3));
    const g: GiveUp = await sup.gaveUp;
    expect(restarts.map((r) => [r.attempt, r.delayMs])).toEqual([[1, 20], [2, 40], [3, 80], [4, 80], [5, 80]]);
    expect(lines).toHaveLength(5);
    expect(lines[0]).toBe("service api exited (exit code 3); restart 1 in 20 ms");
    expect(g.message).toBe("service api died (exit code 3) 6 times in 60 s; giving up");
    expect(g).toMatchObject({ name: "api", exit: "exit code 3", deaths: 6 });
    // every child is stopped, the healthy one too
    expect(gone(other)).toBe(true);
    expect(sup.pid("pager")).toBeUndefined();
  });

  it("supervisor - a child that stayed up resetAfterMs restarts from the first delay again", async () => {
    sup = new Supervisor({ initialDelayMs: 30, resetAfterMs: 1500 }, { log: () => undefined });
    const restarts: RestartInfo[] = [];
    sup.on("restart", (r: RestartInfo) => restarts.push(r));
    let c = sup.add("signals", sleeper);
    // two quick deaths: attempts 1 and 2
    for (let i = 0; i < 2; i++) {
      const next = respawn(sup, "signals");
      c.kill("SIGKILL");
      c = await next;
    }
    // then up for longer than resetAfterMs: attempt 1 again
    await new Promise((r) => setTimeout(r, 1800));
    const next = respawn(sup, "signals");
    c.kill("SIGKILL");
    await next;
    expect(restarts.map((r) => r.attempt)).toEqual([1, 2, 1]);
    expect(restarts.map((r) => r.delayMs)).toEqual([30, 60, 30]);
  });

  it("supervisor - stop() cancels a pending restart and stops every child; exits during stop are not restarts", async () => {
    sup = new Supervisor({ initialDelayMs: 200 }, { log: () => undefined });
    const spawns: string[] = [];
    const a = sup.add("vcpu", sleeper);
    const b = sup.add("mmu", sleeper);
    sup.on("spawn", (n: string) => spawns.push(n));
    const restarted = once(sup, "restart");
    a.kill("SIGKILL");
    await restarted;
    await sup.stop();
    expect(gone(b)).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(spawns).toEqual([]);
    expect(sup.pid("vcpu")).toBeUndefined();
  });

  it("supervisor - before arm() a death is reported as startupExit, not restarted nor logged", async () => {
    const lines: string[] = [];
    sup = new Supervisor({ initialDelayMs: 20 }, { log: (l) => lines.push(l), armed: false });
    const spawns: string[] = [];
    sup.on("spawn", (n: string) => spawns.push(n));
    const exited = once(sup, "startupExit");
    sup.add("api", crasher(7));
    expect(await exited).toEqual(["api", "exit code 7"]);
    await new Promise((r) => setTimeout(r, 200));
    expect(spawns).toEqual(["api"]);
    expect(lines).toEqual([]);
    // arm() handles the death seen before: logged and restarted under the policy
    const again = respawn(sup, "api");
    sup.arm();
    await again;
    expect(lines[0]).toBe("service api exited (exit code 7); restart 1 in 20 ms");
  });

  it("supervisor - with maxDeaths 1 (one-shot commands) the first death gives up at once", async () => {
    sup = new Supervisor({ maxDeaths: 1 }, { log: () => undefined });
    const restarts: RestartInfo[] = [];
    sup.on("restart", (r: RestartInfo) => restarts.push(r));
    sup.add("pager", sleeper).kill("SIGKILL");
    expect((await sup.gaveUp).message).toBe("service pager died (SIGKILL); giving up");
    expect(restarts).toEqual([]);
  });
});
