/**
 * The page source's model end to end: a latency distribution shows in the slow-fault percentiles, a
 * narrow link makes concurrent faults queue, and lost fetches are re-sent until every vCPU finishes.
 */
import { describe, expect, it } from "vitest";
import { PAGE_SIZE, parseScenario, type Result } from "@faultline/shared";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

const scenario = (vcpus: number, pagesPerVcpu: number, pager: Record<string, unknown>) =>
  parseScenario({
    name: "page-source", durationMs: 60_000, endWhenDone: true, seed: 5,
    kernel: { profile: "6.2" }, vm: { vcpus }, pager, workload: { pagesPerVcpu },
  });

const allDone = (r: Result) => expect(r.vcpus.map((v) => v.state)).toEqual(r.vcpus.map(() => "done"));

describe("page source", () => {
  it("page source - lognormal latency: slow-fault p50 near the median, p99 well above it", async () => {
    const medianUs = 5000;
    const r = await runToEnd(t.api, scenario(2, 150, { latency: { dist: "lognormal", medianUs, sigma: 1 } }));
    allDone(r);
    const slow = r.latency.faultSlow;
    expect(slow.count).toBeGreaterThanOrEqual(300);
    // the fault path adds its own hops to the drawn delay: above the median, but not by another median
    expect(slow.p50Us).toBeGreaterThan(medianUs * 0.7);
    expect(slow.p50Us).toBeLessThan(medianUs * 2);
    // sigma 1: the distribution's p99 is e^2.33 ≈ 10x its median
    expect(slow.p99Us).toBeGreaterThan(slow.p50Us * 4);
    console.log(`lognormal median ${medianUs} us, sigma 1: slow p50 ${slow.p50Us} us, p99 ${slow.p99Us} us (${slow.count} faults)`);
  });

  it("page source - bandwidth: 8 vCPUs' slow faults queue on the link, their p50 several times one vCPU's", async () => {
    const pager = { latency: { us: 200 }, bandwidthMBps: PAGE_SIZE / 2000 }; // 2 ms per 4 KiB page
    const one = await runToEnd(t.api, scenario(1, 80, pager));
    const eight = await runToEnd(t.api, scenario(8, 80, pager));
    allDone(one);
    allDone(eight);
    const p1 = one.latency.faultSlow.p50Us;
    const p8 = eight.latency.faultSlow.p50Us;
    expect(p1).toBeGreaterThan(2000); // one vCPU: the delay plus its own transfer
    expect(p8).toBeGreaterThan(p1 * 3);
    console.log(`bandwidth 2 ms/page: slow p50 1 vCPU ${p1} us, 8 vCPUs ${p8} us`);
  });

  it("page source - loss: lost fetches are counted and re-sent, and every vCPU still finishes", async () => {
    const retryMs = 20;
    const lossy = await runToEnd(t.api, scenario(4, 60, { latency: { us: 200 }, loss: { probability: 0.3, retryMs } }));
    const clean = await runToEnd(t.api, scenario(4, 60, { latency: { us: 200 } }));
    allDone(lossy);
    allDone(clean);
    expect(clean.pager.lostFetches).toBe(0);
    expect(lossy.pager.lostFetches).toBeGreaterThan(20);
    // a page whose fetch was lost waits at least one retry
    expect(lossy.latency.faultSlow.p99Us).toBeGreaterThanOrEqual(retryMs * 1000);
    expect(clean.latency.faultSlow.p99Us).toBeLessThan(lossy.latency.faultSlow.p99Us);
    console.log(`loss 0.3, retry ${retryMs} ms: ${lossy.pager.lostFetches} lost of ${lossy.pager.copies} pages; slow p99 ${lossy.latency.faultSlow.p99Us} us vs ${clean.latency.faultSlow.p99Us} us`);
  });
});
