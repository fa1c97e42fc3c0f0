/**
 * The seed scenarios end to end: real nats-server, the five services as separate processes, driven
 * through the HTTP API. Bounds are generous (shared 2-core machines): "far below the 2000 ms stall".
 */
import { describe, expect, it } from "vitest";
import type { Result } from "@faultline/shared";
import { runToEnd, seedScenario, useTestStack } from "./helpers/stack.ts";
import { STALL_END_MS, expectPre62, planned } from "./helpers/seed-expect.ts";

const FAST_MS = 250; // a bound far below the stall; typical values are a few ms

const t = useTestStack();


describe("seed: postcopy paused, SIGUSR1 kick", () => {
  it("seed 6.2 - every blocked vCPU leaves KVM_RUN with KVM_EXIT_INTR at once, the pause completes, and after resume all pages finish", async () => {
    const r = await runToEnd(t.api, seedScenario({ kernel: { profile: "6.2" } }));
    for (const v of r.vcpus) {
      const s = planned(r, v.id);
      expect(s).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "gup-eintr" });
      expect(s.latencyUs!).toBeLessThan(FAST_MS * 1000);
      expect(v.stat.signal_exits).toBeGreaterThanOrEqual(1);
      expect(v.exits.KVM_EXIT_INTR).toBeGreaterThanOrEqual(1);
      expect(v.state).toBe("done");
      expect(v.pagesTouched).toBe(256);
    }
    expect(r.pause!.completedAtMs).not.toBeNull();
    expect(r.pause!.completedAtMs!).toBeLessThan(400 + FAST_MS);
    expect(r.pause!.resumedAtMs!).toBeGreaterThanOrEqual(2500);
    expect(r.demandPaging.allDone).toBe(true);
    // the interrupted fault's page landed at the stall's end (2100 ms), before resume (2500 ms): the
    // re-fault on the next KVM_RUN is served by attempt 1 (hva_to_pfn_fast), without the pager
    expect(r.latency.faultFast.count).toBeGreaterThanOrEqual(r.vcpus.length);
    for (const v of r.vcpus) expect(v.stat.pf_taken).toBe(256 + 1);
  });

  it("seed pre-6.2 - SIGUSR1 is ignored during the stall; KVM_EXIT_INTR (pre-entry check) and the pause come only after the page arrives", async () => {
    const r = await runToEnd(t.api, seedScenario({ kernel: { profile: "pre-6.2" } }));
    expectPre62(r);
    // cpus_kick_thread: a vCPU stuck in KVM_RUN keeps thread_kicked set, so the re-kicks each park triggers skip it
    expect(r.pause!.kicks).toBeLessThanOrEqual(2 * r.vcpus.length);
    expect(r.pause!.kicksSkipped!).toBeGreaterThanOrEqual(1);
    expect(r.demandPaging.allDone).toBe(true);
  });

  it("seed pre-6.2 vs 6.2 - a run that ends inside the stall shows the SIGUSR1 ignored and the vCPUs blocked TASK_KILLABLE", async () => {
    const over = { durationMs: 1200, vmm: { pauseAllAtMs: 400 } };
    const [old, now] = await Promise.all([
      runToEnd(t.api, seedScenario({ ...over, kernel: { profile: "pre-6.2" } })),
      runToEnd(t.api, seedScenario({ ...over, kernel: { profile: "6.2" } })),
    ]);
    for (const v of old.vcpus) {
      expect(v.state).toBe("blocked");
      expect(v.blockedIn).toMatchObject({ site: "tdp", waitState: "TASK_KILLABLE" });
      expect(planned(old, v.id)).toMatchObject({ outcome: "ignored", latencyUs: null });
    }
    expect(old.pause!.completedAtMs).toBeNull();
    for (const v of now.vcpus) {
      expect(v.state).toBe("paused");
      expect(planned(now, v.id).outcome).toBe("KVM_EXIT_INTR");
    }
    expect(now.pause!.completedAtMs).not.toBeNull();
  });
});

describe("seed: SIGKILL during the stall", () => {
  for (const profile of ["pre-6.2", "6.2", "6.13"] as const) {
    it(`seed SIGKILL ${profile} - every vCPU of the VM is killed promptly`, async () => {
      const r = await runToEnd(
        t.api,
        seedScenario({ kernel: { profile }, vm: { vcpus: 4 }, signals: [{ atMs: 400, vcpus: 0, signal: "SIGKILL" }], vmm: {} }),
      );
      expect(r.vcpus.map((v) => v.state)).toEqual(["killed", "killed", "killed", "killed"]);
      const s = planned(r, 0);
      expect(s.outcome).toBe("killed");
      expect(s.latencyUs!).toBeLessThan(FAST_MS * 1000);
      expect(r.durationMs).toBeLessThan(STALL_END_MS); // nobody waited for the page
    });
  }
});
