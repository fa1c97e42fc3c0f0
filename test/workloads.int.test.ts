/** Workload patterns through the real services: zipf repeats pages, a real program's lackey trace replays. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveScenarioFiles } from "../cli/src/scenario-files.ts";
import { parseLackey, parseScenario } from "@faultline/shared";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

const valgrind = spawnSync("valgrind", ["--version"], { encoding: "utf8" });
const hasValgrind = valgrind.status === 0;

describe("workloads", () => {
  it("workload zipf - faults once per distinct page, fewer than its accesses; computeUs counts in guest time", async () => {
    const accesses = 2000;
    const computeUs = 20;
    const r = await runToEnd(
      t.api,
      parseScenario({
        name: "w-zipf", seed: 5, durationMs: 120_000, vm: { vcpus: 2 }, pager: { latency: { us: 0 } },
        workload: { pattern: "zipf", pagesPerVcpu: 256, accessesPerVcpu: accesses, zipfS: 1.2, computeUs },
      }),
    );
    expect(r.demandPaging.allDone).toBe(true);
    for (const v of r.vcpus) {
      expect(v).toMatchObject({ state: "done", pages: accesses, pagesTouched: accesses });
      expect(v.distinctPages).toBeGreaterThan(1);
      expect(v.distinctPages).toBeLessThan(accesses);
      expect(v.stat.pf_taken).toBe(v.distinctPages);
      expect(v.computeMs).toBe((accesses * computeUs) / 1000);
      // each vCPU's execution includes its compute time (slept, never shorter)
      expect(v.doneAtMs!).toBeGreaterThanOrEqual((accesses * computeUs) / 1000);
    }
    expect(r.demandPaging.totalGuestExecutionNs!).toBeGreaterThanOrEqual(accesses * computeUs * 1000);
    expect(r.pager.copies).toBe(r.vcpus.reduce((n, v) => n + v.distinctPages!, 0));
  });

  it("workload trace - the checked-in lackey sample of ls, from a scenario file, faults once per distinct page", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fl-trace-"));
    try {
      const file = join(dir, "s.yaml");
      writeFileSync(file, "");
      const doc = await resolveScenarioFiles(
        { name: "w-trace-sample", durationMs: 60_000, vm: { vcpus: 2 }, pager: { latency: { us: 0 } }, workload: { pattern: "trace", pagesPerVcpu: 64, trace: { file: join(import.meta.dirname, "fixtures", "lackey-ls.txt") } } },
        file,
      );
      const s = parseScenario(doc);
      const expected = parseLackey(readFileSync(join(import.meta.dirname, "fixtures", "lackey-ls.txt"), "utf8")).distinctPages;
      const r = await runToEnd(t.api, s);
      for (const v of r.vcpus) {
        expect(v.state).toBe("done");
        expect(v.distinctPages).toBe(expected);
        expect(v.stat.pf_taken).toBe(expected);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasValgrind)("workload trace - a lackey trace of ls / recorded now replays, its fault count equals its distinct pages (needs valgrind: skipped without it)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fl-lackey-"));
    try {
      const log = join(dir, "ls.lackey");
      const rec = spawnSync("valgrind", ["--tool=lackey", "--trace-mem=yes", `--log-file=${log}`, "ls", "/"], { encoding: "utf8" });
      expect(rec.status).toBe(0);
      const scenarioFile = join(dir, "trace.yaml");
      writeFileSync(
        scenarioFile,
        "name: w-trace-ls\ndurationMs: 120000\nvm: { vcpus: 2 }\npager: { latency: { us: 0 } }\nworkload: { pattern: trace, pagesPerVcpu: 1024, trace: { file: ls.lackey } }\n",
      );
      const { loadScenario } = await import("../cli/src/commands/run.ts");
      const s = await loadScenario(scenarioFile);
      const parsed = parseLackey(readFileSync(log, "utf8"), { maxRuns: Number.MAX_SAFE_INTEGER });
      expect(s.workload.trace?.runs).toHaveLength(parsed.runs.length);
      const r = await runToEnd(t.api, s);
      for (const v of r.vcpus) {
        expect(v.state).toBe("done");
        expect(v.distinctPages).toBe(parsed.distinctPages);
        expect(v.stat.pf_taken).toBe(parsed.distinctPages);
        expect(v.pagesTouched).toBe(parsed.runs.length / 3);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
