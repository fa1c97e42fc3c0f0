/**
 * The stack in one process on a MemoryBus (test/helpers/memory-stack.ts): the seed scenarios, SIGKILL
 * and a lost service, with the outcomes the NATS integration tests assert (test/seed.int.test.ts).
 * No nats-server: the same service definitions, host lifecycle and run driver, another transport.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Result } from "@faultline/shared";
import { completed, startMemoryStack, type MemoryStack } from "./helpers/memory-stack.ts";
import { seedScenario } from "./helpers/stack.ts";
import { STALL_END_MS, expectPre62, planned } from "./helpers/seed-expect.ts";


/**
 * The seed scenario with its stall moved from 100 ms to 0 ms (same end, 2100 ms). In one process a
 * fault costs far less than over NATS, so 256 pages at 200 µs can all be in before 100 ms, and the
 * SIGUSR1 at 400 ms would find a halted vCPU: from 0 ms every vCPU is blocked on its first page
 * whatever the machine's speed.
 */
const seed = (over: Record<string, unknown> = {}) => seedScenario({ pager: { latency: { us: 200 }, stalls: [{ atMs: 0, forMs: STALL_END_MS }] }, ...over });

let stack: MemoryStack | null = null;
afterEach(async () => {
  await stack?.stop();
  stack = null;
});

describe("memory stack", () => {
  it("memory stack - seed 6.2: SIGUSR1 ends every blocked KVM_RUN with KVM_EXIT_INTR via gup-eintr, the pause completes, all vCPUs finish after resume", { timeout: 60_000 }, async () => {
    stack = await startMemoryStack();
    const r = completed(await stack.run(seed({ kernel: { profile: "6.2" } })));
    for (const v of r.vcpus) {
      expect(planned(r, v.id)).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "gup-eintr" });
      expect(v.stat.signal_exits).toBeGreaterThanOrEqual(1);
      expect(v.exits.KVM_EXIT_INTR).toBeGreaterThanOrEqual(1);
      expect(v.state).toBe("done");
      expect(v.pagesTouched).toBe(256);
      expect(v.stat.pf_taken).toBe(256 + 1);
    }
    expect(r.pause!.completedAtMs).not.toBeNull();
    // ordering, not a window: the pause completed before the stall ended, and resume came after it
    expect(r.pause!.completedAtMs!).toBeLessThan(STALL_END_MS);
    expect(r.pause!.resumedAtMs!).toBeGreaterThanOrEqual(2500);
    expect(r.demandPaging.allDone).toBe(true);
  });

  it("memory stack - seed pre-6.2: SIGUSR1 is ignored during the stall and exits by the pre-entry check after the page arrives", { timeout: 60_000 }, async () => {
    stack = await startMemoryStack();
    const r = completed(await stack.run(seed({ kernel: { profile: "pre-6.2" } })));
    expectPre62(r);
  });

  it("memory stack - SIGKILL during the stall kills every vCPU of the VM without waiting for the page", { timeout: 60_000 }, async () => {
    stack = await startMemoryStack();
    const r = completed(await stack.run(seed({ kernel: { profile: "6.2" }, vm: { vcpus: 4 }, signals: [{ atMs: 400, vcpus: 0, signal: "SIGKILL" }], vmm: {} })));
    expect(r.vcpus.map((v) => v.state)).toEqual(["killed", "killed", "killed", "killed"]);
    expect(planned(r, 0).outcome).toBe("killed");
    expect(r.durationMs).toBeLessThan(STALL_END_MS); // ended before the stall did
  });

  it("memory stack - a service stopped mid-run aborts the run with FL_ERR_SERVICE_LOST naming it", { timeout: 60_000 }, async () => {
    stack = await startMemoryStack({ livenessMs: 1000 });
    const run = stack.runs.start(seed({ kernel: { profile: "6.2" }, durationMs: 30_000, pager: { latency: { us: 200 }, stalls: [{ atMs: 0, forMs: 30_000 }] } }));
    for (let i = 0; i < 2000 && run.status === "starting"; i++) await new Promise((r) => setTimeout(r, 10));
    expect(run.status).toBe("running");
    await stack.services.pager.stop();
    await run.done;
    const r = await stack.runs.get(run.id);
    expect(r.status).toBe("aborted");
    expect(r.error).toMatchObject({ code: "FL_ERR_SERVICE_LOST", service: "pager" });
    expect(r.error!.message).toContain(stack.instances.pager);
    // the others still answered: only the lost service's report is missing
    expect(r.result!.partial).toBe(true);
    for (const svc of ["vcpu", "mmu", "signals"] as const) expect(stack.services[svc].vms()).toBe(0);
  });

  it("memory stack - runs in progress are bounded together: one more over the budget is FL_ERR_BUSY (429) until one ends", { timeout: 60_000 }, async () => {
    stack = await startMemoryStack({ maxActiveAccesses: 1000 });
    const long = seed({ name: "holds-600", vm: { vcpus: 2 }, workload: { pagesPerVcpu: 300 }, signals: [], vmm: {}, durationMs: 20_000 });
    const first = stack.runs.start(long);
    expect(() => stack!.runs.start(seed({ name: "needs-600", vm: { vcpus: 2 }, workload: { pagesPerVcpu: 300 }, signals: [], vmm: {} })))
      .toThrow(expect.objectContaining({ code: "FL_ERR_BUSY", status: 429 }));
    await stack.runs.remove(first.id); // cancel it: the budget is free again
    const next = stack.runs.start(seed({ name: "fits-now", vm: { vcpus: 2 }, workload: { pagesPerVcpu: 300 }, signals: [], vmm: {}, pager: { latency: { us: 0 } } }));
    await next.done;
    expect((await stack.runs.get(next.id)).status).toBe("completed");
  });
});
