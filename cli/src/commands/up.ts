/**
 * `faultline up`: start the stack and keep it running, with the API on a port, until SIGINT or
 * SIGTERM. The supervisor restarts a service that dies; if one keeps dying, `up` stops everything
 * and exits 1 with one line naming it.
 */
import { Writable } from "node:stream";
import { build as pretty } from "pino-pretty";
import { Interrupted, withStack } from "../lifecycle.ts";

export interface UpOptions {
  natsUrl?: string;
  /** 0: any free port */
  port: number;
  host: string;
  logLevel?: string;
  readyTimeoutMs?: number;
}

export async function upCommand(o: UpOptions): Promise<number> {
  // pretty logs only for an interactive terminal; JSON lines otherwise
  const sink: Writable = process.stderr.isTTY ? pretty({ colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname", destination: 2 }) : process.stderr;
  const stackOpts = {
    ...(o.natsUrl ? { natsUrl: o.natsUrl } : {}),
    apiPort: o.port,
    apiHost: o.host,
    logLevel: o.logLevel ?? "info",
    logSink: sink,
    readyTimeoutMs: o.readyTimeoutMs ?? 30_000,
  };
  return withStack(stackOpts, async (stack, { guard }) => {
    const api = o.host === "0.0.0.0" ? stack.apiUrl.replace("127.0.0.1", "localhost") : stack.apiUrl;
    process.stdout.write(`Faultline is up.\n  API:  ${api}  (OpenAPI at /docs)\n  NATS: ${stack.natsUrl}\nCtrl-C to stop.\n`);
    try {
      await guard(new Promise<never>(() => undefined));
    } catch (err) {
      // Ctrl-C or SIGTERM is how `up` is meant to end
      if (err instanceof Interrupted) {
        process.stderr.write(`faultline: ${err.signal}; stopping\n`);
        return 0;
      }
      throw err;
    }
    return 0;
  });
}
