/**
 * Memory traces for `workload.pattern: trace`: valgrind's lackey output
 * (`valgrind --tool=lackey --trace-mem=yes`) parsed and compressed to a page sequence.
 *
 * Lines: `I  addr,size` (instruction fetch), ` L addr,size` (load), ` S addr,size` (store),
 * ` M addr,size` (modify: a load and a store to the same address, replayed as a write). Other lines
 * (valgrind's `==pid==` banner) are skipped. An access whose bytes cross a page boundary touches
 * each page it covers, in address order.
 *
 * Pages are numbered in first-touch order (the k-th distinct page the program touched becomes the
 * vCPU's k-th page), not `(addr >> 12) mod pages`: a process's pages are sparse (text near 0x400000,
 * heap, libraries near 0x4000000, the stack near 0x1ffefff000), so a modulo would alias distinct
 * pages onto one guest page and hide faults; first-touch keeps every distinct page distinct, and the
 * trace then faults exactly once per distinct page.
 */
import { ValidationError } from "./errors.ts";
import { FAULTLINE_MAX_TRACE_RUNS, type TraceSpec } from "./schemas/trace.ts";

const PAGE_SHIFT_DIV = 4096;

export interface ParsedTrace {
  /** triples [page, write 0|1, accesses]: consecutive accesses to one page of one kind are one run */
  runs: number[];
  /** distinct pages the trace touched */
  distinctPages: number;
  /** accesses replayed (lines kept, a page-crossing access counted once per page) */
  accesses: number;
}

export interface LackeyOptions {
  /** replay `I` lines too (default false) */
  instructions?: boolean;
  /** refuse more runs than this (FAULTLINE_MAX_TRACE_RUNS) */
  maxRuns?: number;
  /** the scenario field named in a budget error */
  path?: string;
}

const LINE = /^(I| [LSM]) +([0-9a-fA-F]+),(\d+)\s*$/;

/** Parses lackey output into a page sequence. */
export function parseLackey(text: string, o: LackeyOptions = {}): ParsedTrace {
  const maxRuns = o.maxRuns ?? FAULTLINE_MAX_TRACE_RUNS;
  const firstTouch = new Map<number, number>();
  const runs: number[] = [];
  let accesses = 0;
  const push = (realPage: number, write: number) => {
    let page = firstTouch.get(realPage);
    if (page === undefined) firstTouch.set(realPage, (page = firstTouch.size));
    accesses++;
    const n = runs.length;
    if (n > 0 && runs[n - 3] === page && runs[n - 2] === write) {
      runs[n - 1]!++;
      return;
    }
    if (n / 3 >= maxRuns) {
      throw new ValidationError(
        "scenario",
        o.path ?? "/workload/trace",
        `the trace has more than ${maxRuns} page runs (FAULTLINE_MAX_TRACE_RUNS); trace a shorter program or a slice of it`,
        "FL_ERR_BUDGET",
      );
    }
    runs.push(page, write, 1);
  };
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const kind = m[1]!.trim();
    if (kind === "I" && !o.instructions) continue;
    const addr = parseInt(m[2]!, 16);
    const size = Math.max(1, Number(m[3]));
    const write = kind === "S" || kind === "M" ? 1 : 0;
    const first = Math.floor(addr / PAGE_SHIFT_DIV);
    const last = Math.floor((addr + size - 1) / PAGE_SHIFT_DIV);
    for (let p = first; p <= last; p++) push(p, write);
  }
  return { runs, distinctPages: firstTouch.size, accesses };
}

/** Distinct pages and accesses of a page sequence; throws (naming `path`) if it is not triples. */
export function traceStats(runs: readonly number[], path = "/workload/trace/runs"): { distinctPages: number; accesses: number } {
  if (runs.length === 0 || runs.length % 3 !== 0) throw new ValidationError("scenario", path, "must be non-empty triples [page, write, accesses]");
  const seen = new Set<number>();
  let accesses = 0;
  for (let i = 0; i < runs.length; i += 3) {
    if (runs[i + 1]! > 1) throw new ValidationError("scenario", `${path}/${i + 1}`, "write must be 0 or 1");
    if (runs[i + 2]! < 1) throw new ValidationError("scenario", `${path}/${i + 2}`, "a run has at least one access");
    seen.add(runs[i]!);
    accesses += runs[i + 2]!;
  }
  return { distinctPages: seen.size, accesses };
}

/**
 * Brings `workload.trace` to its wire form: `accesses` (inline lackey text) becomes `runs`. A bare
 * `file` is refused: only the CLI can read it (cli/src/scenario-files.ts). Returns the trace's distinct pages.
 */
export function normaliseTrace(t: TraceSpec | undefined): number {
  if (!t) throw new ValidationError("scenario", "/workload/trace", "pattern trace needs workload.trace (file, accesses or runs)");
  if (t.runs === undefined && t.accesses !== undefined) {
    t.runs = parseLackey(t.accesses, { instructions: t.instructions, path: "/workload/trace/accesses" }).runs;
    delete t.accesses;
  }
  if (t.runs === undefined) {
    throw new ValidationError("scenario", "/workload/trace/file", "a trace file is read by the CLI (faultline run); over the API send trace.accesses or trace.runs");
  }
  return traceStats(t.runs).distinctPages;
}
