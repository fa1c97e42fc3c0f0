/** The `faultline` command line. */
import { FaultlineError, ValidationError } from "@faultline/shared";
import { parseArgs } from "node:util";
import { parseLogLevel, parseNatsUrl, parsePort, parseProfile, parseReadyTimeout, UsageError } from "./args.ts";
import { demoCommand } from "./commands/demo.ts";
import { runCommand } from "./commands/run.ts";
import { upCommand } from "./commands/up.ts";

const USAGE = `usage:
  faultline run SCENARIO [--json] [--nats URL] [--profile PROFILE] [--log-level LEVEL] [--ready-timeout MS]
  faultline up [--port 8080] [--host 127.0.0.1] [--nats URL] [--log-level LEVEL] [--ready-timeout MS]
  faultline demo [--json] [--nats URL] [--log-level LEVEL] [--ready-timeout MS]

  run    start NATS (unless --nats) and the five services, run the scenario, print a summary
         (or with --json only the result JSON on stdout; logs go to stderr), tear down
  up     start the stack and keep it running with the HTTP API on --port (0: any free port) and
         --host (0.0.0.0 to listen on all interfaces); restarts a service that dies
  demo   the seed comparison: postcopy paused + SIGUSR1 kick on pre-6.2 and 6.2, side by side

  --ready-timeout MS   how long NATS and the services may take to be ready (default 30000)
  PROFILE: pre-6.2, 6.2, 6.13, exit-on-missing, kvm-userfault
  SIGINT / SIGTERM stop every process the command started.
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
        host: { type: "string", default: "127.0.0.1" },
        "log-level": { type: "string" },
        "ready-timeout": { type: "string", default: "30000" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  const [cmd, ...rest] = positionals;
  if (v.help || !cmd) {
    process.stdout.write(USAGE);
    return v.help ? 0 : 2;
  }
  try {
    const common = {
      ...(v.nats !== undefined ? { natsUrl: parseNatsUrl(v.nats) } : {}),
      ...(v["log-level"] !== undefined ? { logLevel: parseLogLevel(v["log-level"]) } : {}),
      readyTimeoutMs: parseReadyTimeout(v["ready-timeout"]),
    };
    switch (cmd) {
      case "run": {
        if (rest.length !== 1) throw new UsageError("run takes exactly one SCENARIO file");
        const profile = v.profile !== undefined ? parseProfile(v.profile) : undefined;
        return await runCommand(rest[0]!, { json: v.json, ...common, ...(profile ? { profile } : {}) });
      }
      case "up":
        if (rest.length) throw new UsageError(`up takes no arguments, got ${rest.join(" ")}`);
        return await upCommand({ port: parsePort(v.port), host: v.host, ...common });
      case "demo":
        if (rest.length) throw new UsageError(`demo takes no arguments, got ${rest.join(" ")}`);
        return await demoCommand({ json: v.json, ...common });
      default:
        throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message);
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

/** One line on stderr, exit 2. */
function usage(message: string): number {
  process.stderr.write(`faultline: ${message} (see faultline --help)\n`);
  return 2;
}
