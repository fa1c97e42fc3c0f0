/**
 * The whole Faultline stack on this machine: a nats-server child (unless a URL is given) and the
 * five services, each its own OS process, configured through the same environment variables that
 * docker-compose.yml sets, and kept running by a Supervisor. Resolves once every service answers
 * its ping over NATS.
 *
 * No process is left behind: `stop()` ends every child; if this process dies without calling it,
 * the services see FAULTLINE_PARENT_PID vanish (watchParent) and nats-server's watchdog sees its
 * pipe close.
 */
import { FaultlineError, PingReply, SERVICES, closeNats, connectNats, request, subjects, type ServiceName } from "@faultline/shared";
import type { NatsConnection } from "@nats-io/transport-node";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { startNatsServer, type NatsServer } from "./nats-server.ts";
import { Supervisor, type GiveUp, type SupervisorPolicy } from "./supervisor.ts";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The command that starts a service; the same entry points the Dockerfile runs. */
export function serviceCommand(svc: ServiceName): string[] {
  return ["--import", "tsx", join(REPO_ROOT, "services", svc, "src", "main.ts")];
}

export interface StackOptions {
  natsUrl?: string;
  /** @default a free port (also for 0) */
  apiPort?: number;
  /** @default 127.0.0.1 */
  apiHost?: string;
  logLevel?: string;
  /** where the services' log lines go; @default process.stderr */
  logSink?: Writable;
  /** NATS reachable and every service answering its ping within this; @default 30000 */
  readyTimeoutMs?: number;
  /** restart policy of the services; @default DEFAULT_POLICY */
  supervisor?: Partial<SupervisorPolicy>;
  /** extra environment for every service (e.g. FAULTLINE_LIVENESS_MS) */
  env?: Record<string, string>;
  /** aborting it stops the start-up (and everything started so far) */
  signal?: AbortSignal;
}

export interface Stack {
  natsUrl: string;
  apiUrl: string;
  /** the nats-server this stack started; null when given a URL */
  nats: NatsServer | null;
  supervisor: Supervisor;
  /** the current child of each service (a new one after each restart) */
  readonly services: Map<ServiceName, ChildProcess>;
  child: (svc: ServiceName) => ChildProcess;
  /** the pid of the service's running process; undefined while it awaits a restart */
  pid: (svc: ServiceName) => number | undefined;
  /** resolves if the supervisor gives up on a service (everything is then being stopped) */
  gaveUp: Promise<GiveUp>;
  /** stops every service, then nats-server; idempotent */
  stop: () => Promise<void>;
}

