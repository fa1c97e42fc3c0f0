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
  return v.signals.find((s) => s.source !== "pause-kick") ?? v.signals[0];
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
    out.push(`  vCPU ${v.id}: ${v.state.padEnd(7)} pages ${v.pagesTouched}/${v.pages}  exits ${exits(v)}  signal_exits ${v.stat.signal_exits}  blocktime ${v.blocktimeMs.toFixed(0)} ms`);
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
  const l = r.latency;
  const tainted = (x: { testbedStalled?: number | undefined }) => (x.testbedStalled ? ` (${x.testbedStalled} across a testbed stall)` : "");
  out.push(`  slow faults: ${l.faultSlow.count}, p50 ${ms(l.faultSlow.p50Us)}, p99 ${ms(l.faultSlow.p99Us)}, max ${ms(l.faultSlow.maxUs)}${tainted(l.faultSlow)}`);
  out.push(`  signal → exit: ${l.signalToExit.count}, p50 ${ms(l.signalToExit.p50Us)}, max ${ms(l.signalToExit.maxUs)}`);
  const d = r.demandPaging;
  out.push(`  demand paging: ${d.overallRate.toFixed(0)} pages/s overall, ${d.perVcpuRate.toFixed(0)} pages/s/vCPU over ${d.totalGuestExecutionS} s${d.allDone ? "" : " (not all vCPUs finished)"}`);
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
