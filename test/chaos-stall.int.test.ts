/**
 * Chaos that a run survives: a service frozen for 5 s (SIGSTOP, as a GC pause or a starved CPU would)
 * within a liveness bound set above it, and the api killed and restarted by the stack. The freeze must
 * show up as what it is, a testbed stall, never as a modelled page-in latency; runs recorded before
 * the api died are still served after it restarts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServer } from "../cli/src/index.ts";
import { runToEnd, seedScenario, useTestStack, waitFor } from "./helpers/stack.ts";

let nats: NatsServer;
beforeAll(async () => {
  nats = await startNatsServer({ jetstream: true }); // runs are kept in JetStream
}, 60_000);
afterAll(async () => {
  await nats?.stop();
});
const t = useTestStack({ natsUrl: () => nats.url, env: { FAULTLINE_LIVENESS_MS: "20000" } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("chaos, survived", () => {
  it("chaos - pager SIGSTOP for 5 s: completed; the freeze is a loop-stall incident and the samples across it are marked", async () => {
    const pages = 3000;
    const run = await t.api.createRun(seedScenario({
      name: "pager-sigstop", durationMs: 120_000, vm: { vcpus: 2 }, pager: { latency: { us: 200 } }, signals: [], vmm: {}, workload: { pagesPerVcpu: pages },
    }));
    await waitFor(t.api, run.id, (r) => r.status === "running" && r.vcpus.every((v) => v.pagesTouched > 200), "making progress");
    const pid = t.stack.pid("pager")!;
    process.kill(pid, "SIGSTOP");
    await sleep(5000);
    process.kill(pid, "SIGCONT");
    const end = await t.api.waitRun(run.id);
    expect(end.status, JSON.stringify(end.error)).toBe("completed");
    const r = end.result!;
    expect(r.vcpus.every((v) => v.state === "done" && v.pagesTouched === pages)).toBe(true);
    expect(r.pager.copies).toBe(2 * pages);
    const stall = r.testbed.incidents.find((i) => i.kind === "loop-stall" && i.service === "pager" && (i.durationMs ?? 0) >= 4000);
    expect(stall, JSON.stringify(r.testbed.incidents)).toBeDefined();
    // the faults in flight across the freeze took seconds: they are there, and marked as the testbed's
    expect(r.latency.faultSlow.maxUs).toBeGreaterThan(4_000_000);
    expect(r.latency.faultSlow.testbedStalled).toBeGreaterThanOrEqual(1);
    expect(r.testbed.warning).toMatch(/overlapped a testbed stall/);
    expect(r.testbed.services.pager!.loopDelay.maxMs).toBeGreaterThan(4000);
  }, 180_000);

  it("chaos - a signal whose way out crossed a frozen pager is marked as the testbed's, not read as a kernel latency", async () => {
    const run = await t.api.createRun(seedScenario({
      name: "sigusr1-across-sigstop", durationMs: 60_000, kernel: { profile: "6.2" }, vm: { vcpus: 1 },
      pager: { latency: { us: 200 }, stalls: [{ atMs: 0, forMs: 6000 }] }, workload: { pagesPerVcpu: 64 }, // blocked on its first page
      signals: [{ atMs: 2000, vcpus: 0, signal: "SIGUSR1" }], vmm: {},
    }));
    await waitFor(t.api, run.id, (r) => r.status === "running" && (r.elapsedMs ?? 0) >= 1000, "1 s in (blocked in the stall)");
    const pid = t.stack.pid("pager")!;
    process.kill(pid, "SIGSTOP"); // the signal (at 2 s) wakes the uffd waiter only when the pager runs again
    await waitFor(t.api, run.id, (r) => (r.elapsedMs ?? 0) >= 3000, "3 s in");
    process.kill(pid, "SIGCONT");
    const end = await t.api.waitRun(run.id);
    expect(end.status, JSON.stringify(end.error)).toBe("completed");
    const r = end.result!;
    const s = r.vcpus[0]!.signals.find((x) => x.source === "plan")!;
    expect(s).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "gup-eintr", testbedStalled: true });
    expect(s.latencyUs!).toBeGreaterThan(500_000); // what a reader would take for a pre-6.2 latency without the mark
    expect(r.latency.signalToExit.testbedStalled).toBeGreaterThanOrEqual(1);
    expect(r.testbed.warning).toMatch(/overlapped a testbed stall/);
  }, 180_000);

  it("chaos - api killed: restarted by the stack, earlier runs still served with their results; the one in flight ends aborted", async () => {
    const before = await runToEnd(t.api, seedScenario({ name: "before-api-death", durationMs: 30_000, pager: { latency: { us: 0 } }, signals: [], vmm: {}, workload: { pagesPerVcpu: 300 } }));
    const flying = await t.api.createRun(seedScenario({
      name: "in-flight", durationMs: 120_000, vm: { vcpus: 2, memslots: [{ slot: 0, size: "1GiB" }] }, pager: { latency: { us: 200 } }, signals: [], vmm: {}, workload: { pagesPerVcpu: 100_000 },
    }));
    await waitFor(t.api, flying.id, (r) => r.status === "running", "running");
    const pid = t.stack.pid("api")!;
    process.kill(pid, "SIGKILL");
    let again = null;
    for (let i = 0; i < 600 && !again; i++) {
      await sleep(100);
      again = await t.api.getRun(before.runId).catch(() => null);
    }
    expect(t.stack.pid("api")).not.toBe(pid);
    expect(again!.status).toBe("completed");
    expect(again!.result).toEqual(before);
    const lost = await t.api.getRun(flying.id);
    expect(lost.status).toBe("aborted");
    expect(lost.error).toMatchObject({ code: "FL_ERR_SERVICE_LOST", service: "api" });
    // the services tore the orphaned VM down when its lease lapsed
    for (let i = 0; i < 200; i++) {
      const h = await t.api.call<{ services: Record<string, { vms?: number }> }>("GET", "/healthz");
      if (["vcpu", "mmu", "pager", "signals"].every((s) => h.services[s]!.vms === 0)) return;
      await sleep(100);
    }
    throw new Error("the in-flight run's VM was never torn down");
  }, 180_000);
});
