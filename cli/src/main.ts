/** The `faultline` command line. */
import { FaultlineError, ValidationError } from "@faultline/shared";
import { parseArgs } from "node:util";
import { demoCommand } from "./commands/demo.ts";
import { runCommand } from "./commands/run.ts";
import { upCommand } from "./commands/up.ts";

const USAGE = `usage:
  faultline run SCENARIO [--json] [--nats URL] [--profile pre-6.2|6.2|6.13] [--log-level LEVEL]
  faultline up [--port 8080] [--host 0.0.0.0] [--nats URL] [--log-level LEVEL]
  faultline demo [--json] [--nats URL]

  run    start NATS (unless --nats) and the five services, run the scenario, print a summary
         (or with --json only the result JSON on stdout; logs go to stderr), tear down
  up     start the stack and keep it running with the HTTP API on --port
  demo   the seed comparison: postcopy paused + SIGUSR1 kick on pre-6.2 and 6.2, side by side
`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: "boolean", default: false },
        nats: { type: "string" },
        profile: { type: "string" },
        port: { type: "string", default: "8080" },
        host: { type: "string", default: "0.0.0.0" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [cmd, ...rest] = positionals;
  if (v.help || !cmd) {
    process.stdout.write(USAGE);
    return v.help ? 0 : 2;
  }
  const common = { ...(v.nats ? { natsUrl: v.nats } : {}), ...(v["log-level"] ? { logLevel: v["log-level"] } : {}) };
  try {
    switch (cmd) {
      case "run":
        if (rest.length !== 1) throw new UsageError("run takes exactly one SCENARIO file");
        return await runCommand(rest[0]!, { json: v.json, ...common, ...(v.profile ? { profile: v.profile } : {}) });
      case "up":
        return await upCommand({ port: Number(v.port), host: v.host, ...common });
      case "demo":
        return await demoCommand({ json: v.json, ...common });
      default:
        throw new UsageError(`unknown command ${cmd}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof ValidationError) {
      process.stderr.write(`faultline: ${err.message}\n`);
      return 2;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT" && e.path) {
      process.stderr.write(`faultline: no such file: ${e.path}\n`);
      return 2;
    }
    process.stderr.write(`faultline: ${err instanceof FaultlineError ? `${err.code}: ` : ""}${e.message ?? String(err)}\n`);
    return 1;
  }
}

class UsageError extends Error {}
