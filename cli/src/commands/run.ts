/** `faultline run SCENARIO`: start the local stack, run one scenario through the API, print, tear down. */
import { parseScenario, parseScenarioDoc, type Result, type Scenario } from "@faultline/shared";
import { SingleBar } from "cli-progress";
import { readFile } from "node:fs/promises";
import { ApiClient, isTerminal, type RunView } from "../client.ts";
import { withStack } from "../lifecycle.ts";
import type { Stack } from "../stack.ts";
import { pageCounts, stateCounts } from "../progress.ts";
import { formatResult } from "../summary.ts";
import { resolveScenarioFiles } from "../scenario-files.ts";

export interface RunOptions {
  json: boolean;
  natsUrl?: string;
  profile?: string;
  logLevel?: string;
  readyTimeoutMs?: number;
}

/** A one-shot command does not restart services: a death mid-run ends the command at once. */
export const ONE_SHOT = { maxDeaths: 1 } as const;

export async function loadScenario(file: string, profile?: string): Promise<Scenario> {
  // pager.latency.file (empirical samples) and workload.trace.file are relative to the scenario file
  const doc = parseScenario(await resolveScenarioFiles(parseScenarioDoc(await readFile(file, "utf8")), file));
  if (profile) return parseScenario(structuredClone({ ...doc, kernel: { ...doc.kernel, profile }, name: `${doc.name}` }));
  return doc;
}

/** Runs scenarios on a stack, with a progress bar on an interactive terminal. */
export async function runOnStack(stack: Stack, scenarios: Scenario[], quiet: boolean, signal?: AbortSignal): Promise<RunView[]> {
  const api = new ApiClient(stack.apiUrl);
  const started = await Promise.all(scenarios.map((s) => api.createRun(s)));
  const showBar = !quiet && process.stderr.isTTY && !process.env.CI;
  const total = Math.max(...scenarios.map((s) => s.durationMs));
  const bar = showBar ? new SingleBar({ format: " {bar} {value}/{total} ms | {pages} | vCPUs: {states}", stream: process.stderr, hideCursor: true }) : null;
  bar?.start(total, 0, { pages: "", states: "" });
  const pagesPerVcpu = new Map(started.map((r, i) => [r.id, scenarios[i]!.workload.pagesPerVcpu]));
  const latest = new Map<string, RunView>();
  const tick = (r: RunView) => {
    latest.set(r.id, r);
    if (!bar) return;
    const elapsed = Math.max(...[...latest.values()].map((x) => x.elapsedMs ?? 0));
    const runs = [...latest.values()];
    const states = stateCounts(runs.flatMap((x) => x.vcpus));
    const pages = runs.map((x) => pageCounts(x.vcpus, pagesPerVcpu.get(x.id) ?? 0)).join(", ");
    const ended = runs.every((x) => isTerminal(x.status));
    bar.update(ended ? total : Math.max(0, Math.min(total, elapsed)), { pages, states });
  };
  try {
    return await Promise.all(started.map((r) => api.waitRun(r.id, tick, 100, signal ? { signal } : {})));
  } finally {
    bar?.stop();
  }
}

export async function runCommand(file: string, o: RunOptions): Promise<number> {
  const scenario = await loadScenario(file, o.profile);
  const stackOpts = { ...(o.natsUrl ? { natsUrl: o.natsUrl } : {}), logLevel: o.logLevel ?? "warn", readyTimeoutMs: o.readyTimeoutMs ?? 30_000, supervisor: ONE_SHOT };
  return withStack(stackOpts, async (stack, { guard, signal }) => {
    const [run] = await guard(runOnStack(stack, [scenario], o.json, signal));
    // an aborted run still has what the surviving services gathered (result.partial): print it, then fail
    if (run?.result) process.stdout.write(o.json ? JSON.stringify(run.result, null, 2) + "\n" : formatResult(run.result as Result) + "\n");
    if (!run || run.status !== "completed" || !run.result) {
      const svc = run?.error?.service ? ` (service ${run.error.service})` : "";
      process.stderr.write(`run ${run?.status ?? "failed"}: ${run?.error?.code ?? ""}${svc} ${run?.error?.message ?? "unknown error"}\n`);
      return 1;
    }
    return 0;
  });
}
