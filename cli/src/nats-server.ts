/**
 * Starts a throwaway `nats-server` the way nats.js's own test harness does (nst/src/launcher.ts):
 * a config with `port: -1` (or a given port) and `ports_file_dir`, poll the ports file, probe the
 * client port. JetStream is on by default, its store inside the temp dir unless `storeDir` is given,
 * so a test can kill the server and start another on the same port with the same store.
 *
 * nats-server is not a Node process and cannot watch FAULTLINE_PARENT_PID, so a tiny `sh` watchdog
 * holds the read end of a pipe from this process: when this process dies, even by SIGKILL, the
 * kernel closes the write end, `read` sees end-of-file, and the watchdog stops the server.
 */
import { NatsServerError } from "@faultline/shared";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NatsServer {
  url: string;
  port: number;
  monitorUrl: string;
  /** the nats-server process itself (not the watchdog) */
  pid: number;
  /** JetStream's store directory, or null without JetStream */
  storeDir: string | null;
  /** SIGTERM (SIGKILL after a grace), stop the watchdog, remove the temp dir; idempotent */
  stop: () => Promise<void>;
  /** Sends `signal` and resolves once the server has exited; leaves the temp dir and store in place. */
  kill: (signal?: NodeJS.Signals) => Promise<void>;
  /** resolves when the server process exits, for whatever reason: `SIGKILL`, `exit code 1`, … */
  exited: Promise<string>;
}

export interface NatsServerOptions {
  /** the binary; @default nats-server on PATH */
  bin?: string;
  /** enable JetStream; @default true */
  jetstream?: boolean;
  /** client port; @default a free one */
  port?: number;
  /** JetStream store directory (kept on stop when given); @default `js` inside the temp dir */
  storeDir?: string;
  /** stop the server when this process dies, even by SIGKILL; @default true */
  watchdog?: boolean;
  startTimeoutMs?: number;
}

/**
 * Waits for EOF on stdin (our death or our close), then TERM, up to 3 s, then KILL, then removes the
 * server's temp dir ($2: config, ports file, a default JetStream store). An orphaned server may stay a
 * zombie (nobody reaps it), so where /proc exists a `Z` state counts as gone.
 */
const WATCHDOG = [
  'up() { kill -0 "$1" 2>/dev/null || return 1; [ -r "/proc/$1/stat" ] || return 0; case "$(cut -d")" -f2 "/proc/$1/stat")" in " Z"*) return 1;; esac; }',
  'read _; kill -TERM "$1" 2>/dev/null; n=0',
  'while up "$1" && [ $n -lt 30 ]; do sleep 0.1; n=$((n+1)); done',
  'if up "$1"; then kill -KILL "$1" 2>/dev/null; fi',
  'case "$2" in */faultline-nats-*) rm -rf "$2";; esac; exit 0',
].join("; ");

export async function startNatsServer(o: NatsServerOptions = {}): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), "faultline-nats-"));
  const jetstream = o.jetstream ?? true;
  const storeDir = jetstream ? (o.storeDir ?? join(dir, "js")) : null;
  const conf = [`port: ${o.port ?? -1}`, `http: "127.0.0.1:-1"`, `host: "127.0.0.1"`, `ports_file_dir: "${dir}"`];
  if (storeDir) {
    await mkdir(storeDir, { recursive: true });
    conf.push(`jetstream: { store_dir: "${storeDir}" }`);
  }
  await writeFile(join(dir, "server.conf"), conf.join("\n") + "\n");
  // detached: a terminal's Ctrl-C reaches the CLI only, which stops its children in order
  const child = spawn(o.bin ?? "nats-server", ["-c", join(dir, "server.conf")], { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let watchdog: ChildProcess | null = null;
  if ((o.watchdog ?? true) && child.pid) {
    watchdog = spawn("sh", ["-c", WATCHDOG, "faultline-nats-watchdog", String(child.pid), dir], { stdio: ["pipe", "ignore", "ignore"], detached: true });
    watchdog.on("error", () => undefined);
    watchdog.stdin?.on("error", () => undefined);
  }
  const exitedHow = new Promise<string>((resolve) => child.once("exit", (code, signal) => resolve(signal ?? `exit code ${code}`)));
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<Error>((resolve) => {
    child.once("error", (err: NodeJS.ErrnoException) =>
      resolve(err.code === "ENOENT" ? new NatsServerError("nats-server not found on PATH (apt-get install -y nats-server, or set NATS_URL)", err) : err),
    );
    child.once("exit", (code, signal) => {
      watchdog?.kill("SIGKILL");
      resolve(new NatsServerError(`nats-server exited with ${signal ?? code}: ${stderr.trim()}`));
    });
  });
  const kill = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill(signal);
      await gone;
    }
    watchdog?.kill("SIGKILL");
  };
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      await stopChild(child);
      watchdog?.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    })());
  try {
    const ports = await Promise.race([readPorts(dir, child, o.startTimeoutMs ?? 10_000), exited.then((e) => Promise.reject(e))]);
    await probe(ports.port);
    return {
      url: `nats://127.0.0.1:${ports.port}`,
      port: ports.port,
      monitorUrl: `http://127.0.0.1:${ports.monitor}`,
      pid: child.pid ?? -1,
      storeDir,
      stop,
      kill,
      exited: exitedHow,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function readPorts(dir: string, child: ChildProcess, timeoutMs: number): Promise<{ port: number; monitor: number }> {
  const file = join(dir, `nats-server_${child.pid}.ports`);
  const deadline = Date.now() + timeoutMs;
  // stop looking once the server is gone (its exit is reported by the caller's race)
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      const j = JSON.parse(await readFile(file, "utf8")) as { nats: string[]; monitoring: string[] };
      const port = Number(j.nats[0]?.split(":").pop());
      const monitor = Number(j.monitoring[0]?.split(":").pop());
      if (port > 0) return { port, monitor };
    } catch {
      /* not written yet */
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new NatsServerError(`nats-server did not write its ports file within ${timeoutMs} ms`);
}

function probe(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, "127.0.0.1", () => {
      s.end();
      resolve();
    });
    s.once("error", (e) => reject(new NatsServerError(`nats-server port ${port} not reachable`, e)));
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await gone;
  clearTimeout(t);
}
