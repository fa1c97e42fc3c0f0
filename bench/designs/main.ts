/**
 * Demand-paging rate of the fault-handling designs with many vCPUs (docs/profiles.md):
 * plain MISSING on one uffd for all vCPUs, MISSING with one uffd per vCPU, and the proposed
 * `kvm-userfault` and `exit-on-missing`, each with the uffd wait-queue contention model off and on.
 *
 * Honesty note: the contention costs (`--lock-us`, `--per-waiter-us`) are model parameters, not
 * kernel measurements. With them off, Faultline's transport makes the designs roughly equal; the
 * cover letters' gap appears only through the modelled wait-queue lock. Both are printed.
 *
 *   npm run bench:designs [-- --quick] [--lock-us 10] [--per-waiter-us 20] [--readers 2] [--json]
 */
import { parseArgs } from "node:util";
import { ApiClient, startStack } from "../../cli/src/index.ts";

const { values: o } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    "lock-us": { type: "string", default: "10" },
    "per-waiter-us": { type: "string", default: "20" },
    readers: { type: "string", default: "2" },
  },
});

const DESIGNS = [
  { label: "MISSING, one uffd", profile: "6.13", layout: "single" },
  { label: "MISSING, uffd per vCPU", profile: "6.13", layout: "per-vcpu" },
  { label: "kvm-userfault", profile: "kvm-userfault", layout: "single" },
  { label: "exit-on-missing", profile: "exit-on-missing", layout: "single" },
] as const;
const VCPUS = o.quick ? [1, 16] : [1, 4, 16];
const PAGES = o.quick ? 150 : 400;
const contention = { lockUs: Number(o["lock-us"]), perWaiterUs: Number(o["per-waiter-us"]) };

interface Row { vcpus: number; design: string; contention: boolean; rate: number; allDone: boolean }

const stack = await startStack({ logLevel: "error" });
const api = new ApiClient(stack.apiUrl);
const rows: Row[] = [];
try {
  for (const withContention of [false, true]) {
    for (const vcpus of VCPUS) {
      for (const d of DESIGNS) {
        const scenario = {
          name: "designs", durationMs: 120_000,
          kernel: { profile: d.profile },
          vm: { vcpus, memslots: [{ slot: 0, size: vcpus * PAGES * 4096 }] },
          pager: { latency: { us: 0 }, uffd: { layout: d.layout, readers: Number(o.readers), waitQueue: withContention ? contention : {} } },
          workload: { pagesPerVcpu: PAGES },
        };
        const run = await api.waitRun((await api.createRun(scenario)).id);
        if (!run.result) throw new Error(`run failed: ${JSON.stringify(run.error)}`);
        rows.push({ vcpus, design: d.label, contention: withContention, rate: run.result.demandPaging.overallRate, allDone: run.result.demandPaging.allDone });
        if (!o.json) process.stderr.write(".");
      }
    }
  }
} finally {
  await stack.stop();
}

if (o.json) {
  process.stdout.write(JSON.stringify({ contention, readers: Number(o.readers), pagesPerVcpu: PAGES, rows }, null, 2) + "\n");
} else {
  const lines = [
    "",
    `Demand-paging rate (pages/s), pager latency 0, ${PAGES} pages per vCPU, ${o.readers} readers per uffd`,
    `contention model on: lockUs ${contention.lockUs}, perWaiterUs ${contention.perWaiterUs} (model parameters, not measurements)`,
    "",
    `| vCPUs | contention | ${DESIGNS.map((d) => d.label).join(" | ")} | kvm-userfault / MISSING one uffd |`,
    `|---:|---|${DESIGNS.map(() => "---:").join("|")}|---:|`,
  ];
  for (const c of [false, true]) {
    for (const v of VCPUS) {
      const r = DESIGNS.map((d) => rows.find((x) => x.vcpus === v && x.contention === c && x.design === d.label)!);
      const ratio = r[2]!.rate / r[0]!.rate;
      lines.push(`| ${v} | ${c ? "on" : "off"} | ${r.map((x) => `${x.rate.toFixed(0)}${x.allDone ? "" : " (!)"}`).join(" | ")} | ${ratio.toFixed(2)}x |`);
    }
  }
  process.stdout.write(lines.join("\n") + "\n");
}
