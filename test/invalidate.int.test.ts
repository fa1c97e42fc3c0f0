/**
 * MADV_DONTNEED while vCPUs fault, end to end: `userfaultfd_remove` (UFFD_EVENT_REMOVE, mmap_changing:
 * UFFDIO_COPY -EAGAIN until the handler reads it), then the mmu notifier's start in the mmu service,
 * the pages go, its end. The handler is slow here (pager.eventReadUs), so the REMOVE waits behind
 * page-fault messages the handler reads first, and the fills for those land while it is unread.
 */
import { describe, expect, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

/** every guest page (4 vCPUs x 200), dropped again and again while the vCPUs fault */
const DROPS = Array.from({ length: 12 }, (_, k) => ({ atMs: 100 + k * 150, gfns: Array.from({ length: 800 }, (_, i) => i) }));

describe("invalidation order end to end", () => {
  it("invalidate - drops during faults: every REMOVE read, COPYs that raced one got -EAGAIN and were retried, each drop ended its invalidation, every vCPU finished", async () => {
    const s = parseScenario({
      name: "invalidate-during-faults", durationMs: 60_000, kernel: { profile: "6.13" }, vm: { vcpus: 4 },
      pager: { latency: { us: 0 }, eventReadUs: 5000, drops: DROPS },
      workload: { pagesPerVcpu: 200 },
    });
    const r = await runToEnd(t.api, s);
    const p = r.pager;
    expect(p.removeEvents).toBe(DROPS.length);
    expect(p.eagain).toBeGreaterThan(0);
    // every -EAGAIN was retried: no vCPU waits for a page forever
    expect(r.vcpus.map((v) => [v.state, v.pagesTouched])).toEqual(r.vcpus.map(() => ["done", 200]));
    expect(p.removes).toBeGreaterThan(0);
    expect(p.removes).toBeLessThanOrEqual(DROPS.reduce((n, d) => n + d.gfns.length, 0));
    // each drop's invalidate_range_end bumped mmu_invalidate_seq once, and nothing else here does
    expect(r.mmu.invalidateSeq).toBe(DROPS.length);
    expect(r.mmu.zapped).toBeGreaterThan(0);
    // faults in flight across an invalidation were retried (mmu_invalidate_retry_gfn → RET_PF_RETRY)
    expect(r.mmu.stale).toBeGreaterThan(0);
  });

  it("invalidate - control: the same drops with a fast handler read each REMOVE at once, and no COPY gets -EAGAIN", async () => {
    const s = parseScenario({
      // the fast run is over before the last drop: it runs to the end so that every drop happens
      name: "invalidate-fast-handler", durationMs: 100 + DROPS.length * 150 + 200, endWhenDone: false, kernel: { profile: "6.13" }, vm: { vcpus: 4 },
      pager: { latency: { us: 0 }, eventReadUs: 0, drops: DROPS },
      workload: { pagesPerVcpu: 200 },
    });
    const r = await runToEnd(t.api, s);
    expect(r.pager).toMatchObject({ removeEvents: DROPS.length, eagain: 0 });
    expect(r.mmu.invalidateSeq).toBe(DROPS.length);
    expect(r.vcpus.every((v) => v.state === "done")).toBe(true);
  });
});
