/** kvm-run's accounting of the mmu's answers: pf_fast only for what fast_page_fault fixed (kvm_mmu_do_page_fault). */
import { describe, expect, it } from "vitest";
import { kvmRun } from "../../services/vcpu/src/kvm-run.ts";
import { VcpuTask } from "../../services/vcpu/src/task.ts";
import { buildWorkload } from "../../services/vcpu/src/workload.ts";
import { parseScenario, type FaultReply } from "@faultline/shared";

const reply = (ret: FaultReply["ret"], path: FaultReply["path"]): FaultReply => ({ ret, path, sleeps: 0, fatal: false, spinMs: 0 });

describe("kvm-run page-fault stats", () => {
  it("pf stats - RET_PF_SPURIOUS counts pf_spurious only; pf_fast counts a fault fast_page_fault fixed", async () => {
    const s = parseScenario({ workload: { pagesPerVcpu: 3 } });
    const answers = [reply("RET_PF_SPURIOUS", "hva_to_pfn_fast"), reply("RET_PF_FIXED", "fast_page_fault"), reply("RET_PF_FIXED", "gup")];
    let now = 0;
    const t = new VcpuTask(0, "tdp", buildWorkload(s, 0), {
      now: () => ++now,
      fault: async () => answers.shift()!,
      dequeue: async () => undefined,
      apfReady: async () => reply("RET_PF_FIXED", "gup"),
      resolve: async () => undefined,
      state: () => undefined,
    });
    const run = kvmRun(t);
    while (t.state !== "done") await new Promise((r) => setImmediate(r));
    expect(t.stat).toMatchObject({ pf_taken: 3, pf_spurious: 1, pf_fast: 1, pf_fixed: 2 });
    t.closed = true;
    t.notify();
    await expect(run).resolves.toEqual({ kind: "closed" });
  });
});
