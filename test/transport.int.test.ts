/**
 * The NATS layer on a real nats-server: an idempotent request runs once however often it is sent
 * (a duplicate joins the one in progress or gets the first outcome), retries outlive a responder
 * that comes late, and payloads far above max_payload go through both ways.
 */
import { Type } from "@sinclair/typebox";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { ReqStream, closeNats, connectNats, request, serve, transportEvents, type GiveUpEvent } from "@faultline/shared";

const log = pino({ level: "silent" });
let a: NatsConnection;
let b: NatsConnection;
beforeAll(async () => {
  a = await connectNats({ servers: inject("natsUrl"), name: "transport-a" });
  b = await connectNats({ servers: inject("natsUrl"), name: "transport-b" });
});
afterAll(async () => {
  await Promise.all([closeNats(a), closeNats(b)]);
});

const Body = Type.Object({ n: Type.Integer(), blob: Type.Optional(Type.String()) }, { additionalProperties: false });
const Reply = Type.Object({ calls: Type.Integer(), n: Type.Integer(), len: Type.Integer(), blob: Type.Optional(Type.String()) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("transport", () => {
  it("transport - the same request id runs once: a duplicate in flight joins it, a late one gets the first outcome", async () => {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sub = serve(b, log, "t.once", Body, async (m) => {
      calls++;
      await gate;
      return { calls, n: m.n, len: 0 };
    });
    await b.flush();
    const send = () => a.request("t.once", JSON.stringify({ rid: "s1 7 7", n: 7 }), { timeout: 5000 });
    const first = send();
    const second = send(); // arrives while the first is in progress
    await sleep(50);
    release();
    const [r1, r2] = await Promise.all([first, second]);
    const third = await send(); // after it completed
    expect([r1.json(), r2.json(), third.json()]).toEqual([{ calls: 1, n: 7, len: 0 }, { calls: 1, n: 7, len: 0 }, { calls: 1, n: 7, len: 0 }]);
    expect(calls).toBe(1);
    // a new id runs again
    const other = await request(a, "t.once", { n: 8 }, Reply, { timeoutMs: 5000, stream: new ReqStream("s2") });
    expect(other).toEqual({ calls: 2, n: 8, len: 0 });
    sub.unsubscribe();
  });

  it("transport - a request retries until a responder appears, and runs once", async () => {
    let calls = 0;
    const p = request(a, "t.late", { n: 1 }, Reply, { timeoutMs: 15_000, attemptMs: 300 });
    await sleep(700); // no responders yet: the request backs off and re-sends
    const sub = serve(b, log, "t.late", Body, (m) => ({ calls: ++calls, n: m.n, len: 0 }));
    await expect(p).resolves.toEqual({ calls: 1, n: 1, len: 0 });
    sub.unsubscribe();
  });

  it("transport - a body and a reply of several MB pass max_payload (chunked upload, blob reply)", async () => {
    const sub = serve(b, log, "t.big", Body, (m) => ({ calls: 1, n: m.n, len: m.blob!.length, blob: m.blob!.split("").reverse().join("") }));
    await b.flush();
    const max = a.info!.max_payload;
    const blob = Array.from({ length: 3 * max }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
    const r = await request(a, "t.big", { n: 3, blob }, Reply, { timeoutMs: 30_000 });
    expect(r.len).toBe(blob.length);
    expect(r.blob).toBe(blob.split("").reverse().join(""));
    sub.unsubscribe();
  });

  it("transport - a request that runs out of time fails with FL_ERR_TIMEOUT and is reported as given up", async () => {
    const seen: GiveUpEvent[] = [];
    const on = (e: GiveUpEvent) => seen.push(e);
    transportEvents.on("giveUp", on);
    const sub = serve(b, log, "t.slow", Body, () => new Promise(() => undefined)); // never answers
    await b.flush();
    await expect(request(a, "t.slow", { n: 1 }, Reply, { timeoutMs: 1200, attemptMs: 400 })).rejects.toMatchObject({ code: "FL_ERR_TIMEOUT" });
    transportEvents.off("giveUp", on);
    expect(seen.map((e) => [e.subject, e.code])).toEqual([["t.slow", "FL_ERR_TIMEOUT"]]);
    expect(seen[0]!.attempts).toBeGreaterThan(1);
    sub.unsubscribe();
  });
});
