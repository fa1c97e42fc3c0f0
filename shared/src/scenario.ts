/**
 * Scenario loading: YAML or JSON text (or an object) → defaults → schema → semantic checks.
 * One function for the CLI and the HTTP API, so both reject the same documents with the same path.
 */
import { parse as parseYaml, YAMLParseError } from "yaml";
import { FAULTLINE_MAX_ACCESSES, FAULTLINE_MAX_DROPPED_GFNS, FAULTLINE_MAX_SIGNAL_RECORDS, MAX_GPA, MAX_MEMSLOT_BYTES } from "./budget.ts";
import { ValidationError } from "./errors.ts";
import type { GfnRange } from "./page-set.ts";
import { PAGE_SIZE, exitsOnMissing } from "./kernel.ts";
import { LATENCY_PARAMS } from "./distributions.ts";
import { simulateMemslotOps } from "./memslot-check.ts";
import { normaliseTrace } from "./trace.ts";
import { checkPauses, expandSchedules } from "./schedules.ts";
import { ScenarioSchema, type Scenario, type VcpuSelector } from "./schemas/scenario.ts";
import { withDefaults } from "./schemas/validate.ts";

const UNITS: Record<string, number> = { "": 1, B: 1, K: 1024, KiB: 1024, M: 1 << 20, MiB: 1 << 20, G: 1 << 30, GiB: 1 << 30 };

/** `64MiB` → 67108864. */
export function parseSize(size: number | string): number {
  if (typeof size === "number") return size;
  const m = /^([0-9]+)([A-Za-z]*)$/.exec(size);
  const unit = m ? UNITS[m[2] ?? ""] : undefined;
  if (!m || unit === undefined) throw new Error(`bad size ${size}`);
  return Number(m[1]) * unit;
}

export function parseScenarioText(text: string): Scenario {
  return parseScenario(parseScenarioDoc(text));
}

/** The scenario text as a plain document, not validated yet (the CLI resolves `workload.trace.file` and `pager.latency.file` in it first). */
export function parseScenarioDoc(text: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    const msg = err instanceof YAMLParseError ? err.message.split("\n")[0] : String(err);
    throw new ValidationError("scenario", "", `not YAML or JSON: ${msg}`);
  }
}

/**
 * The contents of a `pager.latency.file` (one delay in µs per line; blank lines and `#` comments
 * skipped) as `samplesUs`. Reading the file is the CLI's business (cli/src/scenario-files.ts).
 */
export function parseLatencySamples(text: string, file: string): number[] {
  const where = "/pager/latency/file";
  const samplesUs: number[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.replace(/#.*/, "").trim();
    if (!t) return;
    const v = Number(t);
    if (!Number.isFinite(v) || v < 0) throw new ValidationError("scenario", where, `${file} line ${i + 1}: not a delay in µs: ${t}`);
    samplesUs.push(v);
  });
  if (!samplesUs.length) throw new ValidationError("scenario", where, `${file} holds no samples`);
  return samplesUs;
}

/** Validates a scenario object; returns it with every default filled in and sizes in bytes. */
export function parseScenario(doc: unknown): Scenario {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ValidationError("scenario", "", "expected an object (a mapping)");
  }
  const s = withDefaults("scenario", ScenarioSchema, doc);
  expandSchedules(s);
  checkLatency(s);
  checkMemslots(s);
  checkBudgets(s);
  checkWorkload(s);
  const vcpus = s.vm.vcpus;
  const need = vcpus * s.workload.pagesPerVcpu;
  const have = s.vm.memslots.reduce((n, m) => n + Number(m.size) / PAGE_SIZE, 0);
  if (need > have) {
    throw new ValidationError(
      "scenario",
      "/workload/pagesPerVcpu",
      `${vcpus} vCPUs x ${s.workload.pagesPerVcpu} pages = ${need} pages, but the memslots hold ${have}`,
    );
  }
  if (s.pager.mode === "wp" && exitsOnMissing(s.kernel.profile)) {
    throw new ValidationError("scenario", "/pager/mode", "wp mode is modelled with the merged profiles only");
  }
  if (s.kernel.asyncPf && s.kernel.profile === "kvm-userfault") {
    throw new ValidationError("scenario", "/kernel/asyncPf", "KVM Userfault is not compatible with async page faults (the KVM_MEM_USERFAULT series refuses the combination)");
  }
  if (s.kernel.asyncPf && s.kernel.profile === "exit-on-missing") {
    throw new ValidationError("scenario", "/kernel/asyncPf", "exit-on-missing exits on a miss instead of taking an async page fault");
  }
  const site = s.workload.site;
  if (typeof site !== "string" && Object.values(site).reduce((a, b) => a + (b ?? 0), 0) <= 0) {
    throw new ValidationError("scenario", "/workload/site", "a site mix needs a positive weight");
  }
  s.signals.forEach((p, i) => {
    if ((p.vcpus === undefined) === (p.process === undefined)) {
      throw new ValidationError("scenario", `/signals/${i}`, "needs exactly one of vcpus (tgkill to vCPU threads) and process: true (kill to the VMM)");
    }
    if (p.vcpus !== undefined) checkSelector(p.vcpus, vcpus, `/signals/${i}/vcpus`);
  });
  s.signals.forEach((p, i) => checkWithin(p.atMs, s.durationMs, `/signals/${i}/atMs`));
  s.pager.stalls.forEach((p, i) => checkWithin(p.atMs, s.durationMs, `/pager/stalls/${i}/atMs`));
  s.pager.drops.forEach((p, i) => checkWithin(p.atMs, s.durationMs, `/pager/drops/${i}/atMs`));
  s.vm.memslotOps.forEach((op, i) => checkWithin(op.atMs, s.durationMs, `/vm/memslotOps/${i}/atMs`));
  simulateMemslotOps(s.vm.memslots, s.vm.memslotOps, "scenario", "/vm/memslotOps");
  s.vm.memslotOps.forEach((op, i) => {
    if (op.size === undefined) return;
    op.size = parseSize(op.size);
    if (op.size > MAX_MEMSLOT_BYTES) throw new ValidationError("scenario", `/vm/memslotOps/${i}/size`, `${op.size} bytes exceeds ${MAX_MEMSLOT_BYTES} (KVM_MEM_MAX_NR_PAGES pages)`);
  });
  const { pauseAllAtMs, resumeAtMs } = s.vmm;
  if (pauseAllAtMs !== undefined) checkWithin(pauseAllAtMs, s.durationMs, "/vmm/pauseAllAtMs");
  if (resumeAtMs !== undefined) {
    if (pauseAllAtMs === undefined || resumeAtMs <= pauseAllAtMs) {
      throw new ValidationError("scenario", "/vmm/resumeAtMs", "needs vmm.pauseAllAtMs, and must come after it");
    }
    checkWithin(resumeAtMs, s.durationMs, "/vmm/resumeAtMs");
  }
  checkPauses(s);
  return s;
}

