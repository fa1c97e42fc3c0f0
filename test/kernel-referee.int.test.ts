/**
 * The real kernel as the referee for the mm half: test/kernel/uffd-referee.c measures what this
 * machine's handle_userfault() does with SIGUSR1 and SIGKILL for four kinds of access, and each is
 * compared with the model site that stands for it (test/kernel/referee-table.ts PAIRS) on the real
 * services: signal taken before the fill, CPU burnt, the handler's message rate (order of
 * magnitude), SIGKILL. Needs root, /dev/userfaultfd and gcc; no /dev/kvm.
 */
import { afterAll, describe, expect, it } from "vitest";
import { KERNEL_KINDS, kernelSkipReason, runKernelReferee, type KernelReport, type Measure } from "./kernel/referee-kernel.ts";
import { MODEL_CASES, measureModel, type ModelCaseId } from "./kernel/referee-model.ts";
import { kernelMeasures } from "./kernel/referee.ts";
import { disagreements, PAIRS, renderTable, rows, type Pair } from "./kernel/referee-table.ts";
import { useTestStack } from "./helpers/stack.ts";

const skip = await kernelSkipReason();
const reason = skip ? ` (skipped: ${skip})` : "";
const t = skip ? null : useTestStack();

/** each half measured once, on first use; the kernel before any model run */
let kernel: Promise<KernelReport> | undefined;
const kernelReport = () => (kernel ??= runKernelReferee());
const model = new Map<ModelCaseId, Promise<Measure>>();
const modelMeasure = async (id: ModelCaseId) => {
  await kernelReport();
  const c = MODEL_CASES.find((x) => x.id === id)!;
  if (!model.has(id)) model.set(id, measureModel(t!.api, c));
  return model.get(id)!;
};

const GUP_SITES = "nested-map, pfn-cache and tdp pre-6.2";
const what: Record<Pair["kind"], string> = {
  "user-load": "a user-mode load (the >=6.2 interruptible slow fault)",
  "kernel-uaccess": "a kernel uaccess (kvm_vcpu_read_guest's copy_from_user)",
  gup: "GUP without FOLL_INTERRUPTIBLE (kvm_vcpu_map, the pfn cache, the pre-6.2 slow fault)",
  populate: `MADV_POPULATE_READ, compared with the same GUP sites (${GUP_SITES})`,
};

describe("referee", () => {
  it.skipIf(skip)(`referee - the program reports every access kind, and the fill completes each access${reason}`, async () => {
    const r = await kernelReport();
    expect(r.kernel).not.toBe("");
    for (const k of KERNEL_KINDS) {
      expect(r.kinds[k].completedAfterFill, `${k}: ${JSON.stringify(r.kinds[k])}`).toBe(true);
      expect(r.kinds[k].states, k).toMatch(/^[RSD]+$/);
    }
  });

  for (const p of PAIRS) {
    it.skipIf(skip)(`referee - ${p.kind} ↔ ${p.model}: ${what[p.kind]}; signal before the fill, CPU burnt, message rate, SIGKILL agree${reason}`, async () => {
      const k = kernelMeasures(await kernelReport())[p.kind];
      const m = await modelMeasure(p.model);
      const detail = `kernel ${JSON.stringify(k)}\nmodel  ${JSON.stringify(m)}`;
      expect(disagreements(k, m), detail).toEqual([]);
    });
  }

  afterAll(async () => {
    if (skip || !kernel) return;
    const settled = await Promise.allSettled(MODEL_CASES.map(async (c) => [c.id, await model.get(c.id)] as const));
    const measured = settled.flatMap((x) => (x.status === "fulfilled" && x.value[1] ? [x.value] : []));
    if (measured.length < MODEL_CASES.length) return; // a case failed: its test says why
    const table = renderTable(rows(kernelMeasures(await kernel), Object.fromEntries(measured) as Record<ModelCaseId, Measure>), "kernel / model");
    process.stdout.write(`\n${table}\n`);
  });
});
