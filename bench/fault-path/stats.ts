/** Small helpers shared by the bench modules: latency summaries and child-process handling. */
import { spawn, type ChildProcess } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { stopChild } from "../../cli/src/nats-server.ts";

export interface LatencyStats {
  n: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
}

/** Nearest-rank percentiles over exact samples (µs). */
export function latencyStats(samplesUs: readonly number[]): LatencyStats {
  const s = [...samplesUs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { n: 0, meanUs: 0, p50Us: 0, p90Us: 0, p99Us: 0, maxUs: 0 };
  const pct = (p: number) => s[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] ?? 0;
  const mean = s.reduce((a, b) => a + b, 0) / n;
  return { n, meanUs: round1(mean), p50Us: round1(pct(50)), p90Us: round1(pct(90)), p99Us: round1(pct(99)), maxUs: round1(s[n - 1] ?? 0) };
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Every child this process started and has not yet seen exit; main.ts stops them on any way out. */
const children = new Set<ChildProcess>();

/**
 * Spawns `node --import tsx <script> ...args` and resolves once it prints a line equal to `readyLine`
 * on stdout. stdin stays a pipe so the child can notice its parent is gone.
 */
export async function spawnTsx(script: string, args: string[], cwd: string, readyLine = "ready", timeoutMs = 30_000): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd, stdio: ["pipe", "pipe", "inherit"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  try {
    await new Promise<void>((resolve, reject) => {
      let buf = "";
      const t = setTimeout(() => reject(new Error(`${script} ${args.join(" ")}: not ready after ${timeoutMs} ms`)), timeoutMs);
      const done = (err?: Error) => {
        clearTimeout(t);
        child.stdout?.off("data", onData);
        if (err) reject(err);
        else resolve();
      };
      const onData = (d: Buffer) => {
        buf += d.toString();
        if (buf.split("\n").some((l) => l.trim() === readyLine)) done();
      };
      child.stdout?.on("data", onData);
      child.once("error", (e) => done(e));
      child.once("exit", (code, sig) => done(new Error(`${script} ${args.join(" ")} exited (${code ?? sig}) before it was ready`)));
    });
  } catch (err) {
    await stopTracked(child);
    throw err;
  }
  child.stdout?.resume(); // keep draining so the child never blocks on a full pipe
  return child;
}

export async function stopTracked(child: ChildProcess): Promise<void> {
  child.stdin?.end();
  await stopChild(child, 2000);
  children.delete(child);
}

/** Stops every tracked child still running. */
export async function stopAllTracked(): Promise<void> {
  await Promise.all([...children].map((c) => stopTracked(c)));
}

/**
 * Last line of defence (Linux): SIGTERM, then SIGKILL, every nats-server, service or echo worker
 * whose parent is this process and that is still alive, e.g. services a startStack() interrupted by
 * SIGINT had already spawned. Only direct children of this process, by pid.
 */
export async function stopStrayChildren(graceMs = 3000): Promise<string[]> {
  const strays: number[] = [];
  const names: string[] = [];
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return names;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await readFile(`/proc/${e}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // state ppid ...
      if (fields[0] === "Z" || Number(fields[1]) !== process.pid) continue;
      const cmd = (await readFile(`/proc/${e}/cmdline`, "utf8").catch(() => "")).split("\0").filter(Boolean);
      // only what the bench starts: nats-server, the services, the echo workers (not e.g. tsx's esbuild service)
      const ours = cmd[0]?.endsWith("nats-server") || (cmd.includes("tsx") && cmd.some((a) => /services\/\w+\/src\/main\.ts$|echo-worker\.ts$/.test(a)));
      if (!ours) continue;
      strays.push(Number(e));
      names.push(`${e} (${cmd.map((a) => a.split("/").pop()).join(" ").slice(0, 80)})`);
    } catch {
      /* gone */
    }
  }
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const pid of strays) if (alive(pid)) process.kill(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (strays.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const pid of strays) if (alive(pid)) process.kill(pid, "SIGKILL");
  return names;
}
