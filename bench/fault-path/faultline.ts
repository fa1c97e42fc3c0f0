/**
 * The Faultline side: scenarios run through the control API of a stack on the bench's nats-server,
 * with a zero-delay page source (pager latency 0 µs), no stalls, no signals, no pauses, so every
 * guest page costs exactly one slow fault: vcpu → mmu (fault) → pager (gup) → replies, plus the
 * pager's `resident` publish.
 */
import { ApiClient } from "../../cli/src/client.ts";
import { round1 } from "./stats.ts";

const PAGE = 4096;

export interface FaultlineRun {
  label: string;
  vcpus: number;
  pagesPerVcpu: number;
  runId: string | null;
  status: string;
  /** the run failed or its result is inconsistent: what exactly */
  issues: string[];
  wallMs: number;
  durationMs: number | null;
  totalGuestExecutionS: number | null;
  overallRate: number | null;
  perVcpuRate: number | null;
  allDone: boolean | null;
  pagesTouched: number | null;
  faultSlow: { count: number; meanUs: number; p50Us: number; p90Us: number; p99Us: number; maxUs: number } | null;
}

export function scenario(label: string, vcpus: number, pagesPerVcpu: number) {
  return {
    name: `bench-fault-path-${label}`,
    durationMs: 60_000,
    endWhenDone: true,
    // one memslot exactly as large as the vCPUs' partitions (the 64 MiB default is too small for 16 x 2000 pages)
    vm: { vcpus, memslots: [{ slot: 0, gpa: 0, size: vcpus * pagesPerVcpu * PAGE }] },
    pager: { latency: { us: 0 }, stalls: [] },
    workload: { pattern: "sequential", pagesPerVcpu },
    signals: [],
  };
}

/** Runs one scenario to its end; never throws: a failure is reported in `status` and `issues`. */
export async function runScenario(api: ApiClient, label: string, vcpus: number, pagesPerVcpu: number): Promise<FaultlineRun> {
  const out: FaultlineRun = {
    label, vcpus, pagesPerVcpu, runId: null, status: "not-started", issues: [], wallMs: 0, durationMs: null,
    totalGuestExecutionS: null, overallRate: null, perVcpuRate: null, allDone: null, pagesTouched: null, faultSlow: null,
  };
  const t = performance.now();
  try {
    const created = await api.createRun(scenario(label, vcpus, pagesPerVcpu));
    out.runId = created.id;
    const done = await api.waitRun(created.id, undefined, 100);
    out.status = done.status;
    if (done.status !== "completed" || !done.result) {
      out.issues.push(`run ${created.id} ended ${done.status}${done.error ? `: ${done.error.code} ${done.error.message}` : " without a result"}`);
      return out;
    }
    const r = done.result;
    const dp = r.demandPaging;
    const fs = r.latency.faultSlow;
    const expected = vcpus * pagesPerVcpu;
    const touched = r.vcpus.reduce((n, v) => n + v.pagesTouched, 0);
    // the vcpu service sums every slow fault's duration into blocktimeMs: an exact mean
    const slowMs = r.vcpus.reduce((n, v) => n + v.blocktimeMs, 0);
    Object.assign(out, {
      durationMs: r.durationMs,
      totalGuestExecutionS: dp.totalGuestExecutionS,
      overallRate: dp.overallRate,
      perVcpuRate: dp.perVcpuRate,
      allDone: dp.allDone,
      pagesTouched: touched,
      faultSlow: { count: fs.count, meanUs: fs.count ? round1((slowMs * 1000) / fs.count) : 0, p50Us: fs.p50Us, p90Us: fs.p90Us, p99Us: fs.p99Us, maxUs: fs.maxUs },
    });
    if (!dp.allDone) out.issues.push(`demandPaging.allDone is false (durationMs ${r.durationMs})`);
    if (touched !== expected) out.issues.push(`pagesTouched ${touched} != ${expected} expected`);
    if (fs.count !== expected) out.issues.push(`faultSlow.count ${fs.count} != ${expected} pages (each page should fault once, slowly)`);
    for (const v of r.vcpus) {
      if (v.error) out.issues.push(`vcpu ${v.id} error: ${v.error}`);
      if (v.state !== "done") out.issues.push(`vcpu ${v.id} ended in state ${v.state}`);
    }
    if (r.pager.duplicateRequests || r.pager.eexist) {
      out.issues.push(`pager duplicateRequests ${r.pager.duplicateRequests}, eexist ${r.pager.eexist} (expected 0 with disjoint partitions)`);
    }
  } catch (err) {
    out.status = "error";
    out.issues.push(`API call failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    out.wallMs = Math.round(performance.now() - t);
  }
  return out;
}

export interface FaultlineOptions {
  /** pages for the 1-vCPU latency run */
  latencyPages: number;
  /** target length of each demand-paging run */
  targetS: number;
  vcpus: number[];
  /** pages/s to expect at N vCPUs, used to size pagesPerVcpu; from the latency run and the raw curve */
  estimateRate: (vcpus: number, latencyRun: FaultlineRun) => number;
  /** discarded runs first, so the services' JIT is warm (the raw side gets its warm-up too) */
  warmup: Array<{ vcpus: number; pagesPerVcpu: number }>;
  log: (line: string) => void;
}

export interface FaultlineResults {
  warmup: FaultlineRun[];
  latency: FaultlineRun;
  rates: FaultlineRun[];
}

export async function runFaultline(api: ApiClient, o: FaultlineOptions): Promise<FaultlineResults> {
  const describe = (r: FaultlineRun) =>
    `${r.status}, ${r.pagesTouched ?? "?"} pages in ${r.totalGuestExecutionS ?? "?"} s guest time (${r.wallMs} ms wall)` +
    (r.issues.length ? `; ISSUES: ${r.issues.join("; ")}` : "");

  const warmup: FaultlineRun[] = [];
  for (const [i, w] of o.warmup.entries()) {
    o.log(`faultline: warm-up run, ${w.vcpus} vCPU(s) x ${w.pagesPerVcpu} pages (discarded)`);
    const r = await runScenario(api, `warmup-${i + 1}`, w.vcpus, w.pagesPerVcpu);
    o.log(`faultline:   ${describe(r)}`);
    warmup.push(r);
  }

  o.log(`faultline: slow-fault round trip, 1 vCPU x ${o.latencyPages} pages, pager latency 0 µs`);
  const latency = await runScenario(api, "latency", 1, o.latencyPages);
  o.log(`faultline:   ${describe(latency)}`);

  const rates: FaultlineRun[] = [];
  for (const n of o.vcpus) {
    const est = o.estimateRate(n, latency);
    const pages = Math.max(100, Math.min(100_000, Math.round((o.targetS * est) / n)));
    o.log(`faultline: demand-paging rate, ${n} vCPU(s) x ${pages} pages (sized for ~${o.targetS} s at ~${Math.round(est)} pages/s)`);
    const r = await runScenario(api, `rate-${n}`, n, pages);
    o.log(`faultline:   ${describe(r)}`);
    rates.push(r);
  }
  return { warmup, latency, rates };
}
