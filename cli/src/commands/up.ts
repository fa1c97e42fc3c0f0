/** `faultline up`: start the stack and keep it running, with the API on a port, until Ctrl-C. */
import { Writable } from "node:stream";
import { build as pretty } from "pino-pretty";
import { startStack } from "../stack.ts";

export async function upCommand(o: { natsUrl?: string; port: number; host: string; logLevel?: string }): Promise<number> {
  // pretty logs only for an interactive terminal; JSON lines otherwise
  const sink: Writable = process.stderr.isTTY ? pretty({ colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname", destination: 2 }) : process.stderr;
  const stack = await startStack({
    ...(o.natsUrl ? { natsUrl: o.natsUrl } : {}),
    apiPort: o.port,
    apiHost: o.host,
    logLevel: o.logLevel ?? "info",
    logSink: sink,
  });
  process.stdout.write(`Faultline is up.\n  API:  ${stack.apiUrl.replace("127.0.0.1", o.host === "0.0.0.0" ? "localhost" : o.host)}  (OpenAPI at /docs)\n  NATS: ${stack.natsUrl}\nCtrl-C to stop.\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
    for (const [svc, child] of stack.services) {
      child.once("exit", (code) => {
        process.stderr.write(`service ${svc} exited (${code}); stopping\n`);
        resolve();
      });
    }
  });
  await stack.stop();
  return 0;
}
