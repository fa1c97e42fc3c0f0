/** Human-readable summaries of result documents: one run, or two side by side. */
import type { Result, VcpuResult } from "@faultline/shared";

const ms = (us: number | null | undefined) => (us === null || us === undefined ? "never" : us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} µs`);
const at = (x: number | null | undefined) => (x === null || x === undefined ? "never" : `${Math.round(x)} ms`);

function exits(v: VcpuResult): string {
  const e = Object.entries(v.exits).map(([k, n]) => `${k}×${n}`);
  return e.length ? e.join(" ") : "none";
}

/** The first signal the scenario or the API sent to the vCPU (pause kicks are summarised separately). */
function firstSignal(v: VcpuResult) {
  return v.signals.find((s) => s.source !== "pause-kick" && s.outcome !== "coalesced") ?? v.signals.find((s) => s.source !== "pause-kick") ?? v.signals[0];
}

/** One KVM_SET_USER_MEMORY_REGION: when it was issued, and when it returned (it waits out every fault in flight). */
function memslotLine(o: Result["memslotOps"][number]): string {
  const what = `memslot ${o.op} slot ${o.slot}${o.atMs === null ? " (API)" : ""}: requested ${at(o.requestedAtMs)}`;
  if (o.errno) return `${what}, refused -${o.errno}`;
  if (o.completedAtMs === null) return `${what}, did NOT complete (vCPUs still inside a fault hold kvm->srcu)`;
  return `${what}, completed ${at(o.completedAtMs)} (waited ${(o.completedAtMs - o.requestedAtMs).toFixed(1)} ms)`;
}

/** The kernel-uaccess busy loop, when a vCPU spun: CPU time per spinning vCPU and the re-faults the handler read. */
function spinLine(r: Result): string | null {
  const spun = r.vcpus.filter((v) => v.spinCpuMs > 0);
  if (!spun.length && !r.pager.spinRefaults) return null;
  const cpu = spun.map((v) => `vCPU ${v.id} ${v.spinCpuMs.toFixed(0)} ms`).join(", ") || "none";
  return `  uaccess spin: CPU time ${cpu}; ${r.pager.spinRefaults} spin re-faults (UFFD_EVENT_PAGEFAULT read by the handler)`;
}

/** `%ld.%.9lds` of a duration in ns (struct timespec as the selftests print it). */
function timespec(ns: number): string {
  const sec = Math.floor(ns / 1e9);
  return `${sec}.${String(Math.round(ns - sec * 1e9)).padStart(9, "0")}s`;
}

/** Per-vCPU execution times are printed for up to this many vCPUs (the JSON has them all). */
const PER_VCPU_LINES = 16;

/**
 * The lines `demand_paging_test` prints (tools/testing/selftests/kvm/demand_paging_test.c), with its
 * own format strings: per-vCPU execution time (its PRINT_PER_VCPU_UPDATES line), then the total and
 * the two rates, computed as it does from the unrounded time (`vcpu_args[0].pages / seconds`, times
 * nr_vcpus). Results from before `totalGuestExecutionNs` existed print the rounded fields.
 */
function selftestLines(d: Result["demandPaging"], nrVcpus: number): string[] {
  const per = d.vcpuExecutionNs ?? [];
  const out = per.length > PER_VCPU_LINES ? [] : per.flatMap((ns, i) => (ns === null ? [] : [`vCPU ${i} execution time: ${timespec(ns)}`]));
  const ns = d.totalGuestExecutionNs ?? Math.round(d.totalGuestExecutionS * 1e9);
  const rate = d.totalGuestExecutionNs !== undefined && d.pagesPerVcpu !== undefined && ns > 0 ? d.pagesPerVcpu / (ns / 1e9) : d.perVcpuRate;
  const overall = d.totalGuestExecutionNs !== undefined && d.pagesPerVcpu !== undefined && ns > 0 ? rate * nrVcpus : d.overallRate;
  out.push(`Total guest execution time:\t${timespec(ns)}`);
  out.push(`Per-vcpu demand paging rate:\t${rate.toFixed(6)} pgs/sec/vcpu`);
  out.push(`Overall demand paging rate:\t${overall.toFixed(6)} pgs/sec`);
  return out;
}

/** SIG_IPIs sent (pthread_kill) and re-kicks cpus_kick_thread skipped because thread_kicked was still set. */
function kickText(p: NonNullable<Result["pause"]>): string {
  return `${p.kicks} SIG_IPI kicks sent${p.kicksSkipped ? `, ${p.kicksSkipped} skipped (thread_kicked)` : ""}`;
}

export function formatResult(r: Result): string {
  const out: string[] = [];
  out.push(`${r.scenario} (profile ${r.profile}, run ${r.runId}, ${r.durationMs} ms)`);
  if (r.partial) out.push(`  PARTIAL: no report from ${r.missing.join(", ")}; what follows is what the other services gathered`);
  for (const v of r.vcpus) {
    out.push(`  vCPU ${v.id}: ${v.state.padEnd(7)} pages ${v.pagesTouched}/${v.pages}${v.distinctPages !== undefined && v.distinctPages !== v.pages ? ` (${v.distinctPages} distinct)` : ""}  exits ${exits(v)}  signal_exits ${v.stat.signal_exits}  blocktime ${v.blocktimeMs.toFixed(0)} ms`);
    if (v.blockedIn) out.push(`          blocked in ${v.blockedIn.site} gfn ${v.blockedIn.gfn} ${v.blockedIn.waitState} since ${at(v.blockedIn.sinceMs)}`);
    for (const s of v.signals.filter((x) => x.source !== "pause-kick" && x.outcome !== "coalesced")) {
      out.push(`          ${s.signal} sent at ${at(s.sentAtMs)} → ${s.outcome}${s.via ? ` (${s.via})` : ""}, latency ${ms(s.latencyUs)}${s.testbedStalled ? " (across a testbed stall: not the kernel's)" : ""}`);
    }
    const coalesced = v.signals.filter((x) => x.outcome === "coalesced");
    if (coalesced.length > 0) {
      const kicks = coalesced.filter((x) => x.source === "pause-kick").length;
      out.push(`          ${coalesced.length} signal(s) coalesced with one already pending (not queued twice)${kicks ? `, ${kicks} of them SIG_IPI kicks` : ""}`);
    }
    if (v.immediateExits) out.push(`          ${v.immediateExits} immediate exit(s): KVM_RUN returned -EINTR on run->immediate_exit (no KVM_EXIT_INTR)`);
    if (v.error) out.push(`          error: ${v.error}`);
  }
  if (r.pause) {
    const p = r.pause;
    out.push(`  pause_all_vcpus: requested ${at(p.requestedAtMs)}, ${p.completedAtMs === null ? "did NOT complete" : `completed ${at(p.completedAtMs)} (latency ${ms(p.latencyUs)})`}, ${kickText(p)}${p.resumedAtMs !== null ? `, resumed ${at(p.resumedAtMs)}` : ""}`);
  }
  for (const s of r.processSignals ?? []) {
    const thread = s.thread === null ? "no thread (blocked everywhere)" : s.thread === "main" ? "the main thread" : `vCPU ${s.thread}'s thread`;
    out.push(`  ${s.signal} to the VMM process at ${at(s.sentAtMs)} → ${thread}: ${s.outcome}`);
  }
  if (r.shutdown) {
    const sh = r.shutdown;
    out.push(`  shutdown (${sh.signal}): requested ${at(sh.requestedAtMs)}, ${sh.completedAtMs === null ? "did NOT complete (a vCPU never parked)" : `completed ${at(sh.completedAtMs)} (${ms(Math.round((sh.completedAtMs - sh.requestedAtMs) * 1000))})`}`);
  }
  const pg = r.pager;
  out.push(`  pager: ${pg.faultEvents} fault events, ${pg.copies} UFFDIO_COPY, ${pg.eexist} EEXIST, ${pg.wakes} wakes, ${pg.duplicateRequests} duplicate requests`);
  const spin = spinLine(r);
  if (spin) out.push(spin);
  if (pg.removeEvents > 0) out.push(`  drops: ${pg.removeEvents} UFFD_EVENT_REMOVE, ${pg.removes} pages dropped, ${pg.eagain} UFFDIO_COPY -EAGAIN (retried), ${r.mmu.stale} faults retried (invalidation)`);
  if (pg.lostFetches > 0) out.push(`  page source: ${pg.lostFetches} fetches lost and re-sent (pager.loss)`);
  const l = r.latency;
  const tainted = (x: { testbedStalled?: number | undefined }) => (x.testbedStalled ? ` (${x.testbedStalled} across a testbed stall)` : "");
  out.push(`  slow faults: ${l.faultSlow.count}, p50 ${ms(l.faultSlow.p50Us)}, p99 ${ms(l.faultSlow.p99Us)}, max ${ms(l.faultSlow.maxUs)}${tainted(l.faultSlow)}`);
  out.push(`  signal → exit: ${l.signalToExit.count}, p50 ${ms(l.signalToExit.p50Us)}, max ${ms(l.signalToExit.maxUs)}`);
  if (r.asyncPf) {
    const t = r.asyncPf;
    out.push(`  async faults: ${l.faultAsync.count} (fault → page ready), p50 ${ms(l.faultAsync.p50Us)}, max ${ms(l.faultAsync.maxUs)}`);
    out.push(`  async-PF tracepoints: ${Object.entries(t).map(([k, n]) => `${k.replace(/^kvm_/, "")} ${n}`).join(", ")}`);
    const d = r.asyncPfDelivery;
    if (d) out.push(`  async PF to the guest: ${d.notPresentInjected} "page not present", ${d.haltRequests} artificial halts (KVM_REQ_APF_HALT), ${d.pageReadyInjected} "page ready"`);
  }
  for (const o of r.memslotOps) out.push(`  ${memslotLine(o)}`);
  const d = r.demandPaging;
  out.push(`  demand paging: ${d.overallRate.toFixed(0)} pages/s overall, ${d.perVcpuRate.toFixed(0)} pages/s/vCPU over ${d.totalGuestExecutionS} s${d.allDone ? "" : " (not all vCPUs finished)"}`);
  out.push(...selftestLines(d, r.vcpus.length));
  const loops = Object.values(r.testbed.services).map((t) => `${t.service} ${t.loopDelay.p99Ms}`).join(", ");
  out.push(`  testbed: event-loop delay p99 (ms) ${loops || "n/a"}; ${r.testbed.incidents.length} incidents`);
  if (r.testbed.warning) out.push(`  WARNING ${r.testbed.warning}: these latencies include the testbed's own delay`);
  return out.join("\n");
}

