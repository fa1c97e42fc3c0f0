/**
 * Starts a throwaway `nats-server` the way nats.js's own test harness does (nst/src/launcher.ts):
 * a config with `port: -1` and `ports_file_dir`, poll the ports file, probe the client port.
 */
import { NatsServerError } from "@faultline/shared";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NatsServer {
  url: string;
  monitorUrl: string;
  pid: number;
  stop: () => Promise<void>;
}

export interface NatsServerOptions {
  /** the binary; @default nats-server on PATH */
  bin?: string;
  /** enable JetStream with a temp store dir; @default false */
  jetstream?: boolean;
  /** client port; @default a free one */
  port?: number;
  /** JetStream store dir, kept on stop (a restart with the same dir finds the data); @default a temp dir */
  storeDir?: string;
  startTimeoutMs?: number;
}

export async function startNatsServer(o: NatsServerOptions = {}): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), "faultline-nats-"));
  const conf = [`port: ${o.port ?? -1}`, `http: "127.0.0.1:-1"`, `host: "127.0.0.1"`, `ports_file_dir: "${dir}"`];
  if (o.jetstream) conf.push(`jetstream: { store_dir: "${o.storeDir ?? join(dir, "js")}" }`);
  await writeFile(join(dir, "server.conf"), conf.join("\n") + "\n");
  const child = spawn(o.bin ?? "nats-server", ["-c", join(dir, "server.conf")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<Error>((resolve) => {
    child.once("error", (err: NodeJS.ErrnoException) =>
      resolve(err.code === "ENOENT" ? new NatsServerError("nats-server not found on PATH (apt-get install -y nats-server, or set NATS_URL)", err) : err),
    );
    child.once("exit", (code) => resolve(new NatsServerError(`nats-server exited with ${code}: ${stderr.trim()}`)));
  });
  const cleanup = async () => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ports = await Promise.race([readPorts(dir, child, o.startTimeoutMs ?? 10_000), exited.then((e) => Promise.reject(e))]);
    await probe(ports.port);
    return {
      url: `nats://127.0.0.1:${ports.port}`,
      monitorUrl: `http://127.0.0.1:${ports.monitor}`,
      pid: child.pid ?? -1,
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function readPorts(dir: string, child: ChildProcess, timeoutMs: number): Promise<{ port: number; monitor: number }> {
  const file = join(dir, `nats-server_${child.pid}.ports`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
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
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await gone;
  clearTimeout(t);
}
