/**
 * bench/setup: what setting a VM up costs, by size. Each case runs in a child process of its own,
 * so its heap and RSS deltas are its alone. Prints numbers, asserts nothing.
 *
 *   node --import tsx bench/setup/main.ts            every case
 *   node --import tsx bench/setup/main.ts wl 256 1024   one workload case (vCPUs, pages per vCPU)
 *   node --import tsx bench/setup/main.ts wp 256        WP populate of one 256 GiB memslot
 *
 * wl: the vcpu service's setup: a Workload and a Vcpu per vCPU, then every build completed
 *     (`ready()`, slices between event-loop turns). "longest turn" is the longest the event loop
 *     went without running a setImmediate callback during the build.
 * wp: the pager's and the mmu's WP populate (UFFDIO_REGISTER_MODE_WP over populated memory), then
 *     a thousand write-protect faults' worth of set updates.
 * stack: a real stack (its own nats-server) runs V vCPUs x P pages (pager latency 0) for at most
 *     5 s; prints each service's peak RSS (VmHWM) before and after, and the pages touched.
 * ps: a PageSet's worst case, every other page of N (N/2 ranges), as a random-order guest of
 *     N pages leaves the mmu's SPTE set midway.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { ApiClient, startStack } from "../../cli/src/index.ts";
import { fileURLToPath } from "node:url";
import { PageSet, parseScenario } from "@faultline/shared";
import { Mmu } from "../../services/mmu/src/mmu.ts";
import { Uffd } from "../../services/pager/src/uffd.ts";
import { Vcpu, type VcpuPorts } from "../../services/vcpu/src/vcpu.ts";
import { buildWorkload } from "../../services/vcpu/src/workload.ts";

const MiB = 2 ** 20;
const CASES: string[][] = [
  ["wl", "64", "1024"],
  ["wl", "256", "1024"],
  ["wl", "64", "16384"],
  ["wl", "256", "4096"],
  ["wl", "16", "1048576"],
  ["wl", "256", "65536"],
  ["wp", "256"],
  ["ps", "16777216"],
  ["stack", "256", "65536"],
];

function mem() {
  global.gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.arrayBuffers, rss: m.rss };
}

function delta(m0: ReturnType<typeof mem>): string {
  const m1 = mem();
  return `heap+buffers +${((m1.heap - m0.heap) / MiB).toFixed(1)} MiB, rss +${((m1.rss - m0.rss) / MiB).toFixed(1)} MiB (rss ${(m1.rss / MiB).toFixed(0)} MiB)`;
}

/** Longest gap between two setImmediate turns while `work` runs. */
async function longestTurn<T>(work: () => Promise<T>): Promise<{ value: T; maxMs: number }> {
  let last = performance.now();
  let maxMs = 0;
  let on = true;
  const spin = () => {
    const t = performance.now();
    maxMs = Math.max(maxMs, t - last);
    last = t;
    if (on) setImmediate(spin);
  };
  setImmediate(spin);
  const value = await work();
  on = false;
  return { value, maxMs };
}

async function workload(vcpus: number, pages: number): Promise<void> {
  const s = parseScenario({ vm: { vcpus, memslots: [{ slot: 0, size: vcpus * pages * 4096 }] }, workload: { pagesPerVcpu: pages, writeRatio: 0.5 } });
  const ports = {} as VcpuPorts; // never called: the vCPUs are not run
  const m0 = mem();
  const t0 = performance.now();
  let setupMs = 0;
  const { value: list, maxMs } = await longestTurn(async () => {
    const list = Array.from({ length: vcpus }, (_, id) => new Vcpu(id, "tdp", buildWorkload(s, id), ports));
    setupMs = performance.now() - t0;
    await Promise.all(list.map((v) => v.accesses.ready()));
    return list;
  });
  const ms = performance.now() - t0;
  const n = list.reduce((a, v) => a + v.accesses.length, 0);
  console.log(
    `workload ${vcpus} vCPUs x ${pages} pages (${n} accesses): setup ${setupMs.toFixed(1)} ms, built ${ms.toFixed(1)} ms ` +
      `(${((ms * 1e6) / n).toFixed(0)} ns/access), longest turn ${maxMs.toFixed(1)} ms, ${delta(m0)}`,
  );
}

