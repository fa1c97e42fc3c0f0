/**
 * The raw NATS baseline: request/reply between separate Node processes on the same nats-server the
 * Faultline stack uses, with nothing but the NATS client in the way.
 *
 *   1 hop:   this process → leaf            (one request/reply: 2 messages)
 *   2 hops:  this process → relay → leaf    (a slow fault's shape, vcpu → mmu → pager: 4 messages)
 *
 * Latency: N sequential requests after a warm-up, exact per-request samples.
 * Throughput: K concurrent loops, each issuing 2-hop chained requests back to back on one
 * connection (as the vcpu service runs all its vCPUs on one connection), for a fixed time.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { REPO_ROOT } from "../../cli/src/stack.ts";
import { latencyStats, round1, spawnTsx, stopTracked, type LatencyStats } from "./stats.ts";

const WORKER = join(dirname(fileURLToPath(import.meta.url)), "echo-worker.ts");

/** About the size of a Faultline fault request (`{vm, trace, vcpu, gfn, write, site}` as JSON). */
const PAYLOAD = new TextEncoder().encode(
  JSON.stringify({ vm: "r0000000000abcdef", trace: "r0000000000abcdef.0.f1234", vcpu: 0, gfn: 123456, write: false, site: "tdp" }),
);

export interface RawOptions {
  /** sequential requests per latency measurement */
  requests: number;
  warmup: number;
  /** wall time per throughput point */
  throughputMs: number;
  concurrency: number[];
  log: (line: string) => void;
}

export interface ThroughputPoint {
  loops: number;
  requests: number;
  elapsedS: number;
  reqPerS: number;
  /** mean time one loop waits for one chained request at this concurrency */
  meanUs: number;
}

export interface RawResults {
  payloadBytes: number;
  oneHop: LatencyStats;
  twoHop: LatencyStats;
  twoHopThroughput: ThroughputPoint[];
}

export async function runRaw(natsUrl: string, o: RawOptions): Promise<RawResults> {
  const prefix = `bench.fault-path.${process.pid}`;
  const leaf = `${prefix}.leaf`;
  const relay = `${prefix}.relay`;
  const workers: ChildProcess[] = [];
  let nc: NatsConnection | null = null;
  try {
    o.log("raw: starting responder processes (leaf, relay)");
    const [b, a] = await Promise.all([spawnTsx(WORKER, [natsUrl, leaf], REPO_ROOT), spawnTsx(WORKER, [natsUrl, relay, leaf], REPO_ROOT)]);
    workers.push(b, a);
    nc = await connect({ servers: natsUrl, name: "bench-fault-path-client", noAsyncTraces: true, maxReconnectAttempts: 0 });

    // warm every process's JIT on the chained path at full concurrency before anything is timed
    o.log(`raw: warm-up, 2-hop chained requests from 16 loops for ${Math.round(o.throughputMs / 2)} ms (discarded)`);
    await throughput(nc, relay, 16, o.throughputMs / 2);
    o.log(`raw: 1-hop latency, ${o.requests} sequential requests after ${o.warmup} warm-up`);
    const oneHop = await sequential(nc, leaf, o.warmup, o.requests);
    o.log(`raw: 2-hop chained latency, ${o.requests} sequential requests after ${o.warmup} warm-up`);
    const twoHop = await sequential(nc, relay, o.warmup, o.requests);

    const twoHopThroughput: ThroughputPoint[] = [];
    for (const loops of o.concurrency) {
      o.log(`raw: 2-hop chained throughput, ${loops} concurrent loop(s), ${o.throughputMs} ms`);
      twoHopThroughput.push(await throughput(nc, relay, loops, o.throughputMs));
    }
    return { payloadBytes: PAYLOAD.length, oneHop, twoHop, twoHopThroughput };
  } finally {
    if (nc) await nc.close().catch(() => undefined);
    await Promise.all(workers.map((w) => stopTracked(w)));
  }
}

async function sequential(nc: NatsConnection, subject: string, warmup: number, n: number): Promise<LatencyStats> {
  for (let i = 0; i < warmup; i++) await nc.request(subject, PAYLOAD, { timeout: 5000 });
  const samples = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await nc.request(subject, PAYLOAD, { timeout: 5000 });
    samples[i] = (performance.now() - t) * 1000;
  }
  return latencyStats(samples);
}

async function throughput(nc: NatsConnection, subject: string, loops: number, ms: number): Promise<ThroughputPoint> {
  // warm-up at this concurrency, so the timed window starts in a steady state
  await Promise.all(Array.from({ length: loops }, async () => {
    for (let i = 0; i < 50; i++) await nc.request(subject, PAYLOAD, { timeout: 5000 });
  }));
  let count = 0;
  let busyUs = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await nc.request(subject, PAYLOAD, { timeout: 5000 });
        busyUs += (performance.now() - t) * 1000;
        count++;
      }
    }),
  );
  const elapsedS = (performance.now() - t0) / 1000;
  return { loops, requests: count, elapsedS: round3(elapsedS), reqPerS: round1(count / elapsedS), meanUs: round1(busyUs / count) };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
