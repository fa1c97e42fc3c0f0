/** Test helpers: a real stack (five service processes) on the suite's NATS, and an API client. */
import { afterAll, beforeAll, inject } from "vitest";
import { ApiClient, ApiError, startStack, type RunView, type Stack } from "../../cli/src/index.ts";
import { parseScenario, type Result } from "@faultline/shared";

export interface TestStack {
  stack: Stack;
  api: ApiClient;
  stop: () => Promise<void>;
}

export interface TestStackOptions {
  /** @default the suite's NATS */
  natsUrl?: () => string;
  /** extra environment for the services (FAULTLINE_LIVENESS_MS, ...) */
  env?: Record<string, string>;
}

export async function startTestStack(o: TestStackOptions = {}): Promise<TestStack> {
  const stack = await startStack({
    natsUrl: o.natsUrl?.() ?? inject("natsUrl"), logLevel: process.env.FAULTLINE_TEST_LOG_LEVEL ?? "error",
    ...(o.env ? { env: o.env } : {}),
    // a chaos test kills services on purpose: restart them quickly, and do not give up on them
    supervisor: { initialDelayMs: 100, maxDeaths: 50 },
  });
  return { stack, api: new ApiClient(stack.apiUrl), stop: () => stack.stop() };
}

/** One stack for the whole test file: started before its tests, stopped (every process) after. */
export function useTestStack(o: TestStackOptions = {}): { readonly api: ApiClient; readonly stack: Stack } {
  let t: TestStack | undefined;
  beforeAll(async () => {
    t = await startTestStack(o);
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

/** The API error a call ends with (the test fails if it succeeds or fails otherwise). */
export async function httpError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected an HTTP error");
}

/** Polls the run until `ok` holds (bounded by count, not by a time window the test asserts). */
export async function waitFor(api: ApiClient, id: string, ok: (r: RunView) => boolean, what: string, tries = 1200): Promise<RunView> {
  for (let i = 0; i < tries; i++) {
    const r = await api.getRun(id);
    if (ok(r)) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`run ${id}: never ${what}`);
}

export async function runToEnd(api: ApiClient, scenario: unknown): Promise<Result> {
  const r = await api.createRun(scenario);
  const done: RunView = await api.waitRun(r.id);
  if (done.status !== "completed" || !done.result) throw new Error(`run ${r.id} ${done.status}: ${JSON.stringify(done.error)}`);
  return done.result;
}
