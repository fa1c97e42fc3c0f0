/** The comparison table (Faultline figure, its raw NATS baseline, "x slower than raw") and the details. */
import type { FaultlineResults, FaultlineRun } from "./faultline.ts";
import type { RawResults } from "./raw.ts";

export interface Row {
  figure: string;
  faultline: number | null;
  baseline: string;
  raw: number | null;
  /** Faultline / raw for latencies, raw / Faultline for rates: both read "x slower than raw" */
  xSlower: number | null;
  /** the Faultline run behind this figure reported issues (see below the table) */
  flagged: boolean;
}

export function comparisonRows(raw: RawResults, fl: FaultlineResults): Row[] {
  const rows: Row[] = [];
  const lat = fl.latency;
  const fs = lat.faultSlow;
  const latRow = (what: string, f: number | undefined, r: number) => {
    const fv = f ?? null;
    rows.push({
      figure: `slow-fault round trip ${what} (µs), 1 vCPU`,
      faultline: fv,
      baseline: `raw 2-hop chain ${what} (µs)`,
      raw: r,
      xSlower: fv !== null && r > 0 ? fv / r : null,
      flagged: lat.issues.length > 0,
    });
  };
  latRow("p50", fs?.p50Us, raw.twoHop.p50Us);
  latRow("mean", fs?.meanUs, raw.twoHop.meanUs);
  latRow("p99", fs?.p99Us, raw.twoHop.p99Us);
  for (const run of fl.rates) {
    const tp = raw.twoHopThroughput.find((p) => p.loops === run.vcpus);
    const f = run.overallRate;
    rows.push({
      figure: `demand-paging rate, ${run.vcpus} vCPU${run.vcpus === 1 ? "" : "s"} (pages/s)`,
      faultline: f,
      baseline: `raw 2-hop chained req/s, ${run.vcpus} loop${run.vcpus === 1 ? "" : "s"}`,
      raw: tp?.reqPerS ?? null,
      xSlower: f && tp ? tp.reqPerS / f : null,
      flagged: run.issues.length > 0,
    });
  }
  return rows;
}

function num(x: number | null, digits = 0): string {
  if (x === null || !Number.isFinite(x)) return "n/a";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(head: string[], body: string[][], alignRight: boolean[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => (alignRight[i] ? c.padStart(w[i] ?? 0) : c.padEnd(w[i] ?? 0))).join(" | ") + " |";
  const sep = "|" + w.map((n, i) => (alignRight[i] ? "-".repeat(n + 1) + ":" : "-".repeat(n + 2))).join("|") + "|";
  return [line(head), sep, ...body.map(line)].join("\n");
}

export function formatReport(raw: RawResults, fl: FaultlineResults, rows: Row[]): string {
  const out: string[] = [];
  out.push("Faultline slow-fault path vs raw NATS request/reply (same nats-server, separate Node processes)");
  out.push("");
  out.push(
    table(
      ["Faultline figure", "Faultline", "raw NATS baseline", "raw", "x slower than raw"],
      rows.map((r) => [
        r.figure + (r.flagged ? " (!)" : ""),
        r.faultline === null ? "FAILED" : num(r.faultline, r.figure.includes("µs") ? 1 : 0),
        r.baseline,
        num(r.raw, r.baseline.includes("µs") ? 1 : 0),
        r.xSlower === null ? "n/a" : `${r.xSlower.toFixed(2)}x`,
      ]),
      [false, true, false, true, true],
    ),
  );
  out.push("x slower than raw = Faultline / raw for latencies, raw / Faultline for rates.");
  out.push("");
  out.push(`Raw NATS (payload ${raw.payloadBytes} B, no JSON parsing, no validation):`);
  out.push(
    table(
      ["path", "n", "mean µs", "p50 µs", "p90 µs", "p99 µs", "max µs"],
      (
        [
          ["1 hop (client → B)", raw.oneHop],
          ["2 hops (client → A → B)", raw.twoHop],
        ] as const
      ).map(([name, s]) => [name, String(s.n), num(s.meanUs, 1), num(s.p50Us, 1), num(s.p90Us, 1), num(s.p99Us, 1), num(s.maxUs, 1)]),
      [false, true, true, true, true, true, true],
    ),
  );
  out.push(
    table(
      ["2-hop chained, concurrent loops", "requests", "seconds", "req/s", "mean µs per request"],
      raw.twoHopThroughput.map((p) => [String(p.loops), String(p.requests), p.elapsedS.toFixed(2), num(p.reqPerS), num(p.meanUs, 1)]),
      [true, true, true, true, true],
    ),
  );
  out.push("");
  out.push("Faultline runs (pager latency 0 µs, no stalls, no signals):");
  const runs: FaultlineRun[] = [...fl.warmup, fl.latency, ...fl.rates];
  out.push(
    table(
      ["run", "vCPUs", "pages/vCPU", "status", "allDone", "guest s", "pages/s", "slow faults", "mean µs", "p50 µs", "p99 µs", "max µs"],
      runs.map((r) => [
        r.label + (r.label.startsWith("warmup") ? " (discarded)" : ""),
        String(r.vcpus),
        String(r.pagesPerVcpu),
        r.status,
        r.allDone === null ? "n/a" : String(r.allDone),
        r.totalGuestExecutionS === null ? "n/a" : r.totalGuestExecutionS.toFixed(3),
        num(r.overallRate),
        r.faultSlow ? String(r.faultSlow.count) : "n/a",
        num(r.faultSlow?.meanUs ?? null, 1),
        num(r.faultSlow?.p50Us ?? null, 0),
        num(r.faultSlow?.p99Us ?? null, 0),
        num(r.faultSlow?.maxUs ?? null, 0),
      ]),
      [false, true, true, false, false, true, true, true, true, true, true, true],
    ),
  );
  const problems = runs.filter((r) => r.issues.length > 0);
  if (problems.length) {
    out.push("");
    out.push("ISSUES (figures marked (!) come from these runs):");
    for (const r of problems) for (const i of r.issues) out.push(`  - ${r.label}: ${i}`);
  }
  return out.join("\n");
}
