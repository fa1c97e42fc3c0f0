/**
 * Expands `schedules` (Jepsen-nemesis style recurring faults) into the concrete plans the services
 * already run: `pager.stalls` windows, `signals` plans and `vmm.pauses` cycles. Every random draw
 * comes from `scenario.seed` (one stream per schedule entry, so adding a schedule does not move the
 * draws of another). The block is dropped once expanded: a parsed scenario parsed again (the API
 * re-parses) holds only concrete plans and cannot expand twice.
 */
import { FAULTLINE_MAX_SIGNAL_RECORDS } from "./budget.ts";
import { ValidationError } from "./errors.ts";
import { prng } from "./random.ts";
import type { Scenario, SignalPlan } from "./schemas/scenario.ts";

/** The schemas' maxItems for the lists a schedule appends to. */
export const MAX_STALLS = 1000;
export const MAX_SIGNAL_PLANS = 10_000;
export const MAX_PAUSES = 1000;

const TAG = { stalls: 1, signals: 2 } as const;

/** One generator per schedule entry, derived from the seed. */
function streamFor(seed: number, kind: keyof typeof TAG, i: number): () => number {
  return prng((Math.imul(seed >>> 0, 0x9e3779b1) ^ (TAG[kind] << 16) ^ i) >>> 0);
}

/** t + a draw in [0, jitterMs], kept below toMs. */
function jittered(t: number, jitterMs: number | undefined, toMs: number, rnd: () => number): number {
  const j = Math.min(jitterMs ?? 0, toMs - 1 - t);
  return j > 0 ? t + Math.floor(rnd() * (j + 1)) : t;
}

function fail(path: string, msg: string, code?: string): never {
  throw new ValidationError("scenario", path, msg, code);
}

function range(path: string, fromMs: number, toMs: number, durationMs: number): void {
  if (toMs <= fromMs) fail(`${path}/toMs`, `must come after fromMs (${fromMs})`);
  if (toMs > durationMs) fail(`${path}/toMs`, `${toMs} is after durationMs (${durationMs})`);
}

function periodicCount(fromMs: number, toMs: number, everyMs: number): number {
  return Math.ceil((toMs - fromMs) / everyMs);
}

function budget(path: string, what: string, n: number, max: number): void {
  if (n > max) fail(path, `expands to ${n} ${what} in all, exceeds the budget of ${max}`, "FL_ERR_BUDGET");
}

