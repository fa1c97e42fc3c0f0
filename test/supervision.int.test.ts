/**
 * `faultline up` as a user runs it, with its own nats-server: a service killed with SIGKILL is
 * restarted; one that keeps dying ends `up` with one line; SIGTERM stops every child; and when the
 * CLI itself is killed with SIGKILL, its children (services, nats-server and its watchdog) exit too.
 * Process trees are read from /proc (Linux).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "cli", "bin", "faultline.js");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Proc {
  pid: number;
  ppid: number;
  cmd: string;
}

/** Every live process (zombies count as gone: nobody may reap an orphan here). */
function processes(): Proc[] {
  const out: Proc[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (after[0] === "Z" || after[0] === "X") continue;
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").join(" ").trim();
      out.push({ pid: Number(d), ppid: Number(after[1]), cmd });
    } catch {
      /* exited while we looked */
    }
  }
  return out;
}

function descendants(root: number): Proc[] {
  const all = processes();
  const found: Proc[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    for (const c of all.filter((x) => x.ppid === p)) {
      found.push(c);
      todo.push(c.pid);
    }
  }
  return found;
}

const alive = (pids: number[]) => {
  const live = new Set(processes().map((p) => p.pid));
  return pids.filter((p) => live.has(p));
};

/** The pid of the service's process among the CLI's children, if it runs. */
const servicePid = (cli: number, svc: string) => descendants(cli).find((p) => p.cmd.includes(`services/${svc}/src/main.ts`))?.pid;

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, boundMs = 30_000): Promise<T> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface Up {
  child: ChildProcess;
  pid: number;
  apiUrl: string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Up[] = [];
afterEach(async () => {
  // never leave a CLI behind, whatever the test did
  for (const u of started.splice(0)) {
    const kids = descendants(u.pid).map((p) => p.pid);
    if (u.child.exitCode === null && u.child.signalCode === null) u.child.kill("SIGKILL");
    for (const k of kids) {
      try {
        process.kill(k, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
});

async function up(): Promise<Up> {
  const child = spawn(process.execPath, [BIN, "up", "--port", "0", "--log-level", "warn", "--ready-timeout", "60000"], {
    cwd: ROOT,
    env: { ...process.env, CI: "true" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const u: Up = { child, pid: child.pid!, apiUrl: "", stderr: () => err, exited };
  started.push(u);
  await until("`faultline up` to be ready", () => {
    if (child.exitCode !== null) throw new Error(`up exited ${child.exitCode}: ${err}`);
    return /Ctrl-C to stop/.test(out);
  }, 90_000);
  u.apiUrl = /API:\s+(http:\/\/\S+)/.exec(out)![1]!;
  return u;
}

async function healthy(apiUrl: string): Promise<boolean> {
  try {
    const r = await fetch(`${apiUrl}/healthz`, { signal: AbortSignal.timeout(3000) });
    return r.ok && ((await r.json()) as { status: string }).status === "ok";
  } catch {
    return false;
  }
}

describe.skipIf(!existsSync("/proc/self/stat"))("supervision", () => {
  it("supervision - a service killed with SIGKILL comes back with a new pid; one that keeps dying ends up with one line and exit 1", async () => {
    const u = await up();
    const kids = descendants(u.pid);
    expect(kids.filter((p) => /services\/\w+\/src\/main\.ts/.test(p.cmd))).toHaveLength(5);
    expect(kids.some((p) => p.cmd.startsWith("nats-server"))).toBe(true);

    const first = servicePid(u.pid, "mmu")!;
    process.kill(first, "SIGKILL");
    const second = await until("mmu restarted", () => {
      const p = servicePid(u.pid, "mmu");
      return p !== undefined && p !== first ? p : undefined;
    });
    await until("/healthz ok again", () => healthy(u.apiUrl));
    expect(u.stderr()).toContain("faultline: service mmu exited (SIGKILL); restart 1 in 250 ms");

    // keep killing it: the 5th death within 60 s ends `up`
    let last = second;
    for (let i = 0; i < 4; i++) {
      process.kill(last, "SIGKILL");
      if (i === 3) break;
      last = await until(`mmu restart ${i + 2}`, () => {
        const p = servicePid(u.pid, "mmu");
        return p !== undefined && p !== last ? p : undefined;
      });
    }
    const end = await u.exited;
    expect(end.code).toBe(1);
    const lines = u.stderr().split("\n").filter((l) => l.startsWith("faultline: "));
    expect(lines.filter((l) => /restart \d in/.test(l)).map((l) => /restart (\d) in (\d+) ms/.exec(l)!.slice(1).join("/"))).toEqual(["1/250", "2/500", "3/1000", "4/2000"]);
    expect(lines.at(-1)).toBe("faultline: service mmu died (SIGKILL) 5 times in 60 s; giving up");
    expect(alive(kids.map((p) => p.pid))).toEqual([]);
  }, 180_000);

  it("supervision - SIGTERM to the CLI stops every child and exits 0", async () => {
    const u = await up();
    const kids = descendants(u.pid).map((p) => p.pid);
    expect(kids.length).toBeGreaterThanOrEqual(7); // five services, nats-server, its watchdog
    u.child.kill("SIGTERM");
    const end = await u.exited;
    expect(end.code).toBe(0);
    await until("every child gone", () => alive(kids).length === 0, 10_000).catch(() => undefined);
    expect(alive(kids)).toEqual([]);
  }, 120_000);

  it("supervision - when the CLI is killed with SIGKILL, every child (services, nats-server, watchdog) exits on its own", async () => {
    const u = await up();
    const kids = descendants(u.pid);
    expect(kids.some((p) => p.cmd.startsWith("nats-server"))).toBe(true);
    const pids = kids.map((p) => p.pid);
    const t0 = performance.now();
    u.child.kill("SIGKILL");
    await u.exited;
    await until("every child gone after SIGKILL of the CLI", () => alive(pids).length === 0, 10_000).catch(() => undefined);
    const ms = performance.now() - t0;
    expect(alive(pids).map((p) => kids.find((k) => k.pid === p)!.cmd)).toEqual([]);
    console.log(`supervision: all ${pids.length} children of the SIGKILLed CLI gone after ${ms.toFixed(0)} ms`);
  }, 120_000);

  it("supervision - if its nats-server dies, up stops every service and exits 1 with one line", async () => {
    const u = await up();
    const kids = descendants(u.pid);
    const nats = kids.find((p) => p.cmd.startsWith("nats-server"))!;
    process.kill(nats.pid, "SIGKILL");
    expect((await u.exited).code).toBe(1);
    expect(u.stderr().trim().split("\n").at(-1)).toBe("faultline: nats-server died (SIGKILL); giving up");
    await until("every child gone", () => alive(kids.map((p) => p.pid)).length === 0, 10_000).catch(() => undefined);
    expect(alive(kids.map((p) => p.pid))).toEqual([]);
  }, 120_000);

  /** `faultline run` of the seed scenario made long enough that what the test does lands while it runs. */
  async function longRun(): Promise<{ child: ChildProcess; err: () => string; exited: Promise<number | null> }> {
    const dir = await mkdtemp(join(tmpdir(), "fl-sup-"));
    const file = join(dir, "long.yaml");
    const seed = readFileSync(join(ROOT, "scenarios", "postcopy-stall-sigusr1-6.2.yaml"), "utf8");
    await writeFile(file, seed.replace(/^durationMs: \d+$/m, "durationMs: 120000\nendWhenDone: false").replace(/^name: .*$/m, "name: long"));
    const child = spawn(process.execPath, [BIN, "run", file, "--log-level", "info"], { cwd: ROOT, env: { ...process.env, CI: "true" }, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    started.push({ child, pid: child.pid!, apiUrl: "", stderr: () => err, exited: exited.then((code) => ({ code, signal: null })) });
    // every service has logged "service ready" and the run has started
    await until("five services ready and the run started", () => (err.match(/"msg":"service ready"/g) ?? []).length === 5 && /"msg":"run started"/.test(err), 90_000);
    return { child, err: () => err, exited };
  }

  it("supervision - a service that dies during `faultline run` is not restarted: the run ends with one line, exit 1, nothing left", async () => {
    const { child, err, exited } = await longRun();
    const kids = descendants(child.pid!);
    process.kill(servicePid(child.pid!, "pager")!, "SIGKILL");
    expect(await exited).toBe(1);
    expect(err()).toContain("faultline: service pager died (SIGKILL); giving up");
    expect(err()).not.toMatch(/restart \d in/);
    await until("every child gone", () => alive(kids.map((p) => p.pid)).length === 0, 10_000).catch(() => undefined);
    expect(alive(kids.map((p) => p.pid))).toEqual([]);
  }, 120_000);

  it("supervision - SIGINT during `faultline run` stops nats-server and every service; exit 130", async () => {
    const { child, err: stderr, exited } = await longRun();
    const kids = descendants(child.pid!);
    expect(kids.filter((p) => /services\/\w+\/src\/main\.ts/.test(p.cmd))).toHaveLength(5);
    expect(kids.some((p) => p.cmd.startsWith("nats-server"))).toBe(true);
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr()).toContain("faultline: interrupted by SIGINT; stopping");
    await until("every child gone", () => alive(kids.map((p) => p.pid)).length === 0, 10_000).catch(() => undefined);
    expect(alive(kids.map((p) => p.pid))).toEqual([]);
  }, 120_000);
});