function checkMemslots(s: Scenario): void {
  const seen = new Set<number>();
  const ranges: Array<[number, number]> = [];
  s.vm.memslots.forEach((m, i) => {
    const path = `/vm/memslots/${i}`;
    let bytes: number;
    try {
      bytes = parseSize(m.size);
    } catch {
      throw new ValidationError("scenario", `${path}/size`, `bad size ${String(m.size)}`);
    }
    if (bytes % PAGE_SIZE !== 0 || bytes === 0) {
      throw new ValidationError("scenario", `${path}/size`, "must be a positive multiple of 4096");
    }
    if (bytes > MAX_MEMSLOT_BYTES) {
      throw new ValidationError("scenario", `${path}/size`, `${bytes} bytes exceeds ${MAX_MEMSLOT_BYTES} (KVM_MEM_MAX_NR_PAGES pages)`);
    }
    if (m.gpa % PAGE_SIZE !== 0) throw new ValidationError("scenario", `${path}/gpa`, "must be page aligned");
    if (m.gpa + bytes > MAX_GPA) throw new ValidationError("scenario", path, "ends above 2^52 (MAXPHYADDR)");
    if (seen.has(m.slot)) throw new ValidationError("scenario", `${path}/slot`, `slot ${m.slot} appears twice`);
    seen.add(m.slot);
    for (const [a, b] of ranges) {
      if (m.gpa < b && a < m.gpa + bytes) throw new ValidationError("scenario", path, "overlaps another memslot");
    }
    ranges.push([m.gpa, m.gpa + bytes]);
    m.size = bytes;
  });
}

/** Accesses each vCPU makes: `accessesPerVcpu` for zipf and hotset, a trace's page runs, else `pagesPerVcpu`. */
export function workloadAccesses(s: Scenario): number {
  const w = s.workload;
  if (w.pattern === "trace") return (w.trace?.runs?.length ?? 0) / 3;
  if (w.pattern === "zipf" || w.pattern === "hotset") return w.accessesPerVcpu ?? w.pagesPerVcpu;
  return w.pagesPerVcpu;
}

/** A trace's wire form (inline lackey text becomes a page sequence) and its fit in the vCPU's pages. */
function checkWorkload(s: Scenario): void {
  if (s.workload.pattern !== "trace") return;
  const distinct = normaliseTrace(s.workload.trace);
  const runs = s.workload.trace!.runs!.length / 3;
  if (s.vm.vcpus * runs > FAULTLINE_MAX_ACCESSES) {
    throw new ValidationError("scenario", "/workload/trace", `${s.vm.vcpus} vCPUs x ${runs} page runs exceeds the budget of ${FAULTLINE_MAX_ACCESSES} (FAULTLINE_MAX_ACCESSES)`, "FL_ERR_BUDGET");
  }
  if (distinct > s.workload.pagesPerVcpu) {
    throw new ValidationError("scenario", "/workload/pagesPerVcpu", `the trace touches ${distinct} distinct pages; each vCPU needs at least that many (pagesPerVcpu ${s.workload.pagesPerVcpu})`);
  }
}

