/**
 * Run store timings on a throwaway nats-server with JetStream: put / putResult / get of N runs, list
 * (one page, a walk over every page, a status filter), opening a store over N runs, and a prune.
 *
 *   node --import tsx bench/store/main.ts [--runs 1000] [--result-kb 64] [--page 50]
 */
import { parseArgs } from "node:util";
import { pino } from "pino";
import { startNatsServer } from "../../cli/src/nats-server.ts";
import { closeNats, connectNats, parseScenario } from "@faultline/shared";
import { openRunStore, type RunRecord, type RunStore } from "../../services/api/src/store.ts";

const { values: o } = parseArgs({
  options: { runs: { type: "string", default: "1000" }, "result-kb": { type: "string", default: "64" }, page: { type: "string", default: "50" } },
});
const N = Number(o.runs);
const PAGE = Number(o.page);
const log = pino({ level: "warn" });
const scenario = parseScenario({ name: "bench", vm: { vcpus: 4 } });
const statuses = ["completed", "failed", "aborted", "cancelled"] as const;

function stats(label: string, ms: number[]): void {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(3);
  const total = ms.reduce((a, b) => a + b, 0);
  console.log(`${label.padEnd(34)} n=${String(ms.length).padStart(5)}  median ${q(0.5)} ms  p99 ${q(0.99)} ms  total ${total.toFixed(1)} ms`);
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
}

async function walk(s: RunStore): Promise<number> {
  let cursor: string | undefined;
  let n = 0;
  do {
    const p = await s.list({ limit: PAGE, ...(cursor ? { cursor } : {}) });
    n += p.runs.length;
    cursor = p.nextCursor ?? undefined;
  } while (cursor);
  return n;
}

const srv = await startNatsServer({ jetstream: true });
try {
  const nc = await connectNats({ servers: srv.url, name: "bench-store" });
  const store = await openRunStore(nc, { log, prefix: "bench-", maxRuns: N });
  const base = Date.now();
  const recs: RunRecord[] = Array.from({ length: N }, (_, i) => ({
    id: `r${(base + i).toString(36)}${i.toString(16).padStart(6, "0")}`,
    status: statuses[i % statuses.length]!, scenario, createdAt: new Date(base + i).toISOString(), t0: base + i, endedAt: new Date(base + i + 3000).toISOString(),
    error: null, vcpus: Array.from({ length: 4 }, () => ({ state: "done", pagesTouched: 128 })),
  }));
  const result = { blob: "x".repeat(Number(o["result-kb"]) * 1024) };
  console.log(`runs ${N}, record ${JSON.stringify(recs[0]).length} B, result ${JSON.stringify(result).length} B, page ${PAGE}, nats-server ${nc.info?.version}`);

  const put: number[] = [];
  const putResult: number[] = [];
  for (const r of recs) {
    put.push((await timed(() => store.put(r)))[0]);
    putResult.push((await timed(() => store.putResult(r.id, result)))[0]);
  }
  stats("put (record)", put);
  stats("putResult", putResult);
  const get: number[] = [];
  for (const r of recs) get.push((await timed(() => store.get(r.id)))[0]);
  stats("get", get);
  const getResult: number[] = [];
  for (const r of recs.slice(0, 100)) getResult.push((await timed(() => store.getResult(r.id)))[0]);
  stats("getResult", getResult);
  const first: number[] = [];
  for (let i = 0; i < 100; i++) first.push((await timed(() => store.list({ limit: PAGE })))[0]);
  stats(`list first page (limit ${PAGE})`, first);
  const walks: number[] = [];
  for (let i = 0; i < 10; i++) {
    const [ms, n] = await timed(() => walk(store));
    if (n !== N) throw new Error(`walk saw ${n} runs, not ${N}`);
    walks.push(ms);
  }
  stats(`list every page (${N} runs)`, walks);
  const filtered: number[] = [];
  for (let i = 0; i < 100; i++) filtered.push((await timed(() => store.list({ limit: PAGE, status: "failed" })))[0]);
  stats("list status=failed", filtered);

  const nc2 = await connectNats({ servers: srv.url, name: "bench-store-2" });
  const [openMs, reopened] = await timed(() => openRunStore(nc2, { log, prefix: "bench-", maxRuns: N / 2 }));
  stats(`open (load index of ${N})`, [openMs]);
  const [pruneMs, pruned] = await timed(() => reopened.prune());
  stats(`prune (deletes ${pruned})`, [pruneMs]);
  // steady state: one run finishes, one old run goes
  const steady: number[] = [];
  for (let i = 0; i < 20; i++) {
    const r = { ...recs[0]!, id: `r${(base + N + i).toString(36)}ffffff` };
    await reopened.put(r);
    await reopened.putResult(r.id, result);
    const [ms, n] = await timed(() => reopened.prune());
    if (n !== 1) throw new Error(`prune deleted ${n}, not 1`);
    steady.push(ms);
  }
  stats(`prune one of ${N / 2} kept`, steady);
  await closeNats(nc2);
  await closeNats(nc);
} finally {
  await srv.stop();
}