async function wp(gib: number): Promise<void> {
  const s = parseScenario({ vm: { memslots: [{ slot: 0, size: `${gib}GiB` }] }, pager: { mode: "wp" }, workload: { pagesPerVcpu: 1 } });
  const m0 = mem();
  const t0 = performance.now();
  const uffd = new Uffd({ fetch: async () => undefined, onResident: () => undefined, now: () => 0, config: { mode: "wp" } });
  uffd.populateWriteProtectedRanges([[0, (gib * 2 ** 30) / 4096]]);
  const mmu = new Mmu("6.13", s.vm.memslots, async () => ({ result: "ok", fatal: false, sleeps: 0, spinMs: 0 }));
  mmu.populateWriteProtected();
  const populateMs = performance.now() - t0;
  const t1 = performance.now();
  for (let i = 0; i < 1000; i++) {
    const g = i * 7919; // scattered writes: each splits a range
    uffd.writeProtected.delete(g);
    mmu.hostWriteProtected.delete(g);
    mmu.spte.add(g);
  }
  const writesMs = performance.now() - t1;
  console.log(
    `wp populate ${gib} GiB (${uffd.resident.size} pages, ${uffd.writeProtected.rangeCount} ranges after 1000 writes): ` +
      `populate ${populateMs.toFixed(2)} ms, 1000 scattered writes ${writesMs.toFixed(1)} ms, ${delta(m0)}`,
  );
}

function worstCase(n: number): void {
  const m0 = mem();
  const t0 = performance.now();
  const s = new PageSet();
  for (let g = 0; g < n; g += 2) s.add(g);
  const ms = performance.now() - t0;
  console.log(`page set worst case: every other page of ${n} (${s.rangeCount} ranges): ${ms.toFixed(0)} ms (${((ms * 1e6) / (n / 2)).toFixed(0)} ns/add), ${delta(m0)}`);
}

function peakRss(pid: number | undefined): string {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return `${(kb("VmHWM") / 1024).toFixed(0)}`;
}

async function stack(vcpus: number, pages: number): Promise<void> {
  // the run is torn down with faults in flight: the services' "request failed" lines are expected, not shown
  const st = await startStack({ logLevel: "error", logSink: new Writable({ write: (_c, _e, cb) => cb() }) });
  try {
    const peaks = () => [...st.services].map(([svc, c]) => `${svc} ${peakRss(c.pid)}`).join(", ");
    const before = peaks();
    const api = new ApiClient(st.apiUrl);
    const s = parseScenario({
      name: "bench-setup", durationMs: 5000, vm: { vcpus, memslots: [{ slot: 0, size: vcpus * pages * 4096 }] },
      pager: { latency: { us: 0 } }, workload: { pagesPerVcpu: pages },
    });
    const run = await api.createRun(s);
    const done = await api.waitRun(run.id);
    const touched = done.result?.vcpus.reduce((n, v) => n + v.pagesTouched, 0) ?? 0;
    console.log(`stack ${vcpus} vCPUs x ${pages} pages, 5 s: ${done.status}, ${touched} pages touched; peak RSS MiB before: ${before}; after: ${peaks()}`);
  } finally {
    await st.stop();
  }
}

const [kind, a, b] = process.argv.slice(2);
if (kind === "wl") await workload(Number(a), Number(b));
else if (kind === "wp") await wp(Number(a));
else if (kind === "ps") worstCase(Number(a));
else if (kind === "stack") await stack(Number(a), Number(b));
else {
  const self = fileURLToPath(import.meta.url);
  for (const c of CASES) {
    const r = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", self, ...c], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    process.stdout.write(r.status === 0 ? r.stdout : `${c.join(" ")}: exited ${r.status ?? r.signal}\n`);
  }
}
