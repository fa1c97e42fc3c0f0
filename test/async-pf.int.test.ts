/** Issue 3's async-PF must-show, end to end through the real services. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseScenarioText } from "@faultline/shared";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

const scenario = parseScenarioText(readFileSync(join(import.meta.dirname, "..", "scenarios", "async-pf-stall.yaml"), "utf8"));

describe("async page faults end to end", () => {
  it("asyncPf - a stalled page does not block the vCPU in gup: low blocktime next to high fault latency; a signal wakes the idle vCPU", async () => {
    const r = await runToEnd(t.api, scenario);
    expect(r.asyncPf).toMatchObject({ kvm_async_pf_not_present: 96, kvm_async_pf_completed: 96, kvm_async_pf_ready: 96 });
    for (const v of r.vcpus) {
      expect(v.state).toBe("done");
      expect(v.pagesTouched).toBe(48);
      expect(v.blocktimeMs).toBeLessThan(100);
      const s = v.signals.find((x) => x.source === "plan")!;
      expect(s.outcome).toBe("KVM_EXIT_INTR");
      expect(s.latencyUs!).toBeLessThan(250_000); // the guest idles in HLT; kvm_vcpu_block wakes on the signal
    }
    expect(r.latency.faultAsync.count).toBe(96);
    expect(r.latency.faultAsync.maxUs).toBeGreaterThan(1_500_000); // pages that waited out the stall
    expect(r.latency.faultSlow.count).toBe(0); // nobody took the synchronous path
  });

  it("asyncPf off - the same scenario blocks the vCPUs in gup for the stall: blocktime ~ the stall", async () => {
    const r = await runToEnd(t.api, { ...scenario, kernel: { ...scenario.kernel, asyncPf: false } });
    for (const v of r.vcpus) expect(v.blocktimeMs).toBeGreaterThan(1500);
    expect(r.asyncPf).toBeNull();
  });
});
