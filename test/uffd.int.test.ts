/** The uffd surface configured from a scenario, end to end through the real services. */
import { describe, expect, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

describe("uffd surface end to end", () => {
  it("uffd - MINOR + THREAD_ID + ZEROPAGE + POISON + DONTWAKE batches, counted in the result", async () => {
    const r = await runToEnd(t.api, parseScenario({
      name: "uffd-surface", durationMs: 30_000, vm: { vcpus: 2 },
      pager: { mode: "minor", features: ["thread_id"], zeroRatio: 0.5, poison: [3], wakeBatch: 4, latency: { us: 0 } },
      workload: { pagesPerVcpu: 64 },
    }));
    const p = r.pager;
    expect(p.poisons).toBe(1);
    expect(p.continues + p.zeropages).toBe(127); // every page but the poisoned one
    expect(p.zeropages).toBeGreaterThan(30);
    expect(p.copies).toBe(0);
    expect(p.wakeCalls).toBeGreaterThan(0);
    expect(Object.keys(p.eventsByPtid).sort()).toEqual(["vcpu0", "vcpu1"]);
    expect(r.vcpus[0]!.hwpoisonSigbus).toBe(1);
    expect(r.vcpus.map((v) => v.pagesTouched)).toEqual([63, 64]);
    expect(r.mmu.hwpoison).toBe(1);
  });

  it("uffd - WP mode: only writes reach the handler (UFFDIO_WRITEPROTECT)", async () => {
    const r = await runToEnd(t.api, parseScenario({
      name: "uffd-wp", durationMs: 30_000, pager: { mode: "wp", latency: { us: 0 } }, workload: { pagesPerVcpu: 100, writeRatio: 0.3 },
    }));
    expect(r.pager.writeprotects).toBe(r.pager.faultEvents);
    expect(r.pager.faultEvents).toBeGreaterThan(10);
    expect(r.pager.faultEvents).toBeLessThan(60);
    expect(r.vcpus[0]!.pagesTouched).toBe(100);
  });
});
