/**
 * James Houghton's KVM Userfault cover letter (v1 table: single uffd, MISSING vs KVM Userfault; docs/profiles.md): with many
 * vCPUs on one uffd, KVM Userfault demand-pages faster, because stage-2 faults never queue on the
 * uffd's wait queues. In Faultline that gap comes from the wait-queue contention model
 * (pager.uffd.waitQueue), whose costs are parameters; without it the designs run about even.
 */
import { describe, expect, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

const VCPUS = 16;
const PAGES = 200;
const rate = async (profile: string, layout: "single" | "per-vcpu") => {
  const r = await runToEnd(
    t.api,
    parseScenario({
      name: `designs-${profile}-${layout}`, durationMs: 60_000, kernel: { profile },
      vm: { vcpus: VCPUS, memslots: [{ slot: 0, size: VCPUS * PAGES * 4096 }] },
      pager: { latency: { us: 0 }, uffd: { layout, readers: 2, waitQueue: { lockUs: 10, perWaiterUs: 20 } } },
      workload: { pagesPerVcpu: PAGES },
    }),
  );
  expect(r.demandPaging.allDone).toBe(true);
  return r;
};

describe("designs under uffd wait-queue contention", () => {
  it("designs - 16 vCPUs on one uffd: kvm-userfault demand-pages faster than MISSING; one uffd per vCPU recovers most of it", async () => {
    const missing = await rate("6.13", "single");
    const perVcpu = await rate("6.13", "per-vcpu");
    const uf = await rate("kvm-userfault", "single");
    expect(uf.demandPaging.overallRate).toBeGreaterThan(missing.demandPaging.overallRate * 1.3);
    expect(perVcpu.demandPaging.overallRate).toBeGreaterThan(missing.demandPaging.overallRate * 1.3);
    // why: the single uffd's lock was held far longer with every vCPU's fault queued on it
    expect(missing.pager.waitQueueLockMs).toBeGreaterThan(uf.pager.waitQueueLockMs * 5);
    expect(uf.pager.faultEvents).toBe(0); // stage-2 faults never entered the uffd
  });
});