/** The products of fields the schema cannot bound (budget.ts); the error names the field that tips it over. */
function checkBudgets(s: Scenario): void {
  const { vcpus } = s.vm;
  const repeats = s.workload.accessesPerVcpu !== undefined && (s.workload.pattern === "zipf" || s.workload.pattern === "hotset");
  const per = workloadAccesses(s);
  if (vcpus * per > FAULTLINE_MAX_ACCESSES) {
    throw new ValidationError(
      "scenario",
      repeats ? "/workload/accessesPerVcpu" : "/workload/pagesPerVcpu",
      `${vcpus} vCPUs x ${per} ${repeats ? "accesses" : "pages"} = ${vcpus * per} accesses exceeds the budget of ${FAULTLINE_MAX_ACCESSES} (FAULTLINE_MAX_ACCESSES)`,
      "FL_ERR_BUDGET",
    );
  }
  let records = 0;
  s.signals.forEach((p, i) => {
    records += p.vcpus === "all" || p.process ? vcpus : Array.isArray(p.vcpus) ? new Set(p.vcpus).size : 1;
    if (records > FAULTLINE_MAX_SIGNAL_RECORDS) {
      throw new ValidationError(
        "scenario",
        `/signals/${i}/vcpus`,
        `signals 0..${i} target ${records} vCPUs in all = ${records} signal records, exceeds the budget of ${FAULTLINE_MAX_SIGNAL_RECORDS} (FAULTLINE_MAX_SIGNAL_RECORDS)`,
        "FL_ERR_BUDGET",
      );
    }
  });
  let dropped = 0;
  s.pager.drops.forEach((d, i) => {
    dropped += d.gfns.length;
    if (dropped > FAULTLINE_MAX_DROPPED_GFNS) {
      throw new ValidationError(
        "scenario",
        `/pager/drops/${i}/gfns`,
        `drops 0..${i} drop ${dropped} gfns in all, exceeds the budget of ${FAULTLINE_MAX_DROPPED_GFNS} (FAULTLINE_MAX_DROPPED_GFNS)`,
        "FL_ERR_BUDGET",
      );
    }
  });
}

function checkSelector(sel: VcpuSelector, vcpus: number, path: string): void {
  const ids = sel === "all" ? [] : Array.isArray(sel) ? sel : [sel];
  const bad = ids.find((id) => id >= vcpus);
  if (bad !== undefined) throw new ValidationError("scenario", path, `vCPU ${bad} does not exist (vm.vcpus = ${vcpus})`);
}

function checkWithin(atMs: number, durationMs: number, path: string): void {
  if (atMs >= durationMs) throw new ValidationError("scenario", path, `${atMs} is not before durationMs (${durationMs})`);
}

/** The gfn range [start, end) of each memslot, in slot order: O(slots), whatever their size. */
export function guestRanges(memslots: Scenario["vm"]["memslots"]): GfnRange[] {
  return memslots.map((m) => {
    const base = m.gpa / PAGE_SIZE;
    return [base, base + parseSize(m.size) / PAGE_SIZE] as const;
  });
}

/** Every gfn of the memslots, in slot order. One step per page: prefer `guestRanges` for anything sized by the memslots. */
export function* guestGfns(memslots: Scenario["vm"]["memslots"]): Generator<number> {
  for (const m of memslots) {
    const base = m.gpa / PAGE_SIZE;
    for (let i = 0, n = parseSize(m.size) / PAGE_SIZE; i < n; i++) yield base + i;
  }
}

/** Resolves a selector to vCPU ids. */
export function selectVcpus(sel: VcpuSelector, vcpus: number): number[] {
  if (sel === "all") return Array.from({ length: vcpus }, (_, i) => i);
  return Array.isArray(sel) ? [...new Set(sel)] : [sel];
}

/** `pager.latency`: the distribution's own parameters, all of them and no others; a fixed delay without `us` is 200 µs. */
function checkLatency(s: Scenario): void {
  const l = s.pager.latency;
  if (l.file !== undefined) {
    throw new ValidationError("scenario", "/pager/latency/file", "a samples file is read by the CLI (relative to the scenario file); send samplesUs instead");
  }
  if (l.dist === "fixed") l.us ??= 200;
  const own = LATENCY_PARAMS[l.dist];
  for (const k of Object.keys(l)) {
    if (k !== "dist" && !own.includes(k)) {
      throw new ValidationError("scenario", `/pager/latency/${k}`, `not a parameter of dist ${l.dist} (it takes ${own.join(", ")})`);
    }
  }
  for (const k of own) {
    if ((l as Record<string, unknown>)[k] === undefined) throw new ValidationError("scenario", `/pager/latency/${k}`, `dist ${l.dist} needs ${k}`);
  }
  if (l.dist === "uniform" && l.minUs! > l.maxUs!) throw new ValidationError("scenario", "/pager/latency/maxUs", "below minUs");
}
