/**
 * Malformed NATS messages sent straight to each service: a request is answered with an error
 * (micro-style headers) that names the field, an event is logged and dropped, a body naming another
 * VM than its subject is rejected, and the service keeps serving: its ping answers and runs complete.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { ClaimReply, ERROR_CODE_HEADER, ERROR_HEADER, FL_CODE_HEADER, PingReply, closeNats, connectNats, request, subjects } from "@faultline/shared";
import { runToEnd, seedScenario, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();
let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectNats({ servers: t.stack.natsUrl, name: "bad-input-test" });
});
afterAll(async () => {
  if (nc) await closeNats(nc);
});

async function raw(subject: string, payload: string) {
  const m = await nc.request(subject, payload, { timeout: 5000, headers: headers() });
  return { error: m.headers?.get(ERROR_HEADER), status: m.headers?.get(ERROR_CODE_HEADER), code: m.headers?.get(FL_CODE_HEADER), body: m.json<{ error: { path?: string } }>() };
}

async function claim(svc: "vcpu" | "mmu" | "pager" | "signals"): Promise<string> {
  return (await request(nc, subjects.claim(svc), { vm: "bad", trace: "t" }, ClaimReply, { timeoutMs: 5000 })).instance;
}

describe("bad input", () => {
  for (const svc of ["vcpu", "mmu", "pager", "signals"] as const) {
    it(`bad input ${svc} - non-JSON and schema-invalid lifecycle requests get an error naming the field; the service keeps serving`, async () => {
      const instance = await claim(svc);
      for (const s of [subjects.claim(svc), subjects.setup(svc, instance)]) {
        const a = await raw(s, "{not json");
        expect(a).toMatchObject({ status: "400", code: "FL_ERR_INVALID" });
        expect(a.error).toMatch(/not JSON/);
        const b = await raw(s, JSON.stringify({ vm: "bad", trace: "t1", extra: 1 }));
        expect(b.status).toBe("400");
        expect(b.body.error.path).toMatch(/^\//);
      }
      // events with garbage are dropped (no reply to give)
      nc.publish(subjects.heartbeat(svc), "garbage");
      nc.publish("fl.testbed.stall", "[]");
      await expect(request(nc, subjects.ping(svc), {}, PingReply, { timeoutMs: 2000 })).resolves.toMatchObject({ name: svc });
    });
  }

  it("bad input - a VM's subjects reject bodies that are invalid or name another VM, while the run goes on", async () => {
    const run = await t.api.createRun(seedScenario({ durationMs: 8000, pager: { latency: { us: 0 } }, signals: [], vmm: {}, workload: { pagesPerVcpu: 4000 } }));
    for (let i = 0; i < 200 && (await t.api.getRun(run.id)).status !== "running"; i++) await new Promise((r) => setTimeout(r, 50));
    const vm = run.id;
    for (const s of [subjects.fault(vm), subjects.gup(vm), subjects.stall(vm), subjects.send(vm), subjects.dequeue(vm), subjects.stop(vm)]) {
      const a = await raw(s, "{not json");
      expect(a).toMatchObject({ status: "400", code: "FL_ERR_INVALID" });
      const b = await raw(s, JSON.stringify({ vm: "other", trace: "t1", extra: 1 }));
      expect(b.status).toBe("400");
      expect(b.body.error.path).toMatch(/^\//);
    }
    const c = await raw(subjects.fault(vm), JSON.stringify({ vm: "someone-else", trace: "t", vcpu: 0, gfn: 1, write: false, site: "tdp", user: false }));
    expect(c).toMatchObject({ status: "400", code: "FL_ERR_INVALID" });
    expect(c.error).toMatch(/VM someone-else/);
    nc.publish(subjects.wake(vm), "garbage");
    nc.publish(subjects.resident(vm), JSON.stringify({ vm }));
    nc.publish(subjects.vcpuState(vm), "[]");
    const end = await t.api.waitRun(run.id);
    expect(end.status).toBe("completed");
    expect(end.result!.vcpus.every((v) => v.state === "done")).toBe(true);
  });

  it("bad input - a request for a VM nobody holds is FL_ERR_NO_RESPONDERS at once, not a hang", async () => {
    await expect(
      request(nc, subjects.fault("ghost"), { vm: "ghost", trace: "t", vcpu: 0, gfn: 1, write: false, site: "tdp" }, PingReply, { timeoutMs: 5000, retry: false }),
    ).rejects.toMatchObject({ code: "FL_ERR_NO_RESPONDERS" });
  });

  it("bad input - after all that, a full run still completes", async () => {
    const r = await runToEnd(t.api, seedScenario({ durationMs: 3000, pager: { latency: { us: 0 } }, signals: [], vmm: {}, workload: { pagesPerVcpu: 32 } }));
    expect(r.vcpus.every((v) => v.state === "done")).toBe(true);
  });
});
