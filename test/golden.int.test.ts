/**
 * The golden suite: each case of test/golden/cases.ts on the real services, twice: SIGUSR1 at 300 ms
 * then pause_all_vcpus at 350 ms, and SIGKILL at 300 ms, both inside a stall that outlasts the run. The
 * expectations and their citations (kernel functions, docs/ pages) live in the cases.
 */
import { describe, expect, it } from "vitest";
import { parseScenario, type Result } from "@faultline/shared";
import { CASES } from "./golden/cases.ts";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const AT = 300;
/** the pause comes after the signal, so that the signal's own path is what is observed */
const PAUSE_AT = 350;
const PROMPT_US = 250_000; // "at once": generous for a shared 2-core machine; the stall is 5 s

const t = useTestStack();

const planned = (r: Result, vcpu: number) => r.vcpus[vcpu]!.signals.find((s) => s.source === "plan")!;

describe("golden", () => {
  for (const c of CASES) {
    it(`golden ${c.id} - SIGUSR1 ${c.usr1}, pause ${c.pauseCompletes ? "completes" : "does not complete"}, SIGKILL kills (${c.cite})`, async () => {
      const s1 = parseScenario({ name: `golden-${c.id}`, ...c.scenario, signals: [{ atMs: AT, vcpus: "all", signal: "SIGUSR1" }], vmm: { pauseAllAtMs: PAUSE_AT } });
      const s2 = parseScenario({ name: `golden-${c.id}-kill`, ...c.scenario, signals: [{ atMs: AT, vcpus: 0, signal: "SIGKILL" }] });
      const [r1, r2] = await Promise.all([runToEnd(t.api, s1), runToEnd(t.api, s2)]);

      for (const v of r1.vcpus) {
        const s = planned(r1, v.id);
        expect(v.state, `vCPU ${v.id} finished before the stall could matter`).not.toBe("done");
        const what = `vCPU ${v.id}: ${JSON.stringify({ state: v.state, blockedIn: v.blockedIn, signal: s })}`;
        switch (c.usr1) {
          case "exits-at-once":
            expect(s.outcome, what).toBe("KVM_EXIT_INTR");
            expect(s.via, what).toBe(c.via);
            expect(s.latencyUs!, what).toBeLessThan(PROMPT_US);
            expect(v.stat.signal_exits, what).toBeGreaterThanOrEqual(1);
            break;
          case "ignored-blocked":
            expect(s.outcome, what).toBe("ignored");
            expect(v.blockedIn?.waitState, what).toBe("TASK_KILLABLE");
            break;
          case "ignored-spinning":
            expect(s.outcome, what).toBe("ignored");
            expect(v.blockedIn?.waitState, what).toBe("SPINNING");
            break;
          case "taken-in-vmm":
            expect(s.outcome, what).toBe("delivered-in-vmm");
            expect(s.via, what).toBe("memory-fault-wait");
            expect(s.latencyUs!, what).toBeLessThan(PROMPT_US);
            break;
        }
      }
      if (c.pauseCompletes) expect(r1.pause!.completedAtMs!).toBeLessThan(PAUSE_AT + PROMPT_US / 1000);
      else expect(r1.pause!.completedAtMs).toBeNull();
      c.check?.(r1);

      expect(r2.vcpus.map((v) => v.state)).toEqual(r2.vcpus.map(() => "killed"));
      expect(planned(r2, 0).outcome).toBe("killed");
      expect(planned(r2, 0).latencyUs!).toBeLessThan(PROMPT_US);
    });
  }
});
