import { Type } from "@sinclair/typebox";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { CancelledError, NoRespondersError, NotFoundError, RemoteError, RequestTimeoutError, ValidationError } from "./errors.ts";
import { MemoryBus, subjectMatches } from "./memory-bus.ts";

const log = pino({ level: "silent" });
const Num = Type.Object({ n: Type.Integer() });
const tick = () => new Promise<void>((r) => setImmediate(r));
async function settle(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

let bus = new MemoryBus();
afterEach(async () => {
  await bus.close();
  bus = new MemoryBus();
});

describe("memory bus", () => {
  it("memory bus - subjects match with NATS semantics for * and >", () => {
    expect(subjectMatches("fl.hb.*", "fl.hb.vcpu")).toBe(true);
    expect(subjectMatches("fl.hb.*", "fl.hb.vcpu.x")).toBe(false);
    expect(subjectMatches("fl.hb.*", "fl.hb")).toBe(false);
    expect(subjectMatches("fl.>", "fl.vm.a.b")).toBe(true);
    expect(subjectMatches("fl.>", "fl")).toBe(false);
    expect(subjectMatches("fl.*.x", "fl.a.x")).toBe(true);
    expect(subjectMatches("fl.*.x", "fl.a.y")).toBe(false);
    expect(subjectMatches("fl.a", "fl.a")).toBe(true);
    expect(subjectMatches("fl.a", "fl.a.b")).toBe(false);
  });

  it("memory bus - an event reaches every plain subscriber and one member of each queue group", async () => {
    const got: string[] = [];
    bus.listen(log, "e.*", Num, () => got.push("plain1"));
    bus.listen(log, "e.>", Num, () => got.push("plain2"));
    bus.listen(log, "e.x", Num, () => got.push("g1"), { queue: "g" });
    bus.listen(log, "e.x", Num, () => got.push("g2"), { queue: "g" });
    for (let i = 0; i < 4; i++) bus.publish("e.x", { n: i });
    await settle();
    expect(got.filter((x) => x === "plain1")).toHaveLength(4);
    expect(got.filter((x) => x === "plain2")).toHaveLength(4);
    expect(got.filter((x) => x === "g1" || x === "g2")).toHaveLength(4);
    expect(got).toContain("g1");
    expect(got).toContain("g2");
  });

  it("memory bus - delivery is asynchronous: a handler never runs inside publish or request", async () => {
    let ran = false;
    bus.listen(log, "a", Num, () => (ran = true));
    bus.serve(log, "r", Num, (b) => ({ n: b.n + 1 }));
    bus.publish("a", { n: 1 });
    const p = bus.request("r", { n: 1 }, Num, { timeoutMs: 1000 });
    expect(ran).toBe(false);
    expect(await p).toEqual({ n: 2 });
    expect(ran).toBe(true);
  });

  it("memory bus - bodies are JSON on the wire and validated on delivery: a bad body is a remote validation error", async () => {
    bus.serve(log, "r", Num, (b) => ({ n: b.n * 2 }));
    const err = await bus.request("r", { n: "x" }, Num, { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).code).toBe(new ValidationError("x", "", "y").code);
    // undefined fields vanish as they do through JSON.stringify
    bus.serve(log, "o", Type.Object({ a: Type.Optional(Type.Number()) }, { additionalProperties: false }), (b) => ({ n: Object.keys(b).length }));
    expect(await bus.request("o", { a: undefined }, Num, { timeoutMs: 1000 })).toEqual({ n: 0 });
  });

  it("memory bus - a handler's typed error reaches the requester as RemoteError with the same code", async () => {
    bus.serve(log, "r", Num, () => {
      throw new NotFoundError("run", "r1");
    });
    const err = await bus.request("r", { n: 1 }, Num, { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).code).toBe("FL_ERR_NOT_FOUND");
    // an invalid reply fails validation on the requester's side
    bus.serve(log, "bad", Num, () => ({ n: "no" }));
    await expect(bus.request("bad", { n: 1 }, Num, { timeoutMs: 1000 })).rejects.toBeInstanceOf(ValidationError);
  });

  it("memory bus - no responders without retry fails at once; with retry it waits for a late server", async () => {
    await expect(bus.request("none", { n: 1 }, Num, { timeoutMs: 5000, retry: false })).rejects.toBeInstanceOf(NoRespondersError);
    const p = bus.request("late", { n: 1 }, Num, { timeoutMs: 30_000 });
    await settle(3);
    bus.serve(log, "late", Num, (b) => b);
    expect(await p).toEqual({ n: 1 });
    await expect(bus.request("none", { n: 1 }, Num, { timeoutMs: 60 })).rejects.toBeInstanceOf(NoRespondersError);
  });

  it("memory bus - a request nobody answers times out; an aborted one is cancelled", async () => {
    bus.serve(log, "slow", Num, () => new Promise(() => undefined));
    await expect(bus.request("slow", { n: 1 }, Num, { timeoutMs: 50 })).rejects.toBeInstanceOf(RequestTimeoutError);
    const ac = new AbortController();
    const p = bus.request("slow", { n: 1 }, Num, { timeoutMs: 30_000, signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(CancelledError);
  });

  it("memory bus - unsubscribed and closed: nothing more is delivered, status ends", async () => {
    let n = 0;
    const sub = bus.listen(log, "a", Num, () => n++);
    bus.publish("a", { n: 1 });
    sub.unsubscribe();
    await settle();
    expect(n).toBe(0);
    const seen: string[] = [];
    const watching = (async () => {
      for await (const s of bus.status()) seen.push(s.type);
    })();
    await tick();
    bus.announce({ type: "disconnect", server: "memory" });
    bus.announce({ type: "reconnect", server: "memory" });
    await bus.close();
    await watching;
    expect(seen).toEqual(["disconnect", "reconnect"]);
    expect(bus.isClosed()).toBe(true);
    expect(bus.subscriptions).toBe(0);
  });
});
