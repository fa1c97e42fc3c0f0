/**
 * The live vCPU view of GET /v1/runs/:id on the real services, while things happen: blocked
 * TASK_KILLABLE in a pre-6.2 stall, spinning in an emulated access with SIGUSR1 pending, halted in
 * the async-PF artificial halt, paused; and at the end the live view says what the result says.
 */
import { describe, expect, it } from "vitest";
import type { RunView } from "../cli/src/index.ts";
import { useTestStack, waitFor as waitForRun } from "./helpers/stack.ts";

const t = useTestStack();

const waitFor = (id: string, ok: (r: RunView) => boolean, what: string) => waitForRun(t.api, id, ok, what, 600);
const states = (r: RunView) => r.vcpus.map((v) => v.state);

/** After the end, GET's vCPUs are the result's: state, pages, where they wait. */
function expectLiveMatchesResult(r: RunView): void {
  expect(r.result).not.toBeNull();
  expect(r.vcpus.map((v) => ({ state: v.state, pagesTouched: v.pagesTouched, blockedIn: v.blockedIn })))
    .toEqual(r.result!.vcpus.map((v) => ({ state: v.state, pagesTouched: v.pagesTouched, blockedIn: v.blockedIn })));
}

describe("live view", () => {
  it("live view - GET /v1/runs/:id documents each vCPU's state, pages and where it waits (OpenAPI)", async () => {
    type S = { properties: Record<string, S>; items: S; anyOf?: Array<{ const?: string; enum?: string[] }> };
    const doc = await t.api.call<{ paths: Record<string, { get: { responses: Record<string, { content: Record<string, { schema: S }> }> } }> }>("GET", "/docs/json");
    const vcpu = doc.paths["/v1/runs/{id}"]!.get.responses["200"]!.content["application/json"]!.schema.properties.vcpus!.items;
    expect(Object.keys(vcpu.properties).sort()).toEqual(["blockedIn", "pagesTouched", "state"]);
    expect(vcpu.properties.state!.anyOf!.flatMap((x) => x.enum ?? [x.const])).toEqual(expect.arrayContaining(["blocked", "spinning", "halted", "paused"]));
  });

  it("live view - a pre-6.2 stall shows the vCPUs blocked TASK_KILLABLE while running; a pause shows paused once the pages arrive", async () => {
    const run = await t.api.createRun({
      name: "live-pre-6.2", durationMs: 60_000, kernel: { profile: "pre-6.2" }, vm: { vcpus: 2 },
      pager: { latency: { us: 200 } }, workload: { pagesPerVcpu: 4000 },
    });
    await waitFor(run.id, (r) => r.status === "running" && r.vcpus.every((v) => v.pagesTouched > 0), "making progress");
    await t.api.call("POST", `/v1/runs/${run.id}/pager/stall`);
    const blocked = await waitFor(run.id, (r) => r.vcpus.every((v) => v.state === "blocked"), "blocked in the stall");
    expect(blocked.status).toBe("running");
    for (const v of blocked.vcpus) expect(v.blockedIn).toMatchObject({ site: "tdp", waitState: "TASK_KILLABLE" });
    // pause_all_vcpus: SIG_IPI cannot wake a TASK_KILLABLE sleeper, so they stay blocked while the source is stalled
    await t.api.call("POST", `/v1/runs/${run.id}/pause`);
    const stillBlocked = await t.api.getRun(run.id);
    expect(states(stillBlocked)).toEqual(["blocked", "blocked"]);
    expect(stillBlocked.vcpus.map((v) => v.blockedIn?.gfn)).toEqual(blocked.vcpus.map((v) => v.blockedIn?.gfn));
    await t.api.call("POST", `/v1/runs/${run.id}/pager/unstall`);
    const paused = await waitFor(run.id, (r) => r.vcpus.every((v) => v.state === "paused"), "paused after the pages arrived");
    expect(paused.vcpus.every((v) => v.blockedIn === null)).toBe(true);
    await t.api.call("POST", `/v1/runs/${run.id}/resume`);
    const end = await t.api.waitRun(run.id);
    expect(end.status).toBe("completed");
    expect(states(end)).toEqual(["done", "done"]);
    expectLiveMatchesResult(end);
    const d = end.result!.demandPaging;
    expect(d.allDone).toBe(true);
    expect(d.pausedS!).toBeGreaterThan(0); // the pause was taken out of the guest execution time
  });

  it("live view - an emulated access with SIGUSR1 pending shows spinning, and a run that ends inside the stall ends spinning", async () => {
    const run = await t.api.createRun({
      name: "live-spin", durationMs: 60_000, kernel: { profile: "6.13" }, vm: { vcpus: 2 },
      pager: { latency: { us: 200 } }, workload: { pagesPerVcpu: 4000, site: "emulated" },
    });
    await waitFor(run.id, (r) => r.status === "running" && r.vcpus.every((v) => v.pagesTouched > 0), "making progress");
    await t.api.call("POST", `/v1/runs/${run.id}/pager/stall`);
    const blocked = await waitFor(run.id, (r) => r.vcpus.every((v) => v.state === "blocked"), "blocked in the stall");
    for (const v of blocked.vcpus) expect(v.blockedIn).toMatchObject({ site: "emulated", waitState: "TASK_INTERRUPTIBLE" });
    await t.api.call("POST", `/v1/runs/${run.id}/signals`, { signal: "SIGUSR1" });
    const spinning = await waitFor(run.id, (r) => r.vcpus.every((v) => v.state === "spinning"), "spinning");
    for (const v of spinning.vcpus) expect(v.blockedIn).toMatchObject({ site: "emulated", waitState: "SPINNING" });
    const last = await t.api.getRun(run.id);
    await t.api.call("DELETE", `/v1/runs/${run.id}`); // ends inside the stall
    const end = await t.api.getRun(run.id);
    expect(end.status).toBe("cancelled");
    expect(end.result!.vcpus.map((v) => v.state)).toEqual(["spinning", "spinning"]);
    // what the live view showed before the end is what the result found, page and all
    expect(end.result!.vcpus.map((v) => [v.blockedIn?.site, v.blockedIn?.gfn, v.blockedIn?.waitState]))
      .toEqual(last.vcpus.map((v) => [v.blockedIn?.site, v.blockedIn?.gfn, v.blockedIn?.waitState]));
    expectLiveMatchesResult(end);
  });

  it("live view - the async-PF artificial halt shows halted in kvm_vcpu_block", async () => {
    const run = await t.api.createRun({
      name: "live-apf-halt", durationMs: 60_000, kernel: { profile: "6.13", asyncPf: true }, vm: { vcpus: 2, guest: { pvAsyncPf: false, interruptsEnabled: true } },
      pager: { latency: { us: 200 }, stalls: [{ atMs: 0, forMs: 60_000 }] }, workload: { pagesPerVcpu: 32 },
    });
    const halted = await waitFor(run.id, (r) => r.status === "running" && r.vcpus.every((v) => v.state === "halted"), "halted");
    for (const v of halted.vcpus) expect(v.blockedIn).toMatchObject({ site: "apf-halt", waitState: "TASK_INTERRUPTIBLE" });
    await t.api.call("DELETE", `/v1/runs/${run.id}`);
    const end = await t.api.getRun(run.id);
    expect(end.result!.vcpus.map((v) => v.state)).toEqual(["halted", "halted"]);
    expectLiveMatchesResult(end);
  });
});
