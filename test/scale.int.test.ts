/**
 * Scale end to end on a real stack: many vCPUs, and a memslot far larger than the pages touched.
 * Each per-page structure keeps ranges and each workload is built from the vCPU's own pages, so
 * both complete; no time windows, only outcomes.
 */
import { describe, expect, it } from "vitest";
import { ApiError } from "../cli/src/index.ts";
import { FAULTLINE_MAX_ACCESSES, parseScenario } from "@faultline/shared";
import { buildWorkload } from "../services/vcpu/src/workload.ts";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

async function health(): Promise<{ status: number; body: { services: Record<string, { ok: boolean }> } }> {
  const res = await fetch(`${t.stack.apiUrl}/healthz`);
  return { status: res.status, body: (await res.json()) as { services: Record<string, { ok: boolean }> } };
}

describe("scale", () => {
  it("scale - 256 vCPUs x 1M pages is refused up front with the budget named, and the stack stays up", async () => {
    const doc = { name: "scale-too-big", vm: { vcpus: 256, memslots: [{ slot: 0, size: "4096GiB" }] }, workload: { pagesPerVcpu: 1_048_576 } };
    const err = await t.api.createRun(doc).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    expect((err as ApiError).body).toMatchObject({ code: "FL_ERR_BUDGET", path: "/workload/pagesPerVcpu" });
    expect((err as ApiError).body.message).toContain(`exceeds the budget of ${FAULTLINE_MAX_ACCESSES} (FAULTLINE_MAX_ACCESSES)`);
    expect((await health()).status).toBe(200);
  });

  it("scale - 256 vCPUs x 1k pages completes", { timeout: 300_000 }, async () => {
    const s = parseScenario({
      name: "scale-256x1k", durationMs: 240_000, vm: { vcpus: 256, memslots: [{ slot: 0, size: "1GiB" }] },
      pager: { latency: { us: 0 } }, workload: { pagesPerVcpu: 1024 },
    });
    const r = await runToEnd(t.api, s);
    expect(r.vcpus).toHaveLength(256);
    expect(r.vcpus.filter((v) => v.state !== "done" || v.error !== null)).toEqual([]);
    expect(r.vcpus.reduce((n, v) => n + v.pagesTouched, 0)).toBe(256 * 1024);
    expect(r.pager.copies).toBe(256 * 1024);
  });

  it("scale - wp mode on a 256 GiB memslot completes", { timeout: 180_000 }, async () => {
    const s = parseScenario({
      name: "scale-wp-256g", durationMs: 120_000, vm: { memslots: [{ slot: 0, size: "256GiB" }] },
      pager: { mode: "wp", latency: { us: 0 } }, workload: { pagesPerVcpu: 600, writeRatio: 0.5 },
    });
    const writes = buildWorkload(s, 0).toArray().filter((a) => a.write).length;
    expect(writes).toBeGreaterThan(200);
    const run = await t.api.createRun(s);
    // every service answers its ping while the 256 GiB memslot is set up and the run goes on
    const h = await health();
    expect(h.body.services).toMatchObject({ mmu: { ok: true }, pager: { ok: true }, vcpu: { ok: true } });
    const done = await t.api.waitRun(run.id);
    expect(done.status).toBe("completed");
    const r = done.result!;
    expect(r.vcpus[0]!.pagesTouched).toBe(600);
    expect(r.pager.writeprotects).toBe(writes);
    expect(r.pager.copies).toBe(0);
    expect(r.pager.resident).toBe((256 * 2 ** 30) / 4096);
    expect((await health()).status).toBe(200);
  });

  it("scale - 64 vCPUs in a 20 s pre-6.2 stall with pause_all_vcpus: the signals report passes max_payload", { timeout: 180_000 }, async () => {
    const s = parseScenario({
      name: "scale-64-stall", durationMs: 60_000, kernel: { profile: "pre-6.2" }, vm: { vcpus: 64, memslots: [{ slot: 0, size: "1GiB" }] },
      pager: { latency: { us: 100 }, stalls: [{ atMs: 50, forMs: 20_000 }] }, workload: { pagesPerVcpu: 64 },
      vmm: { pauseAllAtMs: 200, resumeAtMs: 21_000 },
      // 300 SIGUSR1 to every vCPU while it sleeps TASK_KILLABLE: one stays pending, the rest coalesce (legacy_queue);
      // 19,200 records make the signals report bigger than one NATS message
      signals: Array.from({ length: 300 }, (_, i) => ({ atMs: 300 + i * 10, vcpus: "all", signal: "SIGUSR1" })),
    });
    const r = await runToEnd(t.api, s);
    expect(JSON.stringify(r).length).toBeGreaterThan(1024 * 1024); // bigger than one NATS message
    const planned = r.vcpus.flatMap((v) => v.signals.filter((x) => x.source === "plan"));
    expect(planned).toHaveLength(64 * 300);
    expect(planned.filter((x) => x.outcome === "coalesced").length).toBeGreaterThanOrEqual(64 * 298);
    expect(r.vcpus.filter((v) => v.state !== "done")).toEqual([]);
    expect(r.pause!.completedAtMs).not.toBeNull();
    expect(r.pause!.completedAtMs!).toBeGreaterThan(20_000); // TASK_KILLABLE: only after the stall
    // cpus_kick_thread drops a kick while thread_kicked is set: one kick each, one more after a park at most
    const kicks = r.vcpus.reduce((n, v) => n + v.signals.filter((x) => x.source === "pause-kick").length, 0);
    expect(kicks).toBeGreaterThanOrEqual(64);
    expect(kicks).toBeLessThanOrEqual(128);
  });

  it("scale - 10,000 planned signals: every one recorded with its outcome", { timeout: 180_000 }, async () => {
    const signals = Array.from({ length: 10_000 }, (_, i) => ({ atMs: 10 + Math.floor(i / 2), vcpus: i % 2, signal: "SIGUSR1" }));
    const s = parseScenario({
      name: "scale-10k-signals", durationMs: 20_000, kernel: { profile: "6.13" }, vm: { vcpus: 2 }, pager: { latency: { us: 0 } },
      workload: { pagesPerVcpu: 2000 }, signals,
    });
    const r = await runToEnd(t.api, s);
    const recs = r.vcpus.flatMap((v) => v.signals);
    expect(recs).toHaveLength(10_000);
    expect(recs.filter((x) => x.outcome === "pending" || x.outcome === "ignored")).toEqual([]);
    expect(r.vcpus.every((v) => v.state === "done" && v.pagesTouched === 2000)).toBe(true);
  });
});
