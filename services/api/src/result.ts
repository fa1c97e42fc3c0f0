/**
 * Assembles the result document from the services' reports. Pure: the joins that need two services
 * live here. A vCPU is `blocked` when it has a fault outstanding and the pager has it asleep in
 * `handle_userfault` (`spinning` in a SPINNING busy loop: the live view's join, live.ts); a signal
 * still pending on a vCPU asleep in a state that signal cannot wake (TASK_KILLABLE and non-fatal)
 * is `ignored`, otherwise `pending`; outcomes the signals service
 * decided at send time (`coalesced`, `blocked`) are kept.
 *
 * A report may be missing (its service was lost, or the run was cancelled): the result is then
 * `partial`, names the missing services, and holds what the others reported; the vCPUs' states
 * and pages then come from the live view the api kept.
 */
import {
  isFatal, summarize, type Incident, type MmuReport, type PagerReport, type Result, type Scenario, type ServiceTestbed, type SignalsReport, type Testbed, type VcpuReport,
} from "@faultline/shared";
import { joinVcpu } from "./live.ts";

export interface Reports {
  vcpu?: VcpuReport;
  pager?: PagerReport;
  signals?: SignalsReport;
  mmu?: MmuReport;
}

export interface AssembleContext {
  runId: string;
  scenario: Scenario;
  t0: number;
  /** the live view: vCPU states and pages, used when the vcpu report is missing */
  live: Array<{ state: string; pagesTouched: number }>;
  /** the api's own incidents (service lost, cancellation, its NATS outages) */
  incidents: Incident[];
  missing: string[];
  /** elapsed scenario time when the run ended, ms */
  nowMs: number;
  /** what the api saw of the testbed itself */
  api?: ServiceTestbed | undefined;
}

const ZERO = summarize([]);

function emptyVcpu(ctx: AssembleContext): VcpuReport {
  const pages = ctx.scenario.workload.pagesPerVcpu;
  return {
    nowMs: ctx.nowMs,
    vcpus: ctx.live.map((v, id) => ({
      id, state: v.state as VcpuReport["vcpus"][number]["state"], inFault: null, exits: {},
      stat: { exits: 0, pf_taken: 0, pf_fast: 0, pf_fixed: 0, pf_spurious: 0, pf_emulate: 0, pf_mmio_spte_created: 0, signal_exits: 0, halt_exits: 0, halt_wakeup: 0, insn_emulation: 0 },
      blocktimeMs: 0, hwpoisonSigbus: 0, pagesTouched: v.pagesTouched, pages, doneAtMs: null, spinCpuMs: 0, error: "report missing",
    })),
    faultSlow: ZERO, faultFast: ZERO, faultAsync: ZERO,
    demandPaging: { totalGuestExecutionS: 0, perVcpuRate: 0, overallRate: 0, allDone: false },
    testbed: undefined as unknown as ServiceTestbed,
  };
}

const EMPTY_PAGER: Omit<PagerReport, "testbed"> = {
  faultEvents: 0, copies: 0, zeropages: 0, continues: 0, eexist: 0, wakes: 0, duplicateRequests: 0, resident: 0, vmmRequests: 0, removes: 0, spinRefaults: 0, removeEvents: 0, eagain: 0, lostFetches: 0,
  writeprotects: 0, poisons: 0, wakeCalls: 0, eventsByPtid: {}, waitQueueLockMs: 0, waiters: [], kworkersAsleep: 0, stalls: [],
};
const EMPTY_SIGNALS: Omit<SignalsReport, "testbed"> = { vmKilled: false, records: [], pending: [], pauses: [], shutdown: null, processSignals: [], signalToExit: ZERO };
const EMPTY_MMU: Omit<MmuReport, "testbed"> = {
  faults: 0, attempt1Hits: 0, attempt2: 0, sigpending: 0, stale: 0, noslot: 0, sptes: 0, invalidateSeq: 0, uaccess: 0, vcpuMap: 0, gpcRefresh: 0,
  memoryFaults: 0, memslotInvalid: 0, roFaults: 0, zapped: 0, hwpoison: 0, asyncPf: null, asyncPfDelivery: null, memslotOps: [],
};