/** The stack could not start: NATS unreachable, a service died or was not ready in time. */
export class StackStartError extends FaultlineError {
  constructor(code: "FL_ERR_NATS_UNREACHABLE" | "FL_ERR_STACK_START" | "FL_ERR_INTERRUPTED", message: string, cause?: unknown) {
    super(code, message, cause);
    this.name = "StackStartError";
  }
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

/** Where a local client reaches a server bound to `host`. */
function reachableHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const readyTimeoutMs = o.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + readyTimeoutMs;
  // not armed until every service is ready: a service that dies during start-up fails the start
  const sup = new Supervisor(o.supervisor, { armed: false });
  const instances = new Map<ServiceName, string>();
  let nats: NatsServer | null = null;
  // last resort if this process exits without stop() (an uncaught error): a synchronous SIGTERM
  const onExit = () => {
    for (const n of sup.names()) sup.child(n)?.kill("SIGTERM");
    try {
      if (nats) process.kill(nats.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
  };
  process.on("exit", onExit);
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      await sup.stop();
      await nats?.stop();
      process.off("exit", onExit);
    })());
  const abort = () => {
    if (o.signal?.aborted) throw new StackStartError("FL_ERR_INTERRUPTED", `start-up interrupted (${String(o.signal.reason)})`);
  };
  try {
    if (!o.natsUrl) nats = await startNatsServer({ startTimeoutMs: readyTimeoutMs });
    abort();
    const natsUrl = o.natsUrl ?? nats!.url;
    const nc = await connectWithin(natsUrl, deadline, readyTimeoutMs, o.signal);
    try {
      const apiPort = o.apiPort || (await freePort());
      const apiHost = o.apiHost ?? "127.0.0.1";
      const sink = o.logSink ?? process.stderr;
      // unique per process, also when one launcher starts two stacks and across restarts: a VM's owner is addressed by it
      const tag = randomBytes(3).toString("hex");
      const spawns = new Map<ServiceName, number>();
      for (const svc of SERVICES) {
        const env = {
          ...process.env,
          ...o.env,
          NATS_URL: natsUrl,
          FAULTLINE_LOG_LEVEL: o.logLevel ?? "warn",
          FAULTLINE_API_PORT: String(apiPort),
          FAULTLINE_API_HOST: apiHost,
          FAULTLINE_PARENT_PID: String(process.pid),
        };
        sup.add(svc, () => {
          const n = (spawns.get(svc) ?? 0) + 1;
          spawns.set(svc, n);
          const instance = `${svc}-${process.pid}-${tag}-${n}`;
          instances.set(svc, instance);
          // detached: a terminal's Ctrl-C reaches the CLI only, which stops its children in order
          const child = spawn(process.execPath, serviceCommand(svc), { env: { ...env, FAULTLINE_INSTANCE: instance }, stdio: ["ignore", "pipe", "pipe"], cwd: REPO_ROOT, detached: true });
          child.stdout?.on("data", (d: Buffer) => sink.write(d));
          child.stderr?.on("data", (d: Buffer) => sink.write(d));
          return child;
        });
      }
      await waitReady(nc, sup, instances, deadline, readyTimeoutMs, o.signal);
      sup.arm();
      const stack: Stack = {
        natsUrl,
        apiUrl: `http://${reachableHost(apiHost)}:${apiPort}`,
        nats,
        supervisor: sup,
        get services() {
          return new Map(SERVICES.map((s) => [s, sup.child(s)!] as const));
        },
        child: (svc) => sup.child(svc)!,
        pid: (svc) => sup.pid(svc),
        gaveUp: Promise.race([sup.gaveUp, natsDeath(nats, sup)]),
        stop,
      };
      return stack;
    } finally {
      await closeNats(nc);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The stack's own nats-server is not restarted: if it dies, the stack gives up (never resolves without one). */
function natsDeath(nats: NatsServer | null, sup: Supervisor): Promise<GiveUp> {
  if (!nats) return new Promise(() => undefined);
  return new Promise((resolve) => {
    void nats.exited.then(async (exit) => {
      if (sup.stopping) return;
      await sup.stop();
      resolve({ name: "nats-server", exit, deaths: 1, windowMs: 0, message: `nats-server died (${exit}); giving up` });
    });
  });
}

/** Connects to NATS, retrying until the deadline: `--nats URL` may point at nothing. */
async function connectWithin(url: string, deadline: number, timeoutMs: number, signal?: AbortSignal): Promise<NatsConnection> {
  let last: unknown;
  do {
    if (signal?.aborted) throw new StackStartError("FL_ERR_INTERRUPTED", `start-up interrupted (${String(signal.reason)})`);
    try {
      // a black-holed address would hang until the client's own connect timeout: bound it here
      const attempt = connectNats({ servers: url, name: "faultline-cli-ready" });
      const left = Math.max(250, deadline - Date.now());
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no connection within ${left} ms`)), left)));
      try {
        return await Promise.race([attempt, timeout]);
      } catch (err) {
        void attempt.then((nc) => nc.close(), () => undefined);
        throw err;
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      last = err;
      await sleep(250);
    }
  } while (Date.now() < deadline);
  const why = last instanceof Error ? last.message : String(last);
  throw new StackStartError("FL_ERR_NATS_UNREACHABLE", `NATS at ${url} unreachable for ${timeoutMs} ms (${why})`, last);
}

async function waitReady(nc: NatsConnection, sup: Supervisor, instances: Map<ServiceName, string>, deadline: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  // during start-up an exit is fatal: a service that cannot start will not start on a retry either
  let died: string | null = null;
  const onExit = (name: string, exit: string) => (died ??= `service ${name} exited (${exit}) during start-up`);
  sup.on("startupExit", onExit);
  try {
    const pending = new Set(sup.names() as ServiceName[]);
    while (pending.size && Date.now() < deadline) {
      if (died) throw new StackStartError("FL_ERR_STACK_START", died);
      if (signal?.aborted) throw new StackStartError("FL_ERR_INTERRUPTED", `start-up interrupted (${String(signal.reason)})`);
      await Promise.all(
        [...pending].map(async (svc) => {
          try {
            // this stack's own process (another stack on the same NATS answers the service-wide ping too)
            await request(nc, subjects.pingInstance(svc, instances.get(svc)!), {}, PingReply, { timeoutMs: 500, retry: false });
            pending.delete(svc);
          } catch {
            /* not up yet */
          }
        }),
      );
      if (pending.size) await sleep(100);
    }
    if (died) throw new StackStartError("FL_ERR_STACK_START", died);
    if (pending.size) throw new StackStartError("FL_ERR_STACK_START", `services not ready after ${timeoutMs} ms: ${[...pending].join(", ")}`);
  } finally {
    sup.off("startupExit", onExit);
  }
}
