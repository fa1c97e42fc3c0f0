/** Workloads over 1, 4 and 16 vCPUs, sequential and random, through the real services. */
import { describe, expect, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

describe("workloads", () => {
  for (const vcpus of [1, 4, 16]) {
    for (const pattern of ["sequential", "random"] as const) {
      it(`workload ${pattern} x ${vcpus} vCPUs - every page is demand-paged once, by one UFFDIO_COPY`, async () => {
        const pages = 48;
        const r = await runToEnd(
          t.api,
          parseScenario({ name: `w-${pattern}-${vcpus}`, durationMs: 60_000, vm: { vcpus }, pager: { latency: { us: 0 } }, workload: { pattern, pagesPerVcpu: pages, writeRatio: 0.5 } }),
        );
        const total = vcpus * pages;
        expect(r.demandPaging.allDone).toBe(true);
        expect(r.demandPaging.overallRate).toBeGreaterThan(0);
        for (const v of r.vcpus) {
          expect(v).toMatchObject({ state: "done", pagesTouched: pages, pages });
          expect(v.stat).toMatchObject({ pf_taken: pages, pf_fixed: pages, signal_exits: 0 });
        }
        expect(r.pager).toMatchObject({ faultEvents: total, copies: total, wakes: total, duplicateRequests: 0, eexist: 0, resident: total });
        expect(r.latency.faultSlow.count).toBe(total);
        expect(r.latency.faultSlow.log2Buckets.reduce((a, b) => a + b, 0)).toBe(total);
      });
    }
  }
});