/** Two results as columns, for `faultline demo`. */
export function formatSideBySide(a: Result, b: Result): string {
  const rows: Array<[string, string, string]> = [["", `profile ${a.profile}`, `profile ${b.profile}`]];
  const row = (label: string, f: (r: Result) => string) => rows.push([label, f(a), f(b)]);
  const sig0 = (r: Result) => {
    const v = r.vcpus[0];
    return v ? firstSignal(v) : undefined;
  };
  row("SIGUSR1 outcome (vCPU 0)", (r) => {
    const s = sig0(r);
    return s ? `${s.outcome}${s.via ? ` via ${s.via}` : ""}` : "-";
  });
  row("SIGUSR1 → out of KVM_RUN", (r) => ms(sig0(r)?.latencyUs));
  row("signal_exits (all vCPUs)", (r) => String(r.vcpus.reduce((n, v) => n + v.stat.signal_exits, 0)));
  row("pause_all_vcpus", (r) => (r.pause?.completedAtMs == null ? "did not complete" : `completed in ${ms(r.pause.latencyUs)}`));
  // kicks are de-duplicated (cpus_kick_thread), so their count barely differs; what differs is how long the
  // vCPUs stayed unkickable: re-kicks skipped while thread_kicked was still set
  row("SIG_IPI kicks sent / skipped", (r) => (r.pause ? `${r.pause.kicks} / ${r.pause.kicksSkipped ?? 0}` : "-"));
  row("vCPUs done after resume", (r) => `${r.vcpus.filter((v) => v.state === "done").length}/${r.vcpus.length}`);
  row("run length", (r) => `${r.durationMs} ms`);
  row("testbed loop delay p99 (max)", (r) => `${Math.max(0, ...Object.values(r.testbed.services).map((t) => t.loopDelay.p99Ms))} ms, ${r.testbed.incidents.length} incidents`);
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((x) => (x[i] ?? "").length)));
  const warnings = [a, b].filter((r) => r.testbed.warning).map((r) => `WARNING (profile ${r.profile}) ${r.testbed.warning}`);
  return [...rows.map((x) => `${x[0].padEnd(w[0]!)}  ${x[1].padEnd(w[1]!)}  ${x[2]}`), ...warnings].join("\n");
}