export function assembleResult(ctx: AssembleContext, r: Reports): Result {
  const scenario = ctx.scenario;
  const vcpuR = r.vcpu ?? emptyVcpu(ctx);
  const pagerR = r.pager ?? (EMPTY_PAGER as PagerReport);
  const signalsR = r.signals ?? (EMPTY_SIGNALS as SignalsReport);
  const mmuR = r.mmu ?? (EMPTY_MMU as MmuReport);
  const waiters = new Map(pagerR.waiters.map((w) => [w.vcpu, w]));
  const vcpus = vcpuR.vcpus.map((v) => {
    // the same join as the live view (live.ts): blocked, spinning, or the async-PF halt
    const { state, blockedIn } = joinVcpu(v.state, v.inFault, waiters.get(v.id));
    const signals = signalsR.records
      .filter((s) => s.vcpu === v.id)
      .map((s) => {
        let outcome: Result["vcpus"][number]["signals"][number]["outcome"] = s.outcome ?? "pending";
        if (s.outcome === null && blockedIn && blockedIn.waitState !== "TASK_INTERRUPTIBLE" && !isFatal(s.signal)) outcome = "ignored";
        return { signal: s.signal, source: s.source, sentAtMs: s.sentAtMs, outcome, via: s.via, latencyUs: s.latencyUs, ...(s.testbedStalled ? { testbedStalled: true } : {}) };
      });
    const { inFault: _inFault, ...rest } = v;
    // a task still busy-looping at the end has burnt CPU since it entered the loop (its share of the wall time)
    if (blockedIn?.waitState === "SPINNING") {
      rest.spinCpuMs = Math.round((rest.spinCpuMs + (vcpuR.nowMs - blockedIn.sinceMs) * scenario.kernel.uaccessSpin.cpuShare) * 1000) / 1000;
    }
    return { ...rest, state, blockedIn, signals };
  });
  const { waiters: _w, stalls: _s, kworkersAsleep: _k, testbed: _t, ...pager } = pagerR;
  const testbed = assembleTestbed(ctx, r, vcpuR);
  return {
    scenario: scenario.name,
    runId: ctx.runId,
    durationMs: Math.round(r.vcpu ? vcpuR.nowMs : ctx.nowMs),
    profile: scenario.kernel.profile,
    vcpus,
    pause: signalsR.pauses.at(-1) ?? null,
    pauses: signalsR.pauses,
    shutdown: signalsR.shutdown,
    processSignals: signalsR.processSignals,
    pager,
    latency: { faultSlow: vcpuR.faultSlow, faultFast: vcpuR.faultFast, faultAsync: vcpuR.faultAsync, signalToExit: signalsR.signalToExit },
    asyncPf: mmuR.asyncPf,
    asyncPfDelivery: mmuR.asyncPfDelivery,
    memslotOps: mmuR.memslotOps,
    mmu: {
      memslotInvalid: mmuR.memslotInvalid, roFaults: mmuR.roFaults, zapped: mmuR.zapped, invalidateSeq: mmuR.invalidateSeq, hwpoison: mmuR.hwpoison,
      memoryFaults: mmuR.memoryFaults, uaccess: mmuR.uaccess, vcpuMap: mmuR.vcpuMap, gpcRefresh: mmuR.gpcRefresh, stale: mmuR.stale,
    },
    demandPaging: vcpuR.demandPaging,
    partial: ctx.missing.length > 0,
    missing: ctx.missing,
    testbed,
  };
}

