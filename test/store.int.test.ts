/**
 * The run store against real nats-servers: one with JetStream for this file (the suite's server may
 * have none), a plain one for the fallback, and one restarted on the same store dir.
 */
import { Kvm } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startNatsServer, type NatsServer } from "../cli/src/nats-server.ts";
import { closeNats, connectNats, parseScenario, ValidationError } from "@faultline/shared";
import { MemoryRunStore, openRunStore, StoreError, type RunRecord, type RunStore } from "../services/api/src/store.ts";

type Line = { level: number; msg: string; [k: string]: unknown };

/** A logger whose lines the test can read. */
function capture() {
  const lines: Line[] = [];
  const log = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  return { log, lines, warns: () => lines.filter((l) => l.level === 40) };
}

const scenario = parseScenario({ name: "store-test" });
const T0 = Date.UTC(2026, 0, 1);

/** Run ids as the api makes them; `n` orders them (larger = newer). */
function runId(n: number): string {
  return `r${(T0 + n).toString(36)}${randomBytes(3).toString("hex")}`;
}

function record(id: string, status: RunRecord["status"] = "completed"): RunRecord {
  return {
    id, status, scenario, createdAt: new Date().toISOString(), t0: status === "starting" ? null : T0,
    endedAt: status === "starting" || status === "running" ? null : new Date().toISOString(),
    error: status === "failed" ? { code: "FL_ERR_TIMEOUT", message: "no reply", service: "pager" } : null,
    vcpus: [{ state: "done", pagesTouched: 42 }],
  };
}

/** Every test gets its own buckets on the shared JetStream server. */
const prefix = () => `t${randomBytes(4).toString("hex")}-`;

let js: NatsServer;
const conns: NatsConnection[] = [];
async function connect(url = js.url): Promise<NatsConnection> {
  const nc = await connectNats({ servers: url, name: "store-test" });
  conns.push(nc);
  return nc;
}

beforeAll(async () => {
  js = await startNatsServer({ jetstream: true });
});

afterAll(async () => {
  await Promise.all(conns.map((nc) => closeNats(nc)));
  await js?.stop();
});

