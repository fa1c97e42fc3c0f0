import { spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ValidationError } from "./errors.ts";
import { watchParent } from "./parent-watch.ts";

const HERE = dirname(fileURLToPath(import.meta.url));

function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "0"]);
  return r.pid!;
}

describe("parent-watch", () => {
  it("parent-watch - returns null without FAULTLINE_PARENT_PID and rejects a value that is not a pid", () => {
    expect(watchParent(() => undefined, {})).toBeNull();
    expect(watchParent(() => undefined, { FAULTLINE_PARENT_PID: "" })).toBeNull();
    expect(() => watchParent(() => undefined, { FAULTLINE_PARENT_PID: "abc" })).toThrow(ValidationError);
  });

  it("parent-watch - calls onGone once when the watched pid no longer exists", async () => {
    const pid = deadPid();
    const calls: string[] = [];
    const stop = watchParent((why) => calls.push(why), { FAULTLINE_PARENT_PID: String(pid) });
    expect(stop).toBeTypeOf("function");
    await new Promise((r) => setTimeout(r, 1600));
    expect(calls).toHaveLength(1);
    expect(calls[0]).toContain(String(pid));
    stop!();
  });

  it("parent-watch - stays quiet while the parent lives, and stop() ends the watch", async () => {
    const calls: string[] = [];
    const stop = watchParent((why) => calls.push(why), { FAULTLINE_PARENT_PID: String(process.ppid) });
    await new Promise((r) => setTimeout(r, 1200));
    expect(calls).toEqual([]);
    stop!();
    const stop2 = watchParent((why) => calls.push(why), { FAULTLINE_PARENT_PID: String(deadPid()) });
    stop2!();
    await new Promise((r) => setTimeout(r, 1200));
    expect(calls).toEqual([]);
  });

  it("parent-watch - a grandchild exits when its parent is killed with SIGKILL", async () => {
    // parent: starts the watcher with FAULTLINE_PARENT_PID = its own pid, prints the watcher's pid, sleeps
    const watcher = `import(${JSON.stringify(join(HERE, "parent-watch.ts"))}).then((m) => { m.watchParent((why) => { console.log("gone " + why); process.exit(3); }); console.log("watching"); setInterval(() => {}, 1000); });`;
    const parentSrc = `const { spawn } = require("node:child_process");
      const c = spawn(process.execPath, ["--import", "tsx", "-e", ${JSON.stringify(watcher)}], { env: { ...process.env, FAULTLINE_PARENT_PID: String(process.pid) }, stdio: ["ignore", "inherit", "inherit"] });
      console.log("child " + c.pid); setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ["-e", parentSrc], { stdio: ["ignore", "pipe", "inherit"], cwd: join(HERE, "..", "..") });
    let out = "";
    parent.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const seen = async (re: RegExp): Promise<RegExpExecArray> => {
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const childPid = Number((await seen(/child (\d+)/))[1]);
    await seen(/watching/);
    parent.kill("SIGKILL");
    // the watcher's stdout is the same pipe; it prints its reason and exits
    const m = await seen(/gone (.*)/);
    expect(m[1]).toMatch(new RegExp(`parent ${parent.pid} `));
    // and the process is gone (not merely printing)
    const deadline = Date.now() + 10_000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      try {
        process.kill(childPid, 0);
        const stat = spawnSync("cat", [`/proc/${childPid}/stat`]).stdout.toString();
        alive = stat !== "" && !/\) Z /.test(stat);
      } catch {
        alive = false;
      }
      if (alive) await new Promise((r) => setTimeout(r, 100));
    }
    expect(alive).toBe(false);
  }, 30_000);
});