/** Appends the expansion of `s.schedules` to the concrete plans and deletes it; a no-op without one. */
export function expandSchedules(s: Scenario): void {
  const sch = s.schedules;
  if (!sch) return;
  const { durationMs, seed } = s;

  sch.stalls.forEach((st, i) => {
    const path = `/schedules/stalls/${i}`;
    range(path, st.fromMs, st.toMs, durationMs);
    if (st.forMs + (st.jitterMs ?? 0) > st.everyMs) fail(`${path}/forMs`, "forMs + jitterMs exceeds everyMs: windows would overlap");
    const n = periodicCount(st.fromMs, st.toMs, st.everyMs);
    budget(`${path}/everyMs`, "pager.stalls windows", s.pager.stalls.length + n, MAX_STALLS);
    const rnd = streamFor(seed, "stalls", i);
    for (let k = 0; k < n; k++) s.pager.stalls.push({ atMs: jittered(st.fromMs + k * st.everyMs, st.jitterMs, st.toMs, rnd), forMs: st.forMs });
  });

  sch.signals.forEach((g, i) => {
    const path = `/schedules/signals/${i}`;
    range(path, g.fromMs, g.toMs, durationMs);
    if ((g.vcpus === undefined) === (g.process === undefined)) fail(path, "needs exactly one of vcpus (tgkill to vCPU threads) and process: true (kill to the VMM)");
    const ids = g.vcpus === undefined || g.vcpus === "all" ? [] : Array.isArray(g.vcpus) ? g.vcpus : [g.vcpus];
    const bad = ids.find((id) => id >= s.vm.vcpus);
    if (bad !== undefined) fail(`${path}/vcpus`, `vCPU ${bad} does not exist (vm.vcpus = ${s.vm.vcpus})`);
    const rnd = streamFor(seed, "signals", i);
    let times: number[];
    if (g.kind === "random") {
      if (g.count === undefined) fail(`${path}/count`, "kind random needs count");
      if (g.everyMs !== undefined || g.jitterMs !== undefined) fail(path, "kind random takes count, not everyMs or jitterMs");
      budget(`${path}/count`, "signal plans", s.signals.length + g.count, MAX_SIGNAL_PLANS);
      const span = g.toMs - g.fromMs;
      times = Array.from({ length: g.count }, () => g.fromMs + Math.floor(rnd() * span)).sort((a, b) => a - b);
    } else {
      if (g.everyMs === undefined) fail(`${path}/everyMs`, "kind periodic needs everyMs");
      if (g.count !== undefined) fail(`${path}/count`, "kind periodic takes everyMs, not count");
      const n = periodicCount(g.fromMs, g.toMs, g.everyMs);
      budget(`${path}/everyMs`, "signal plans", s.signals.length + n, MAX_SIGNAL_PLANS);
      times = Array.from({ length: n }, (_, k) => jittered(g.fromMs + k * g.everyMs!, g.jitterMs, g.toMs, rnd));
    }
    const target: Pick<SignalPlan, "vcpus" | "process"> = g.process ? { process: true } : { vcpus: g.vcpus! };
    const perPlan = g.process || g.vcpus === "all" ? s.vm.vcpus : Array.isArray(g.vcpus) ? new Set(g.vcpus).size : 1;
    const records = s.signals.reduce((n, p) => n + (p.process || p.vcpus === "all" ? s.vm.vcpus : Array.isArray(p.vcpus) ? new Set(p.vcpus).size : 1), 0);
    if (records + perPlan * times.length > FAULTLINE_MAX_SIGNAL_RECORDS) {
      fail(`${path}/vcpus`, `expands to ${records + perPlan * times.length} signal records in all, exceeds the budget of ${FAULTLINE_MAX_SIGNAL_RECORDS} (FAULTLINE_MAX_SIGNAL_RECORDS)`, "FL_ERR_BUDGET");
    }
    for (const atMs of times) s.signals.push({ atMs, signal: g.signal, ...structuredClone(target) });
  });

  sch.pauses.forEach((p, i) => {
    const path = `/schedules/pauses/${i}`;
    if (p.pauseForMs >= p.everyMs) fail(`${path}/pauseForMs`, "must be below everyMs (a cycle resumes before the next pause)");
    const pauses = (s.vmm.pauses ??= []);
    budget(`${path}/count`, "vmm.pauses cycles", pauses.length + p.count, MAX_PAUSES);
    const last = p.fromMs + (p.count - 1) * p.everyMs + p.pauseForMs;
    if (last >= durationMs) fail(`${path}/count`, `the last resume (${last}) is not before durationMs (${durationMs})`);
    for (let k = 0; k < p.count; k++) {
      const atMs = p.fromMs + k * p.everyMs;
      pauses.push({ atMs, resumeAtMs: atMs + p.pauseForMs });
    }
  });
  s.vmm.pauses?.sort((a, b) => a.atMs - b.atMs);
  delete s.schedules;
}

/** `vmm.pauses`: ordered, each resumed before the next starts (only the last may stay paused), within the run. */
export function checkPauses(s: Scenario): void {
  const ps = s.vmm.pauses;
  if (!ps?.length) return;
  if (s.vmm.pauseAllAtMs !== undefined || s.vmm.resumeAtMs !== undefined) {
    fail("/vmm/pauses", "use either vmm.pauses or vmm.pauseAllAtMs / resumeAtMs, not both");
  }
  ps.forEach((p, i) => {
    const path = `/vmm/pauses/${i}`;
    if (p.atMs >= s.durationMs) fail(`${path}/atMs`, `${p.atMs} is not before durationMs (${s.durationMs})`);
    const prev = ps[i - 1];
    if (prev && (prev.resumeAtMs === undefined || p.atMs <= prev.resumeAtMs)) fail(`${path}/atMs`, "must come after the previous pause's resumeAtMs (pauses are ordered and do not overlap)");
    if (p.resumeAtMs !== undefined) {
      if (p.resumeAtMs <= p.atMs) fail(`${path}/resumeAtMs`, "must come after atMs");
      if (p.resumeAtMs >= s.durationMs) fail(`${path}/resumeAtMs`, `${p.resumeAtMs} is not before durationMs (${s.durationMs})`);
    }
  });
}
