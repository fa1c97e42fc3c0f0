/**
 * Two stacks on one NATS (as `faultline up --nats URL` twice): a VM is claimed by exactly one
 * instance of each service, only that instance subscribes the VM's subjects, so 20 concurrent runs
 * per stack all come back right: every page touched once, one UFFDIO_COPY per page, no request
 * processed twice.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, startStack, type Stack } from "../cli/src/index.ts";
import { seedScenario } from "./helpers/stack.ts";

let a: Stack | undefined;
let b: Stack | undefined;
beforeAll(async () => {
  const natsUrl = inject("natsUrl");
  const logLevel = process.env.FAULTLINE_TEST_LOG_LEVEL ?? "error";
  [a, b] = await Promise.all([startStack({ natsUrl, logLevel }), startStack({ natsUrl, logLevel })]);
}, 120_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
}, 60_000);

describe("sharing one NATS", () => {
  it("sharing - two stacks, 20 concurrent runs each: every result correct, no VM processed twice", async () => {
    const apis = [new ApiClient(a!.apiUrl), new ApiClient(b!.apiUrl)];
    const pages = 64;
    const scenario = (i: number) =>
      seedScenario({
        name: `share-${i}`, durationMs: 60_000, kernel: { profile: i % 2 ? "6.2" : "pre-6.2" }, vm: { vcpus: 2 },
        pager: { latency: { us: 100 } }, signals: [], vmm: {}, workload: { pagesPerVcpu: pages, pattern: "random" }, seed: i,
      });
    const started = await Promise.all(apis.flatMap((api, s) => Array.from({ length: 20 }, (_, i) => api.createRun(scenario(s * 100 + i)).then((r) => ({ api, id: r.id })))));
    const ended = await Promise.all(started.map(({ api, id }) => api.waitRun(id)));
    for (const r of ended) {
      expect(r.status, `${r.id}: ${JSON.stringify(r.error)}`).toBe("completed");
      const res = r.result!;
      expect(res.partial).toBe(false);
      expect(res.vcpus.map((v) => [v.state, v.pagesTouched])).toEqual([["done", pages], ["done", pages]]);
      expect(res.pager.copies).toBe(2 * pages);
      expect(res.pager.eexist).toBe(0);
      expect(res.vcpus.reduce((n, v) => n + v.stat.pf_fixed, 0)).toBe(2 * pages);
    }
  }, 300_000);
});
