/**
 * The whole Faultline stack on this machine: a nats-server child (unless a URL is given) and the
 * five services, each its own OS process, configured through the same environment variables that
 * docker-compose.yml sets. Resolves once every service answers its ping over NATS.
 */
import { PingReply, SERVICES, closeNats, connectNats, request, subjects, type ServiceName } from "@faultline/shared";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { startNatsServer, stopChild, type NatsServer } from "./nats-server.ts";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The command that starts a service; the same entry points the Dockerfile runs. */
export function serviceCommand(svc: ServiceName): string[] {
  return ["--import", "tsx", join(REPO_ROOT, "services", svc, "src", "main.ts")];
}

export interface StackOptions {
  natsUrl?: string;
  /** @default a free port */
  apiPort?: number;
  apiHost?: string;
  logLevel?: string;
  /** where the services' log lines go; @default process.stderr */
  logSink?: Writable;
  readyTimeoutMs?: number;
}

export interface Stack {
  natsUrl: string;
  apiUrl: string;
  services: Map<ServiceName, ChildProcess>;
  stop: () => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  let nats: NatsServer | null = null;
  const services = new Map<ServiceName, ChildProcess>();
  const stop = async () => {
    await Promise.all([...services.values()].map((c) => stopChild(c)));
    await nats?.stop();
  };
  try {
    if (!o.natsUrl) nats = await startNatsServer();
    const natsUrl = o.natsUrl ?? nats!.url;
    const apiPort = o.apiPort ?? (await freePort());
    const sink = o.logSink ?? process.stderr;
    // unique per process, also when one launcher starts two stacks: a VM's owner is addressed by it
    const tag = randomBytes(3).toString("hex");
    const instances = new Map(SERVICES.map((svc) => [svc, `${svc}-${process.pid}-${tag}`] as const));
    for (const svc of SERVICES) {
      const env = {
        ...process.env,
        NATS_URL: natsUrl,
        FAULTLINE_LOG_LEVEL: o.logLevel ?? "warn",
        FAULTLINE_API_PORT: String(apiPort),
        FAULTLINE_API_HOST: o.apiHost ?? "127.0.0.1",
        FAULTLINE_INSTANCE: instances.get(svc)!,
      };
      const child = spawn(process.execPath, serviceCommand(svc), { env, stdio: ["ignore", "pipe", "pipe"], cwd: REPO_ROOT });
      child.stdout?.on("data", (d: Buffer) => sink.write(d));
      child.stderr?.on("data", (d: Buffer) => sink.write(d));
      services.set(svc, child);
    }
    await waitReady(natsUrl, services, instances, o.readyTimeoutMs ?? 30_000);
    return { natsUrl, apiUrl: `http://127.0.0.1:${apiPort}`, services, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitReady(natsUrl: string, services: Map<ServiceName, ChildProcess>, instances: Map<ServiceName, string>, timeoutMs: number): Promise<void> {
  const nc = await connectNats({ servers: natsUrl, name: "faultline-cli-ready" });
  const deadline = Date.now() + timeoutMs;
  try {
    const pending = new Set(services.keys());
    while (pending.size && Date.now() < deadline) {
      for (const [svc, child] of services) {
        if (child.exitCode !== null) throw new Error(`service ${svc} exited with ${child.exitCode} during start-up`);
      }
      await Promise.all(
        [...pending].map(async (svc) => {
          try {
            await request(nc, subjects.pingInstance(svc, instances.get(svc)!), {}, PingReply, { timeoutMs: 500, retry: false });
            pending.delete(svc);
          } catch {
            /* not up yet */
          }
        }),
      );
      if (pending.size) await new Promise((r) => setTimeout(r, 100));
    }
    if (pending.size) throw new Error(`services not ready after ${timeoutMs} ms: ${[...pending].join(", ")}`);
  } finally {
    await closeNats(nc);
  }
}
