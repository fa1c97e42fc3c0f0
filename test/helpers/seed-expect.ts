/** What the seed scenario must show, whatever carries it (NATS or the in-memory bus). */
import { expect } from "vitest";
import type { Result } from "@faultline/shared";

/** The page source is silent until then (the seed's stall ends at 2100 ms). */
export const STALL_END_MS = 2100;

/**
 * The SIGUSR1 the scenario planned for `vcpu`, or, when the pause's kick (SIG_IPI is SIGUSR1) reached
 * the pending set first in the same millisecond and the planned one coalesced with it (`legacy_queue`),
 * that kick: the one signal the vCPU got.
 */
export const planned = (r: Result, vcpu: number) => {
  const sigs = r.vcpus[vcpu]!.signals;
  const plan = sigs.find((s) => s.source === "plan")!;
  if (plan.outcome !== "coalesced" || plan.signal !== "SIGUSR1") return plan;
  const kick = sigs.find((s) => s.source === "pause-kick" && s.outcome !== "coalesced" && s.sentAtMs <= plan.sentAtMs);
  expect(kick, `vCPU ${vcpu}: the planned SIGUSR1 coalesced with no kick before it`).toBeDefined();
  return kick!;
};

/** pre-6.2: SIGUSR1 waits for the page (TASK_KILLABLE), leaves by the pre-entry check, and so does the pause. */
export function expectPre62(r: Result): void {
  for (const v of r.vcpus) {
    const s = planned(r, v.id);
    expect(s).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "pre-entry-check" });
    expect(s.sentAtMs + s.latencyUs! / 1000).toBeGreaterThanOrEqual(STALL_END_MS - 5);
    expect(v.state).toBe("done");
  }
  expect(r.pause!.completedAtMs!).toBeGreaterThanOrEqual(STALL_END_MS - 5);
  expect(r.demandPaging.allDone).toBe(true);
}
