/**
 * bench/fault-path: how far the Faultline slow-fault path is from raw NATS request/reply.
 *
 *   npm run bench [-- --quick] [-- --json] [-- --nats-url nats://host:4222]
 *
 * 1. starts a nats-server (unless --nats-url), 2. measures the raw baseline between separate Node
 * processes (raw.ts), 3. starts the Faultline stack on the same server and runs zero-delay
 * scenarios through its API (faultline.ts), 4. prints the comparison (report.ts). Every child
 * process and the nats-server are stopped at the end, on error, and on SIGINT/SIGTERM.
 */
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { ApiClient } from "../../cli/src/client.ts";
import { startNatsServer, type NatsServer } from "../../cli/src/nats-server.ts";
import { startStack, type Stack } from "../../cli/src/stack.ts";
import { runFaultline } from "./faultline.ts";
import { runRaw } from "./raw.ts";
import { comparisonRows, formatReport } from "./report.ts";
import { stopAllTracked, stopStrayChildren } from "./stats.ts";

const USAGE = `usage: npm run bench -- [options]
  --quick              small counts (a smoke run, ~10 s; full run ~25 s)
  --json               print every number as JSON on stdout instead of the table
  --nats-url <url>     use this nats-server instead of starting one
  --requests <n>       sequential raw requests per latency figure (default 2000, quick 300)
  --window-ms <ms>     raw throughput window per concurrency (default 2000, quick 500)
  --target-s <s>       target guest time per Faultline demand-paging run (default 2, quick 0.5)
  --log-level <lvl>    Faultline services' log level (default warn)
  -h, --help`;

function parseFlags() {
  try {
    return parseArgs({
      options: {
        quick: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        "nats-url": { type: "string" },
        requests: { type: "string" },
        "window-ms": { type: "string" },
        "target-s": { type: "string" },
        "log-level": { type: "string", default: "warn" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    process.exit(2);
  }
}
const args = parseFlags();

if (args.help) {
  process.stdout.write(USAGE + "\n");
  process.exit(0);
}

function numArg(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${v}`);
  return n;
}

const quick = args.quick;
const cfg = {
  requests: Math.round(numArg("requests", args.requests, quick ? 300 : 2000)),
  warmup: quick ? 100 : 1000,
  windowMs: numArg("window-ms", args["window-ms"], quick ? 500 : 2000),
  concurrency: [1, 4, 16],
  latencyPages: quick ? 500 : 2000,
  targetS: numArg("target-s", args["target-s"], quick ? 0.5 : 2),
  warmupRuns: quick
    ? [{ vcpus: 1, pagesPerVcpu: 300 }, { vcpus: 16, pagesPerVcpu: 30 }]
    : [{ vcpus: 1, pagesPerVcpu: 6000 }, { vcpus: 16, pagesPerVcpu: 250 }],
};

const t0 = performance.now();
/** set on SIGINT/SIGTERM: whatever main() still does fails as the children go away; say nothing more */
let aborting = false;
const say = (line: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);
const log = (line: string) => void (aborting || say(line));

let nats: NatsServer | null = null;
let stack: Stack | null = null;
/** startStack() in flight: its children are not visible until it resolves */
let stackStarting: Promise<Stack> | null = null;
let cleaning: Promise<void> | null = null;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    if (!stack && stackStarting) {
      const timeout = new Promise<null>((r) => setTimeout(() => r(null), 5000).unref());
      stack = await Promise.race([stackStarting.catch(() => null), timeout]);
    }
    const s = stack;
    stack = null;
    await Promise.all([s?.stop().catch((e: unknown) => log(`stack stop failed: ${String(e)}`)), stopAllTracked()]);
    const n = nats;
    nats = null;
    await n?.stop().catch((e: unknown) => log(`nats-server stop failed: ${String(e)}`));
    // anything still running that this process started (a stack whose start-up was interrupted)
    const strays = await stopStrayChildren().catch(() => []);
    if (strays.length) say(`stopped ${strays.length} stray child process(es): ${strays.join(", ")}`);
  })();
  return cleaning;
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    say(`${sig}: stopping every child process`);
    aborting = true;
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  const loadBefore = loadavg().map((x) => Math.round(x * 100) / 100);
  let natsUrl = args["nats-url"];
  if (!natsUrl) {
    nats = await startNatsServer();
    natsUrl = nats.url;
    log(`nats-server ${nats.url} (pid ${nats.pid})`);
  } else log(`using nats-server ${natsUrl}`);

  const raw = await runRaw(natsUrl, { requests: cfg.requests, warmup: cfg.warmup, throughputMs: cfg.windowMs, concurrency: cfg.concurrency, log });

  log("faultline: starting the stack (vcpu, mmu, pager, signals, api) on the same nats-server");
  stackStarting = startStack({ natsUrl, logLevel: args["log-level"] });
  stack = await stackStarting;
  stackStarting = null;
  log(`faultline: API at ${stack.apiUrl}`);
  const api = new ApiClient(stack.apiUrl);
  const tp1 = raw.twoHopThroughput.find((p) => p.loops === 1)?.reqPerS ?? 1;
  const fl = await runFaultline(api, {
    latencyPages: cfg.latencyPages,
    targetS: cfg.targetS,
    vcpus: cfg.concurrency,
    warmup: cfg.warmupRuns,
    log,
    // 1-vCPU rate from the latency run, scaled by how the raw chain scales with concurrency
    estimateRate: (n, lat) => {
      const rate1 = lat.faultSlow?.meanUs ? 1e6 / lat.faultSlow.meanUs : 1000;
      const tpN = raw.twoHopThroughput.find((p) => p.loops === n)?.reqPerS ?? tp1;
      return rate1 * Math.max(1, tpN / tp1);
    },
  });
  await cleanup();

  const rows = comparisonRows(raw, fl);
  const issues = [...fl.warmup, fl.latency, ...fl.rates].flatMap((r) => r.issues.map((i) => `${r.label}: ${i}`));
  const totalS = Math.round((performance.now() - t0) / 100) / 10;
  // other work on the machine skews every figure: say how busy it was
  const host = { cpus: cpus().length, loadavgBefore: loadBefore, loadavgAfter: loadavg().map((x) => Math.round(x * 100) / 100) };
  if (args.json) {
    const doc = { quick, config: cfg, natsUrl, node: process.version, host, totalS, comparison: rows, raw, faultline: fl, issues };
    process.stdout.write(JSON.stringify(doc, null, 2) + "\n");
  } else {
    process.stdout.write(formatReport(raw, fl, rows) + "\n");
    process.stdout.write(
      `\n(${quick ? "quick" : "full"} run, node ${process.version}, ${host.cpus} CPUs, ` +
        `load average ${host.loadavgBefore.join("/")} before, ${host.loadavgAfter.join("/")} after; ${totalS} s total)\n`,
    );
  }
  if (issues.length) log(`${issues.length} issue(s) in Faultline runs; exiting 1`);
  return issues.length ? 1 : 0;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(aborting ? 130 : code);
  })
  .catch(async (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await cleanup();
    process.exit(aborting ? 130 : 2);
  });
