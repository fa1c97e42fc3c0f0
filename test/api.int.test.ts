/** The control API over real services: health, OpenAPI, bad documents, live controls on a running VM. */
import { describe, expect, it } from "vitest";
import type { RunView } from "../cli/src/index.ts";
import { httpError, useTestStack, waitFor as waitForRun } from "./helpers/stack.ts";

const t = useTestStack();

const waitFor = (id: string, ok: (r: RunView) => boolean, what: string) => waitForRun(t.api, id, ok, what, 400);

describe("api", () => {
  it("api - /healthz reports every service reachable over NATS", async () => {
    const h = await t.api.call<{ status: string; services: Record<string, { ok: boolean }> }>("GET", "/healthz");
    expect(h.status).toBe("ok");
    expect(Object.keys(h.services).sort()).toEqual(["api", "mmu", "pager", "signals", "vcpu"]);
    expect(Object.values(h.services).every((s) => s.ok)).toBe(true);
  });

  it("api - OpenAPI 3.1 is served at /docs with every route", async () => {
    const doc = await t.api.call<{ openapi: string; paths: Record<string, unknown> }>("GET", "/docs/json");
    expect(doc.openapi).toBe("3.1.0");
    for (const p of ["/v1/runs", "/v1/runs/{id}", "/v1/runs/{id}/signals", "/v1/runs/{id}/memslots", "/v1/runs/{id}/pager/drop", "/v1/runs/{id}/pause", "/v1/runs/{id}/resume", "/v1/runs/{id}/pager/stall", "/v1/runs/{id}/pager/unstall", "/healthz"]) {
      expect(doc.paths).toHaveProperty([p]);
    }
  });

  it("api - an invalid scenario gets 400 naming the failing field (JSON and YAML)", async () => {
    const a = await httpError(t.api.createRun({ kernel: { profile: "5.4" } }));
    expect(a.status).toBe(400);
    expect(a.body).toMatchObject({ code: "FL_ERR_INVALID", path: "/kernel/profile" });
    const b = await httpError(t.api.call("POST", "/v1/runs", "vm:\n  vcpus: 2\n  colour: red\n", "application/yaml"));
    expect(b.status).toBe(400);
    expect(b.body.path).toBe("/vm/colour");
    const c = await httpError(t.api.createRun({ vm: { vcpus: 2 }, workload: { pagesPerVcpu: 10_000 } }));
    expect(c.body.path).toBe("/workload/pagesPerVcpu");
  });

  it("api - unknown runs are 404, bad control bodies are 400 with the field's path", async () => {
    expect((await httpError(t.api.getRun("nope"))).status).toBe(404);
    const e = await httpError(t.api.call("POST", "/v1/runs/nope/signals", { signal: "SIGFOO" }));
    expect(e.status).toBe(400);
    expect(e.body.path).toBe("/body/signal");
  });

  it("api - memslot delete and page drops on a running VM: zapped SPTEs, UFFD_EVENT_REMOVE, then MMIO exits", async () => {
    const run = await t.api.createRun({
      name: "memslots", durationMs: 30_000, kernel: { profile: "6.13" }, vm: { vcpus: 1, memslots: [{ slot: 0, size: "8MiB" }] },
      pager: { latency: { us: 0 } }, workload: { pagesPerVcpu: 2000 },
    });
    await waitFor(run.id, (r) => r.status === "running" && r.vcpus[0]!.pagesTouched > 20, "20 pages in");
    const dropped = await t.api.call<{ dropped: number }>("POST", `/v1/runs/${run.id}/pager/drop`, { gfns: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] });
    expect(dropped.dropped).toBe(10);
    const bad = await httpError(t.api.call("POST", `/v1/runs/${run.id}/memslots`, { op: "explode", slot: 0 }));
    expect(bad.body.path).toBe("/body/op");
    const del = await t.api.call<{ zapped: number }>("POST", `/v1/runs/${run.id}/memslots`, { op: "delete", slot: 0 });
    expect(del.zapped).toBeGreaterThan(10);
    const end = await t.api.waitRun(run.id);
    const r = end.result!;
    expect(r.pager.removes).toBe(10);
    expect(r.mmu.zapped).toBeGreaterThanOrEqual(10 + del.zapped);
    expect(r.vcpus[0]!.exits.KVM_EXIT_MMIO).toBeGreaterThan(0); // the rest of the pages have no memslot now
    expect(r.vcpus[0]!.state).toBe("done");
  });

  it("api - live controls: stall the pager, signal one vCPU, pause all, resume, unstall, SIGKILL; then controls get 409", async () => {
    const run = await t.api.createRun({
      name: "live", durationMs: 30_000, kernel: { profile: "6.2" }, vm: { vcpus: 2 },
      pager: { latency: { us: 0 } }, workload: { pagesPerVcpu: 8000 },
    });
    await waitFor(run.id, (r) => r.status === "running" && r.vcpus.every((v) => v.pagesTouched > 0), "making progress");
    const st = await t.api.call<{ stalled: boolean }>("POST", `/v1/runs/${run.id}/pager/stall`);
    expect(st.stalled).toBe(true);
    const sent = await t.api.call<{ sent: Array<{ vcpu: number }> }>("POST", `/v1/runs/${run.id}/signals`, { signal: "SIGUSR1", vcpus: 0 });
    expect(sent.sent.map((s) => s.vcpu)).toEqual([0]);
    await t.api.call("POST", `/v1/runs/${run.id}/pause`);
    await waitFor(run.id, (r) => r.vcpus.every((v) => v.state === "paused"), "paused");
    await t.api.call("POST", `/v1/runs/${run.id}/pager/unstall`);
    await t.api.call("POST", `/v1/runs/${run.id}/resume`);
    await waitFor(run.id, (r) => r.vcpus.every((v) => v.state === "running"), "running again");
    await t.api.call("POST", `/v1/runs/${run.id}/signals`, { signal: "SIGKILL" });
    const end = await t.api.waitRun(run.id);
    expect(end.status).toBe("completed");
    const r = end.result!;
    expect(r.vcpus.map((v) => v.state)).toEqual(["killed", "killed"]);
    const usr1 = r.vcpus[0]!.signals.find((s) => s.source === "api" && s.signal === "SIGUSR1")!;
    expect(usr1.outcome).toBe("KVM_EXIT_INTR");
    expect(r.pause!.completedAtMs).not.toBeNull();
    expect(r.pause!.resumedAtMs).not.toBeNull();
    const late = await httpError(t.api.call("POST", `/v1/runs/${run.id}/pause`));
    expect(late.status).toBe(409);
  });

  it("api - runs are listed newest first, a page at a time, and filtered by status", async () => {
    const small = { durationMs: 5000, pager: { latency: { us: 0 } }, workload: { pagesPerVcpu: 16 } };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await t.api.createRun({ ...small, name: `list-${i}` });
      ids.push(r.id);
      await t.api.waitRun(r.id);
    }
    const p1 = await t.api.call<{ runs: RunView[]; nextCursor: string | null }>("GET", "/v1/runs?limit=2");
    expect(p1.runs.map((r) => r.id)).toEqual([ids[2], ids[1]]);
    expect(p1.runs.every((r) => r.result === undefined)).toBe(true); // results only through GET /v1/runs/:id
    expect(p1.nextCursor).not.toBeNull();
    const p2 = await t.api.call<{ runs: RunView[]; nextCursor: string | null }>("GET", `/v1/runs?limit=2&cursor=${p1.nextCursor}`);
    expect(p2.runs[0]!.id).toBe(ids[0]);
    const done = await t.api.call<{ runs: RunView[] }>("GET", "/v1/runs?status=completed&limit=1000");
    expect(done.runs.every((r) => r.status === "completed")).toBe(true);
    expect(done.runs.map((r) => r.id)).toEqual(expect.arrayContaining(ids));
    const bad = await httpError(t.api.call("GET", "/v1/runs?status=happy"));
    expect(bad.status).toBe(400);
  });

  it("api - DELETE cancels a running run (torn down everywhere, partial result) and deletes an ended one", async () => {
    const run = await t.api.createRun({ name: "cancel-me", durationMs: 60_000, pager: { latency: { us: 0 } }, vm: { vcpus: 2 }, workload: { pagesPerVcpu: 8000 } });
    await waitFor(run.id, (r) => r.status === "running" && r.vcpus.every((v) => v.pagesTouched > 0), "making progress");
    const del = await t.api.call<{ status: string }>("DELETE", `/v1/runs/${run.id}`);
    expect(del.status).toBe("cancelled");
    const r = await t.api.getRun(run.id);
    expect(r.status).toBe("cancelled");
    expect(r.result!.partial).toBe(false); // every service reported; the run just did not finish
    expect(r.result!.testbed.incidents.map((i) => i.kind)).toContain("cancelled");
    expect(r.result!.vcpus.some((v) => v.state !== "done")).toBe(true);
    // torn down everywhere: no service holds the VM any more
    const h = await t.api.call<{ services: Record<string, { vms?: number }> }>("GET", "/healthz");
    for (const svc of ["vcpu", "mmu", "pager", "signals"]) expect(h.services[svc]!.vms, svc).toBe(0);
    const gone = await t.api.call<{ status: string }>("DELETE", `/v1/runs/${run.id}`);
    expect(gone.status).toBe("deleted");
    expect((await httpError(t.api.getRun(run.id))).status).toBe(404);
    expect((await httpError(t.api.call("DELETE", `/v1/runs/${run.id}`))).status).toBe(404);
  });
});