describe("store", () => {
  test("store - a scenario larger than one NATS message is kept whole (object store), read back after a reopen, deleted with its run", async () => {
    const { log } = capture();
    const p = prefix();
    const big = parseScenario({
      name: "big", vm: { memslots: [{ slot: 0, size: "4GiB" }] },
      pager: { drops: Array.from({ length: 4 }, (_, k) => ({ atMs: k, gfns: Array.from({ length: 60_000 }, (_, i) => 100_000 + k * 60_000 + i) })) },
    });
    expect(JSON.stringify(big).length).toBeGreaterThan(1024 * 1024);
    const s1 = await openRunStore(await connect(), { log, prefix: p });
    const id = runId(1);
    await s1.put({ ...record(id, "running"), scenario: big });
    await s1.put({ ...record(id, "completed"), scenario: big }); // a status change re-puts the record
    expect((await s1.get(id))!.scenario).toEqual(big);
    await s1.close();
    const s2 = await openRunStore(await connect(), { log, prefix: p });
    expect((await s2.list({ limit: 10 })).runs.map((r) => [r.id, r.status, r.scenario.pager.drops.length])).toEqual([[id, "completed", 4]]);
    expect((await s2.get(id))!.scenario).toEqual(big);
    expect(await s2.delete(id)).toBe(true);
    expect(await s2.get(id)).toBeNull();
    expect(await s2.delete(id)).toBe(false); // nothing left, and no marker written for a key that is gone
  });

  test("store - a record and a 5 MB result survive a new connection", async () => {
    const { log } = capture();
    const p = prefix();
    const nc1 = await connect();
    const s1 = await openRunStore(nc1, { log, prefix: p });
    expect(s1.kind).toBe("jetstream");
    const id = runId(1);
    const rec = record(id, "failed");
    const result = { runId: id, samples: Array.from({ length: 80_000 }, (_, i) => ({ i, v: randomBytes(24).toString("hex") })) };
    expect(JSON.stringify(result).length).toBeGreaterThan(5 * 1024 * 1024);
    await s1.put(rec);
    await s1.putResult(id, result);
    await s1.close();
    await closeNats(nc1);

    const s2 = await openRunStore(await connect(), { log, prefix: p });
    expect(await s2.get(id)).toEqual(rec);
    expect(await s2.getResult(id)).toEqual(result);
    expect((await s2.list({ limit: 10 })).runs).toEqual([rec]);
    expect(await s2.get(runId(2))).toBeNull();
    expect(await s2.getResult(runId(2))).toBeNull();
    await expect(s1.get(id)).rejects.toBeInstanceOf(StoreError);
  });

  test("store - list pages newest first and filters by status", async () => {
    const { log } = capture();
    const p = prefix();
    const statuses = ["completed", "failed", "running", "aborted", "cancelled", "starting"] as const;
    const recs = Array.from({ length: 25 }, (_, i) => record(runId(i), statuses[i % statuses.length]));
    const newestFirst = recs.map((r) => r.id).reverse();
    const shuffled = [...recs].sort(() => Math.random() - 0.5);
    const jsStore = await openRunStore(await connect(), { log, prefix: p });
    const stores: RunStore[] = [jsStore, new MemoryRunStore(1000)];
    for (const s of stores) for (const r of shuffled) await s.put(r);
    // a fresh store reads the bucket back: the index it builds pages the same way
    stores.push(await openRunStore(await connect(), { log, prefix: p }));

    for (const s of stores) {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await s.list({ limit: 10, ...(cursor ? { cursor } : {}) });
        seen.push(...page.runs.map((r) => r.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor);
      expect(seen, s.kind).toEqual(newestFirst);
      expect(pages).toBe(3);

      const failed = await s.list({ limit: 100, status: "failed" });
      expect(failed.runs.map((r) => r.id)).toEqual(recs.filter((r) => r.status === "failed").map((r) => r.id).reverse());
      expect(failed.runs.every((r) => r.status === "failed" && r.error?.service === "pager")).toBe(true);
      expect(failed.nextCursor).toBeNull();

      // a page boundary stays put when newer runs arrive
      const first = await s.list({ limit: 5 });
      await s.put(record(runId(1000)));
      const second = await s.list({ limit: 5, cursor: first.nextCursor! });
      expect(second.runs.map((r) => r.id)).toEqual(newestFirst.slice(5, 10));
      await expect(s.list({ limit: 5, cursor: "nope" })).rejects.toBeInstanceOf(ValidationError);
      await expect(s.list({ limit: 0 })).rejects.toBeInstanceOf(ValidationError);
    }
  });

  test("store - prune keeps the newest maxRuns finished runs and never prunes running ones", async () => {
    const { log } = capture();
    const p = prefix();
    const s = await openRunStore(await connect(), { log, prefix: p, maxRuns: 3 });
    // the two oldest runs are still going; six finished ones follow
    const unfinished = [record(runId(0), "running"), record(runId(1), "starting")];
    const finished = (["completed", "failed", "aborted", "cancelled", "completed", "failed"] as const).map((st, i) => record(runId(10 + i), st));
    for (const r of [...finished, ...unfinished]) {
      await s.put(r);
      await s.putResult(r.id, { runId: r.id });
    }
    expect(await s.prune()).toBe(3);
    const kept = [...finished.slice(3), ...unfinished].map((r) => r.id).sort().reverse();
    expect((await s.list({ limit: 100 })).runs.map((r) => r.id)).toEqual(kept);
    for (const r of finished.slice(0, 3)) {
      expect(await s.get(r.id)).toBeNull();
      expect(await s.getResult(r.id)).toBeNull();
    }
    for (const id of kept) expect(await s.getResult(id)).toEqual({ runId: id });
    expect(await s.prune()).toBe(0);

    // the deletes reached the server, and left no purge markers behind in the bucket's stream
    const nc = await connect();
    const again = await openRunStore(nc, { log, prefix: p, maxRuns: 3 });
    expect((await again.list({ limit: 100 })).runs.map((r) => r.id)).toEqual(kept);
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(`KV_${p}faultline-runs`)).state.messages).toBe(kept.length);
    // each kept result is one meta entry and one chunk; the deleted ones left nothing
    expect((await jsm.streams.info(`OBJ_${p}faultline-results`)).state.messages).toBe(2 * kept.length);

    // the memory store applies the same rule
    const m = new MemoryRunStore(3);
    for (const r of [...finished, ...unfinished]) await m.put(r);
    expect(await m.prune()).toBe(3);
    expect((await m.list({ limit: 100 })).runs.map((r) => r.id)).toEqual(kept);
  });

  test("store - a server without JetStream falls back to memory", async () => {
    const plain = await startNatsServer({ jetstream: false });
    try {
      const { log, warns } = capture();
      const nc = await connect(plain.url);
      const s = await openRunStore(nc, { log });
      expect(s.kind).toBe("memory");
      expect(warns()).toHaveLength(1);
      expect(warns()[0]?.msg).toMatch(/will not survive an api restart.*nats-server -js/);
      const rec = record(runId(1));
      await s.put(rec);
      await s.putResult(rec.id, { big: "x".repeat(2 * 1024 * 1024) });
      expect(await s.get(rec.id)).toEqual(rec);
      expect(await s.getResult(rec.id)).toEqual({ big: "x".repeat(2 * 1024 * 1024) });
      expect(await s.delete(rec.id)).toBe(true);
      expect(await s.get(rec.id)).toBeNull();
      await closeNats(nc);
    } finally {
      await plain.stop();
    }
  });

  test("store - a corrupt KV entry is skipped", async () => {
    const { log, warns } = capture();
    const p = prefix();
    const nc = await connect();
    const s = await openRunStore(nc, { log, prefix: p });
    const good = record(runId(1));
    await s.put(good);
    const kv = await new Kvm(nc).open(`${p}faultline-runs`);
    const notJson = runId(2);
    const foreign = runId(3);
    const misfiled = runId(4);
    await kv.put(notJson, "{not json");
    await kv.put(foreign, JSON.stringify({ hello: "world" }));
    await kv.put(misfiled, JSON.stringify(record(runId(5))));
    expect(warns()).toHaveLength(0);

    expect(await s.get(notJson)).toBeNull();
    expect(await s.get(foreign)).toBeNull();
    expect(await s.get(misfiled)).toBeNull();
    expect(warns()).toHaveLength(3);

    const fresh = await openRunStore(await connect(), { log, prefix: p });
    expect((await fresh.list({ limit: 10 })).runs).toEqual([good]);
    expect(warns().map((w) => w.key).sort()).toEqual([notJson, foreign, misfiled, notJson, foreign, misfiled].sort());
  });

  test("store - a failed put throws a StoreError and changes nothing", async () => {
    const { log } = capture();
    const nc = await connect();
    const s = await openRunStore(nc, { log, prefix: prefix() });
    const v1 = record(runId(1), "running");
    await s.put(v1);
    await expect(s.put({ ...v1, status: "lost" } as unknown as RunRecord)).rejects.toBeInstanceOf(ValidationError);
    await nc.close();
    const err = await s.put({ ...v1, status: "completed" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe("FL_ERR_STORE");
    expect((await s.list({ limit: 10 })).runs).toEqual([v1]);
  });

  test("store - records and results survive a nats-server restart on the same store dir", async () => {
    const dir = await mkdtemp(join(tmpdir(), "faultline-store-"));
    let srv = await startNatsServer({ jetstream: true, storeDir: dir });
    const opened: NatsConnection[] = [];
    try {
      const { log } = capture();
      const port = Number(new URL(srv.url).port);
      const nc = await connectNats({ servers: srv.url, name: "store-restart" });
      opened.push(nc);
      const s = await openRunStore(nc, { log });
      const before = record(runId(1), "completed");
      await s.put(before);
      await s.putResult(before.id, { runId: before.id, n: 1 });

      const reconnected = (async () => {
        for await (const st of nc.status()) if (st.type === "reconnect") return;
      })();
      await srv.stop();
      srv = await startNatsServer({ jetstream: true, storeDir: dir, port });
      await reconnected;

      // the store opened before the restart keeps working on the reconnected connection
      expect(await s.get(before.id)).toEqual(before);
      expect(await s.getResult(before.id)).toEqual({ runId: before.id, n: 1 });
      const after = record(runId(2), "running");
      await s.put(after);
      // and a store opened afresh finds both
      const nc2 = await connectNats({ servers: srv.url, name: "store-restart" });
      opened.push(nc2);
      const fresh = await openRunStore(nc2, { log });
      expect((await fresh.list({ limit: 10 })).runs).toEqual([after, before]);
    } finally {
      await Promise.all(opened.map((c) => closeNats(c)));
      await srv.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
