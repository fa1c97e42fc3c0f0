/** Test helpers: a real stack (five service processes) on the suite's NATS, and an API client. */
import { afterAll, beforeAll, inject } from "vitest";
import { ApiClient, startStack, type RunView, type Stack } from "../../cli/src/index.ts";
import { parseScenario, type Result } from "../../shared/src/index.ts";

export interface TestStack {
  stack: Stack;
  api: ApiClient;
  stop: () => Promise<void>;
}

export async function startTestStack(): Promise<TestStack> {
  const stack = await startStack({ natsUrl: inject("natsUrl"), logLevel: process.env.FAULTLINE_TEST_LOG_LEVEL ?? "error" });
  return { stack, api: new ApiClient(stack.apiUrl), stop: () => stack.stop() };
}

/** One stack for the whole test file: started before its tests, stopped (every process) after. */
export function useTestStack(): { readonly api: ApiClient; readonly stack: Stack } {
  let t: TestStack | undefined;
  beforeAll(async () => {
    t = await startTestStack();
  });
  afterAll(async () => {
    await t?.stop();
  });
  const get = () => {
    if (!t) throw new Error("the test stack is not started");
    return t;
  };
  return {
    get api() {
      return get().api;
    },
    get stack() {
      return get().stack;
    },
  };
}

/** The seed scenario, adjusted; every test names what it changes. */
export function seedScenario(over: Record<string, unknown> = {}) {
  return parseScenario({
    name: "seed",
    durationMs: 6000,
    kernel: { profile: "6.2" },
    vm: { vcpus: 2 },
    pager: { latency: { us: 200 }, stalls: [{ atMs: 100, forMs: 2000 }] },
    workload: { pagesPerVcpu: 256 },
    signals: [{ atMs: 400, vcpus: "all", signal: "SIGUSR1" }],
    vmm: { pauseAllAtMs: 400, resumeAtMs: 2500 },
    ...over,
  });
}

export async function runToEnd(api: ApiClient, scenario: unknown): Promise<Result> {
  const r = await api.createRun(scenario);
  const done: RunView = await api.waitRun(r.id);
  if (done.status !== "completed" || !done.result) throw new Error(`run ${r.id} ${done.status}: ${JSON.stringify(done.error)}`);
  return done.result;
}
