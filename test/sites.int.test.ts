/** Issue 3's must-show for the non-tdp sites, end to end through the real services. */
import { describe, expect, it } from "vitest";
import { parseScenarioText, type Result } from "@faultline/shared";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runToEnd, seedScenario, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

const scenario = (f: string) => parseScenarioText(readFileSync(join(import.meta.dirname, "..", "scenarios", f), "utf8"));
const planned = (r: Result, vcpu: number) => r.vcpus[vcpu]!.signals.find((s) => s.source === "plan")!;

describe("sites end to end", () => {
  it("emulated - SIGUSR1 does not get the vCPU out until the stall ends, spinCpuMs grows meanwhile, the pause waits", async () => {
    const mid = await runToEnd(t.api, { ...scenario("emulated-stall-sigusr1.yaml"), durationMs: 1500, vmm: { pauseAllAtMs: 400, rekickMs: 100 } });
    for (const v of mid.vcpus) {
      expect(v.state).toBe("spinning"); // blocked in a SPINNING busy loop (live.ts joinVcpu)
      expect(v.blockedIn).toMatchObject({ site: "emulated", waitState: "SPINNING" });
      expect(v.spinCpuMs).toBeGreaterThan(500); // spinning since ~400 ms, the run ended at 1500 ms
      expect(planned(mid, v.id).outcome).toBe("ignored");
    }
    expect(mid.pause!.completedAtMs).toBeNull();
    const full = await runToEnd(t.api, scenario("emulated-stall-sigusr1.yaml"));
    for (const v of full.vcpus) {
      const s = planned(full, v.id);
      expect(s).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "pre-entry-check" });
      expect(s.sentAtMs + s.latencyUs! / 1000).toBeGreaterThanOrEqual(2095);
      expect(v.spinCpuMs).toBeGreaterThan(1000);
      expect(v.stat.insn_emulation).toBe(256);
      expect(v.state).toBe("done");
    }
    expect(full.pause!.completedAtMs!).toBeGreaterThanOrEqual(2095);
  });

  it("emulated - SIGKILL still kills at once", async () => {
    const r = await runToEnd(t.api, { ...scenario("emulated-stall-sigusr1.yaml"), signals: [{ atMs: 400, vcpus: "all", signal: "SIGUSR1" }, { atMs: 600, vcpus: 1, signal: "SIGKILL" }], vmm: { rekickMs: 100 } });
    expect(r.vcpus.map((v) => v.state)).toEqual(["killed", "killed"]);
    const kill = r.vcpus[1]!.signals.find((s) => s.signal === "SIGKILL")!;
    expect(kill.outcome).toBe("killed");
    expect(kill.latencyUs!).toBeLessThan(250_000);
  });

  it("nested-map - SIGUSR1 ignored and the pause does not complete while a vCPU is in kvm_vcpu_map (an all-tdp control completes); SIGKILL works", async () => {
    const base = seedScenario({ durationMs: 1500, vmm: { pauseAllAtMs: 400 } });
    const r = await runToEnd(t.api, { ...base, workload: { ...base.workload, site: "nested-map" }, vm: { ...base.vm, vcpus: 1 } });
    expect(r.vcpus[0]!.blockedIn).toMatchObject({ site: "nested-map", waitState: "TASK_KILLABLE" });
    expect(planned(r, 0).outcome).toBe("ignored");
    expect(r.pause!.completedAtMs).toBeNull();

    const mixed = scenario("nested-map-stall-sigusr1.yaml");
    const half = await runToEnd(t.api, { ...mixed, durationMs: 1500, vmm: { pauseAllAtMs: 400 }, workload: { ...mixed.workload, site: "tdp" } });
    expect(half.pause!.completedAtMs).not.toBeNull(); // control: all tdp on 6.13, the pause completes

    const killed = await runToEnd(t.api, { ...base, workload: { ...base.workload, site: "nested-map" }, signals: [{ atMs: 400, vcpus: 0, signal: "SIGKILL" }], vmm: {} });
    expect(killed.vcpus.every((v) => v.state === "killed")).toBe(true);
  });
});