/** Each service's loop delay, every incident on the run's clock, and a warning when the testbed was not quiet. */
function assembleTestbed(ctx: AssembleContext, r: Reports, vcpuR: VcpuReport): Testbed {
  const services: Testbed["services"] = {};
  const incidents: Testbed["incidents"] = [];
  const toRun = (i: Omit<Incident, "kind"> & { kind: string }) => ({ ...i, atMs: Math.round((i.at - ctx.t0) * 10) / 10 });
  for (const t0 of [r.vcpu?.testbed, r.mmu?.testbed, r.pager?.testbed, r.signals?.testbed, ctx.api ? { ...ctx.api, incidents: [] } : undefined]) {
    const t = t0;
    if (!t) continue;
    const { incidents: inc, ...rest } = t;
    services[t.service] = rest;
    for (const i of inc) incidents.push(omitAt(toRun(i)));
  }
  for (const i of ctx.incidents) incidents.push(omitAt(toRun(i)));
  incidents.sort((a, b) => a.atMs - b.atMs);
  return { services, incidents, warning: warning(services, incidents, vcpuR, r.signals?.signalToExit) };
}

function omitAt<T extends { at: number }>(i: T): Omit<T, "at"> {
  const { at: _at, ...rest } = i;
  return rest;
}

/**
 * The testbed's own delay is "not small" next to the fault latencies when, in a process on the fault
 * path (vcpu, mmu, pager; signals for the signal latencies), the event loop's median delay exceeds a
 * tenth of the median fault latency, or its p99 a quarter of the fault p99 (1 ms at least each); or when
 * samples overlapped a testbed stall; or when there were outages.
 */
function warning(services: Testbed["services"], incidents: Testbed["incidents"], v: VcpuReport, sig?: SignalsReport["signalToExit"]): string | null {
  const path = Object.values(services).filter((s) => s.service !== "api");
  const f = v.faultSlow.count ? v.faultSlow : v.faultFast;
  const p50Ms = f.p50Us / 1000;
  const p99Ms = f.p99Us / 1000;
  const parts: string[] = [];
  const typical = path.find((s) => s.loopDelay.p50Ms > Math.max(1, p50Ms / 10));
  if (typical) parts.push(`${typical.service} event-loop delay p50 ${typical.loopDelay.p50Ms} ms vs fault p50 ${round(p50Ms)} ms`);
  const tail = path.find((s) => s.loopDelay.p99Ms > Math.max(1, p99Ms / 4));
  if (tail) parts.push(`${tail.service} event-loop delay p99 ${tail.loopDelay.p99Ms} ms vs fault p99 ${round(p99Ms)} ms`);
  const stalled = (v.faultSlow.testbedStalled ?? 0) + (v.faultFast.testbedStalled ?? 0) + (sig?.testbedStalled ?? 0);
  if (stalled) parts.push(`${stalled} latency samples overlapped a testbed stall`);
  const outages = incidents.filter((i) => i.kind === "nats-disconnect" || i.kind === "loop-stall").length;
  if (outages) parts.push(`${outages} testbed outages (loop stalls, NATS disconnects)`);
  return parts.length ? `testbed noise: ${parts.join("; ")}` : null;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

type RunError = { code: string; message: string; service?: string } | null;

/**
 * How a run that reached its end is judged: a lost service or an error → `aborted`; a cancel →
 * `cancelled`; otherwise `completed`, unless a request the model needed ran out of time after its
 * retries (a `request-failed` incident of a service, not of the api's own controls): then the run
 * cannot claim it completed and ends `aborted` with FL_ERR_TESTBED naming the service it went to.
 */
export function verdict(r: Result, o: { lost: boolean; cancelled: boolean; error: RunError }): { status: "completed" | "aborted" | "cancelled"; error: RunError } {
  if (o.lost || o.error) return { status: "aborted", error: o.error };
  if (o.cancelled) return { status: "cancelled", error: null };
  const failed = r.testbed.incidents.find((i) => i.kind === "request-failed" && i.service !== "api");
  if (!failed) return { status: "completed", error: null };
  const service = /^fl\.vm\.[^.]+\.([a-z]+)\./.exec(failed.detail)?.[1] ?? failed.service;
  return { status: "aborted", error: { code: "FL_ERR_TESTBED", service, message: `a request was lost: ${failed.detail} (from ${failed.service})` } };
}
