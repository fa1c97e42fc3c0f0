/**
 * Malformed NATS messages sent straight to each service: a request is answered with an error
 * (micro-style headers) that names the field, an event is logged and dropped, and the service keeps
 * serving: its ping answers and a full run still completes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { ERROR_CODE_HEADER, ERROR_HEADER, FL_CODE_HEADER, PingReply, closeNats, connectNats, request, subjects } from "../shared/src/index.ts";
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

describe("bad input", () => {
  const requestSubjects = {
    vcpu: [subjects.setup("bad", "vcpu"), subjects.stop("bad")],
    mmu: [subjects.setup("bad", "mmu"), subjects.fault("bad")],
    pager: [subjects.setup("bad", "pager"), subjects.gup("bad"), subjects.stall("bad")],
    signals: [subjects.setup("bad", "signals"), subjects.send("bad"), subjects.dequeue("bad")],
  };
  for (const [svc, subs] of Object.entries(requestSubjects)) {
    it(`bad input ${svc} - non-JSON and schema-invalid requests get an error naming the field; the service keeps serving`, async () => {
      for (const s of subs) {
        const a = await raw(s, "{not json");
        expect(a).toMatchObject({ status: "400", code: "FL_ERR_INVALID" });
        expect(a.error).toMatch(/not JSON/);
        const b = await raw(s, JSON.stringify({ vm: "bad", trace: "t1", extra: 1 }));
        expect(b.status).toBe("400");
        expect(b.body.error.path).toMatch(/^\//);
      }
      // an event with garbage is dropped (no reply to give)
      nc.publish(subjects.wake("bad"), "garbage");
      nc.publish(subjects.resident("bad"), JSON.stringify({ vm: "bad" }));
      nc.publish(subjects.vcpuState("bad"), "[]");
      await expect(request(nc, subjects.ping(svc as "vcpu"), {}, PingReply, { timeoutMs: 2000 })).resolves.toMatchObject({ name: svc });
    });
  }

  it("bad input - a well-formed request for an unknown VM is FL_ERR_NOT_FOUND, not a hang", async () => {
    const r = await raw(subjects.fault("ghost"), JSON.stringify({ vm: "ghost", trace: "t", vcpu: 0, gfn: 1, write: false, site: "tdp" }));
    expect(r.code).toBe("FL_ERR_NOT_FOUND");
  });

  it("bad input - after all that, a full run still completes", async () => {
    const r = await runToEnd(t.api, seedScenario({ durationMs: 3000, pager: { latency: { us: 0 } }, signals: [], vmm: {}, workload: { pagesPerVcpu: 32 } }));
    expect(r.vcpus.every((v) => v.state === "done")).toBe(true);
  });
});
