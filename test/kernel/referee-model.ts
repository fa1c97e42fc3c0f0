/**
 * The model half of the referee: the same experiment on the real Faultline services. One vCPU
 * touches one page whose source is silent from 0 to STALL_MS; SIGUSR1 (QEMU's SIG_IPI, handled) at
 * SIGNAL_AT_MS; the run ends at END_MS, inside the stall, so everything it reports happened before the
 * page was filled. A second run sends SIGKILL instead.
 */
import type { ApiClient } from "../../cli/src/index.ts";
import { parseScenario, type Profile, type Result, type SignalName, type Site, type WaitState } from "@faultline/shared";
import type { Measure } from "./referee-kernel.ts";

export const SIGNAL_AT_MS = 300;
export const END_MS = 1200;
export const STALL_MS = 1500;

export interface ModelCase {
  id: string;
  /** how the table names it */
  label: string;
  site: Site;
  profile: Profile;
}

export const MODEL_CASES = [
  { id: "tdp-6.13", label: "`tdp`, 6.13", site: "tdp", profile: "6.13" },
  { id: "emulated", label: "`emulated`", site: "emulated", profile: "6.13" },
  { id: "nested-map", label: "`nested-map`", site: "nested-map", profile: "6.13" },
  { id: "pfn-cache", label: "`pfn-cache`", site: "pfn-cache", profile: "6.13" },
  { id: "tdp-pre-6.2", label: "`tdp`, pre-6.2", site: "tdp", profile: "pre-6.2" },
] as const satisfies readonly ModelCase[];
export type ModelCaseId = (typeof MODEL_CASES)[number]["id"];

export function modelScenario(c: ModelCase, signal: SignalName) {
  return parseScenario({
    name: `referee-${c.id}-${signal}`,
    durationMs: END_MS,
    kernel: { profile: c.profile },
    vm: { vcpus: 1 },
    pager: { latency: { us: 200 }, stalls: [{ atMs: 0, forMs: STALL_MS }] },
    workload: { pattern: "sequential", pagesPerVcpu: 1, site: c.site },
    signals: [{ atMs: SIGNAL_AT_MS, vcpus: 0, signal }],
  });
}

/** /proc's state letter for a modelled wait: SPINNING is a running task (state R). */
const LETTER: Record<WaitState, Measure["state"]> = { TASK_INTERRUPTIBLE: "S", TASK_KILLABLE: "D", SPINNING: "R" };

/** The vCPU's view of the SIGUSR1 run (the run ended inside the stall, before any fill). */
export function usr1Measure(r: Result): Omit<Measure, "killedBeforeFill"> {
  const v = r.vcpus[0]!;
  const s = v.signals.find((x) => x.source === "plan")!;
  const outAtMs = s.latencyUs === null ? Infinity : s.sentAtMs + s.latencyUs / 1000;
  const windowMs = r.durationMs - s.sentAtMs;
  // the one UFFD_EVENT_PAGEFAULT that started the wait came before the signal
  const eventsInWindow = Math.max(0, r.pager.faultEvents - 1);
  // a spinning task posts its events while it spins: the rate is per spinning second
  const spanMs = v.spinCpuMs > 0 ? v.spinCpuMs : windowMs;
  return {
    honouredBeforeFill: s.outcome === "KVM_EXIT_INTR" && outAtMs < STALL_MS,
    state: v.blockedIn ? LETTER[v.blockedIn.waitState] : "?",
    cpuShare: v.spinCpuMs / windowMs,
    eventsInWindow,
    windowMs,
    eventsPerSec: eventsInWindow / (spanMs / 1000),
  };
}

export function killedBeforeFill(r: Result): boolean {
  const v = r.vcpus[0]!;
  const s = v.signals.find((x) => x.signal === "SIGKILL");
  return v.state === "killed" && s?.outcome === "killed" && s.latencyUs !== null && s.sentAtMs + s.latencyUs / 1000 < STALL_MS;
}

/** One run to its end (not test/helpers/stack.ts's: that module needs vitest, `npm run referee` runs without it). */
async function runToEnd(api: ApiClient, scenario: unknown): Promise<Result> {
  const done = await api.waitRun((await api.createRun(scenario)).id);
  if (done.status !== "completed" || !done.result) throw new Error(`run ${done.id} ${done.status}: ${JSON.stringify(done.error)}`);
  return done.result;
}

/** Both runs of one case on the stack behind `api`. */
export async function measureModel(api: ApiClient, c: ModelCase): Promise<Measure> {
  const [usr1, kill] = await Promise.all([runToEnd(api, modelScenario(c, "SIGUSR1")), runToEnd(api, modelScenario(c, "SIGKILL"))]);
  return { ...usr1Measure(usr1), killedBeforeFill: killedBeforeFill(kill) };
}

export async function measureAllModel(api: ApiClient): Promise<Record<ModelCaseId, Measure>> {
  const out = {} as Record<ModelCaseId, Measure>;
  for (const c of MODEL_CASES) out[c.id] = await measureModel(api, c);
  return out;
}
