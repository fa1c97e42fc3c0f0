/**
 * Chaos: every service can die, and NATS can go away, at any moment of a run. A run then either
 * completes correctly or ends `aborted` within the liveness bound, naming the lost service, with
 * everything the others gathered (`partial: true`). The stack (its own nats-server with JetStream,
 * so this file can kill and restart it) restarts killed services, and the next run completes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServer } from "../cli/src/index.ts";
import { seedScenario, useTestStack, waitFor } from "./helpers/stack.ts";

let nats: NatsServer;
/** the killed server's handle: its temp dir holds the store the restarted one uses, removed last */
let killed: NatsServer | null = null;
beforeAll(async () => {
  nats = await startNatsServer({ jetstream: true });
}, 60_000);
afterAll(async () => {
  await nats?.stop();
  await killed?.stop();
});
const LIVENESS_MS = 3000;
const t = useTestStack({ natsUrl: () => nats.url, env: { FAULTLINE_LIVENESS_MS: String(LIVENESS_MS) } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A run long enough to be killed in the middle of: 2 vCPUs demand-paging many pages. */
const long = (name: string) =>
  seedScenario({
    name, durationMs: 300_000, kernel: { profile: "6.13" }, vm: { vcpus: 2, memslots: [{ slot: 0, size: "4GiB" }] },
    pager: { latency: { us: 100 } }, signals: [], vmm: {}, workload: { pagesPerVcpu: 400_000 },
  });

async function healthy(svc: string, oldPid: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const pid = t.stack.pid(svc as "mmu");
    if (pid !== undefined && pid !== oldPid) {
      const h = await t.api.call<{ services: Record<string, { ok: boolean }> }>("GET", "/healthz").catch(() => null);
      if (h?.services[svc]?.ok) return;
    }
    await sleep(100);
  }
  throw new Error(`${svc} was not restarted`);
}

describe("chaos", () => {
  for (const svc of ["vcpu", "mmu", "pager", "signals"] as const) {
    it(`chaos - kill -9 ${svc} mid-run: aborted within the bound, FL_ERR_SERVICE_LOST naming ${svc}, partial result from the others`, async () => {
      const run = await t.api.createRun(long(`kill-${svc}`));
      await waitFor(t.api, run.id, (r) => r.status === "running" && r.vcpus.every((v) => v.pagesTouched > 50), "making progress");
      const pid = t.stack.pid(svc)!;
      const killedAt = performance.now();
      process.kill(pid, "SIGKILL");
      const end = await waitFor(t.api, run.id, (r) => r.status !== "running", "ended", 2000);
      const tookMs = performance.now() - killedAt;
      console.log(`chaos: kill -9 ${svc} → run ${end.status} after ${Math.round(tookMs)} ms (bound ${LIVENESS_MS} ms + reports)`);
      expect(end.status).toBe("aborted");
      expect(end.error).toMatchObject({ code: "FL_ERR_SERVICE_LOST", service: svc });
      expect(tookMs).toBeLessThan(LIVENESS_MS + 5000);
      const r = end.result!;
      expect(r.partial).toBe(true);
      expect(r.missing).toEqual([svc]);
      expect(r.testbed.incidents.map((i) => i.kind)).toContain("service-lost");
      // what the others gathered is there
      if (svc !== "vcpu") expect(r.vcpus.every((v) => v.pagesTouched > 50 && v.stat.pf_taken > 0)).toBe(true);
      if (svc !== "pager") expect(r.pager.copies).toBeGreaterThan(50);
      expect(Object.keys(r.testbed.services).sort()).toEqual(["api", "mmu", "pager", "signals", "vcpu"].filter((s) => s !== svc));
      // the stack restarts it; nothing of the old run is left on the survivors
      await healthy(svc, pid);
    }, 120_000);
  }

  it("chaos - nats-server killed for longer than the lease and restarted mid-run: completed, every page resolved once, the outage recorded", async () => {
    const pages = 6000;
    const run = await t.api.createRun(seedScenario({
      name: "nats-restart", durationMs: 300_000, vm: { vcpus: 2 }, pager: { latency: { us: 100 } }, signals: [], vmm: {}, workload: { pagesPerVcpu: pages },
    }));
    await waitFor(t.api, run.id, (r) => r.status === "running" && r.vcpus.every((v) => v.pagesTouched > 300), "making progress");
    const { port, storeDir } = nats;
    await nats.kill("SIGKILL");
    killed = nats;
    await sleep(6000); // longer than the lease (5 s) and the liveness bound (3 s): nobody may be judged meanwhile
    nats = await startNatsServer({ jetstream: true, port, ...(storeDir ? { storeDir } : {}) });
    const end = await t.api.waitRun(run.id);
    expect(end.status, JSON.stringify(end.error)).toBe("completed");
    const r = end.result!;
    expect(r.vcpus.map((v) => [v.state, v.pagesTouched])).toEqual([["done", pages], ["done", pages]]);
    // one UFFDIO_COPY per page: no fault was lost, none resolved twice
    expect(r.pager.copies).toBe(2 * pages);
    expect(r.pager.eexist).toBe(0);
    const kinds = r.testbed.incidents.map((i) => i.kind);
    expect(kinds).toContain("nats-disconnect");
    expect(kinds).toContain("nats-reconnect");
    const disc = r.testbed.incidents.find((i) => i.kind === "nats-disconnect")!;
    const reco = r.testbed.incidents.find((i) => i.kind === "nats-reconnect")!;
    expect(reco.atMs).toBeGreaterThan(disc.atMs);
    expect(r.testbed.warning).toMatch(/outage/);
  }, 180_000);

  it("chaos - after all that, a run completes on the restarted services", async () => {
    const run = await t.api.createRun(seedScenario({ name: "after-chaos", durationMs: 30_000, pager: { latency: { us: 0 } }, signals: [], vmm: {}, workload: { pagesPerVcpu: 500 } }));
    const end = await t.api.waitRun(run.id);
    expect(end.status, JSON.stringify(end.error)).toBe("completed");
    expect(end.result!.partial).toBe(false);
    expect(end.result!.vcpus.every((v) => v.state === "done" && v.pagesTouched === 500)).toBe(true);
  }, 60_000);
});
