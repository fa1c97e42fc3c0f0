/**
 * QEMU's signal model and the kernel's signal classes, end to end (real nats-server, the five
 * services as processes, the HTTP API). QEMU: accel/kvm/kvm-all.c (kvm_init_cpu_signals,
 * kvm_ipi_signal, kvm_cpu_kick, kvm_eat_signals), system/cpus.c (pause_all_vcpus, cpus_kick_thread,
 * qemu_wait_io_event_common), os-posix.c (termsig_handler), system/runstate.c (qemu_system_killed);
 * kernel: kernel/signal.c (legacy_queue, complete_signal), x86.c (kvm_arch_vcpu_ioctl_run).
 * Orderings and "before the stall ended", never millisecond windows.
 */
import { describe, expect, it } from "vitest";
import { formatResult, formatSideBySide } from "../cli/src/summary.ts";
import type { Result } from "@faultline/shared";
import { STALL_END_MS, planned } from "./helpers/seed-expect.ts";
import { httpError, runToEnd, seedScenario, useTestStack, waitFor } from "./helpers/stack.ts";

const t = useTestStack();

/** "at once": far below the 2000 ms stall (a shared 2-core machine) */
const FAST_MS = 250;

const kicks = (r: Result) => r.vcpus.flatMap((v) => v.signals.filter((s) => s.source === "pause-kick"));

/** one vCPU whose guest has finished (halted) when the VMM stops it at 300 ms; SIGUSR1 at 500 ms; resume at 700 ms */
const parkedKick = (signalMask: string) => ({
  name: `parked-kick-${signalMask}`, durationMs: 1500, kernel: { profile: "6.2" }, vm: { vcpus: 1 },
  workload: { pagesPerVcpu: 16 }, pager: { latency: { us: 100 } },
  signals: [{ atMs: 500, vcpus: 0, signal: "SIGUSR1" }],
  vmm: { pauseAllAtMs: 300, resumeAtMs: 700, signalMask },
});

describe("QEMU signal mask (vmm.signalMask)", () => {
  it("immediate-exit vs kvm-set-signal-mask - SIGUSR1 to a parked vCPU: handled in the VMM at once and an immediate exit, or pending until KVM_RUN's pre-entry check", async () => {
    const [imm, legacy] = await Promise.all([runToEnd(t.api, parkedKick("immediate-exit")), runToEnd(t.api, parkedKick("kvm-set-signal-mask"))]);
    const a = planned(imm, 0);
    expect(a).toMatchObject({ outcome: "delivered-in-vmm", via: "parked" });
    expect(a.latencyUs!).toBeLessThan(FAST_MS * 1000);
    expect(imm.vcpus[0]!.immediateExits).toBeGreaterThanOrEqual(1);
    // the pause kick woke the halted guest (halt-wakeup): the only KVM_EXIT_INTR
    expect(imm.vcpus[0]!.stat.signal_exits).toBe(1);

    const b = planned(legacy, 0);
    expect(b).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "pre-entry-check" });
    expect(b.sentAtMs + b.latencyUs! / 1000).toBeGreaterThanOrEqual(700); // not before the resume (resumeAtMs) was requested
    expect(legacy.vcpus[0]!.immediateExits).toBe(0);
    expect(legacy.vcpus[0]!.stat.signal_exits).toBe(2);
  });
});

describe("pause_all_vcpus kicks (cpus_kick_thread)", () => {
  it("kick de-duplication - pre-6.2 seed: at most 2 SIG_IPI per vCPU, the re-kicks to vCPUs stuck in KVM_RUN are skipped", async () => {
    const r = await runToEnd(t.api, seedScenario({ kernel: { profile: "pre-6.2" } }));
    expect(r.pause!.kicks).toBeLessThanOrEqual(2 * r.vcpus.length);
    expect(r.pause!.kicksSkipped!).toBeGreaterThanOrEqual(1);
    expect(r.pause!.completedAtMs!).toBeGreaterThanOrEqual(STALL_END_MS - 5);
  });

  it("kick de-duplication - an opt-in rekickMs timer adds no SIG_IPI to a vCPU stuck in KVM_RUN (thread_kicked stays set)", async () => {
    const r = await runToEnd(t.api, seedScenario({ kernel: { profile: "pre-6.2" }, vmm: { pauseAllAtMs: 400, resumeAtMs: 2500, rekickMs: 50 } }));
    expect(r.pause!.kicks).toBeLessThanOrEqual(2 * r.vcpus.length);
    expect(r.pause!.kicksSkipped!).toBeGreaterThan(10); // ~1700 ms of 50 ms ticks, each skipped per stuck vCPU
  });

  it("immediate-exit - 6.2 seed: no kick is a long-latency KVM_EXIT_INTR; with kvm-set-signal-mask the re-kick of a parked vCPU waits for the resume", async () => {
    const [imm, legacy] = await Promise.all([
      runToEnd(t.api, seedScenario({ kernel: { profile: "6.2" } })),
      runToEnd(t.api, seedScenario({ kernel: { profile: "6.2" }, vmm: { pauseAllAtMs: 400, resumeAtMs: 2500, signalMask: "kvm-set-signal-mask" } })),
    ]);
    const slowIntr = (r: Result) => kicks(r).filter((s) => s.outcome === "KVM_EXIT_INTR" && s.latencyUs! >= 1000 * 1000);
    expect(slowIntr(imm)).toEqual([]);
    expect(kicks(imm).some((s) => s.outcome === "delivered-in-vmm")).toBe(true);
    expect(imm.pause!.completedAtMs!).toBeLessThan(400 + FAST_MS);
    expect(slowIntr(legacy).length).toBeGreaterThanOrEqual(1);
    expect(formatSideBySide(imm, legacy)).toMatch(/SIG_IPI kicks sent \/ skipped +\d+ \/ \d+ +\d+ \/ \d+/);
    for (const v of [...imm.vcpus, ...legacy.vcpus]) expect(v.state).toBe("done");
  });
});

describe("signal classes", () => {
  it("coalescing (legacy_queue) - two SIGUSR1 to one vCPU in the same ms during a 6.2 stall: one KVM_EXIT_INTR, one coalesced, signal_exits 1", async () => {
    const r = await runToEnd(t.api, seedScenario({
      durationMs: 1200, vm: { vcpus: 1 }, vmm: {},
      signals: [{ atMs: 400, vcpus: 0, signal: "SIGUSR1" }, { atMs: 400, vcpus: 0, signal: "SIGUSR1" }],
    }));
    const v = r.vcpus[0]!;
    expect(v.signals.map((s) => s.outcome).sort()).toEqual(["KVM_EXIT_INTR", "coalesced"]);
    expect(v.stat.signal_exits).toBe(1);
    expect(v.blockedIn).toMatchObject({ waitState: "TASK_INTERRUPTIBLE" }); // re-faulted: the stall goes on
    expect(formatResult(r)).toContain("1 signal(s) coalesced with one already pending");
  });

  it("process-directed SIGTERM - termsig_handler's shutdown goes through pause_all_vcpus: pre-6.2 completes only after the stall, 6.2 at once; no vCPU killed", async () => {
    const over = { signals: [{ atMs: 400, process: true, signal: "SIGTERM" }], vmm: {} };
    const [old, now] = await Promise.all([
      runToEnd(t.api, seedScenario({ ...over, durationMs: 2600, kernel: { profile: "pre-6.2" } })),
      runToEnd(t.api, seedScenario({ ...over, durationMs: 1200, kernel: { profile: "6.2" } })),
    ]);
    for (const r of [old, now]) {
      expect(r.processSignals).toEqual([expect.objectContaining({ signal: "SIGTERM", thread: "main", outcome: "shutdown-requested" })]);
      expect(r.vcpus.map((v) => v.state)).toEqual(["paused", "paused"]);
      expect(r.shutdown).toMatchObject({ signal: "SIGTERM" });
    }
    expect(old.shutdown!.completedAtMs!).toBeGreaterThanOrEqual(STALL_END_MS - 5);
    expect(now.shutdown!.completedAtMs!).toBeLessThan(now.shutdown!.requestedAtMs + FAST_MS);
    expect(formatResult(old)).toMatch(/SIGTERM to the VMM process at \d+ ms → the main thread: shutdown-requested\n {2}shutdown \(SIGTERM\): requested \d+ ms, completed \d+ ms/);
  });

  it("thread-directed SIGTERM - blocked in QEMU's vCPU threads: pending, wakes nothing, no shutdown", async () => {
    const r = await runToEnd(t.api, seedScenario({ durationMs: 1200, signals: [{ atMs: 400, vcpus: 0, signal: "SIGTERM" }], vmm: {} }));
    expect(planned(r, 0)).toMatchObject({ outcome: "blocked", latencyUs: null });
    expect(r.vcpus[0]!.stat.signal_exits).toBe(0);
    expect(r.vcpus[0]!.blockedIn).toMatchObject({ waitState: "TASK_INTERRUPTIBLE" });
    expect(r.shutdown).toBeNull();
  });

  it("coredump class (SIGSEGV) vs non-coredump (SIGUSR2 to the process) during a pre-6.2 stall - SIGSEGV leaves the TASK_KILLABLE sleeper asleep, SIGUSR2 kills the VM at once", async () => {
    const base = { durationMs: 1200, kernel: { profile: "pre-6.2" }, vmm: {} };
    const [segv, usr2] = await Promise.all([
      runToEnd(t.api, seedScenario({ ...base, signals: [{ atMs: 400, vcpus: 0, signal: "SIGSEGV" }] })),
      runToEnd(t.api, seedScenario({ ...base, signals: [{ atMs: 400, process: true, signal: "SIGUSR2" }] })),
    ]);
    expect(segv.vcpus[0]!.blockedIn).toMatchObject({ waitState: "TASK_KILLABLE" });
    expect(planned(segv, 0).outcome).toBe("ignored");
    expect(segv.vcpus.map((v) => v.state)).toEqual(["blocked", "blocked"]);
    expect(usr2.vcpus.map((v) => v.state)).toEqual(["killed", "killed"]);
    expect(usr2.processSignals![0]).toMatchObject({ thread: "main", outcome: "killed" });
    expect(usr2.durationMs).toBeLessThan(STALL_END_MS);
  });

  it("pre-6.2 SIGKILL - gup -EINTR becomes -EFAULT (kvm_handle_bad_page): every vCPU killed with no KVM_EXIT_INTR and signal_exits 0; 6.2 counts a signal exit", async () => {
    const over = { vm: { vcpus: 2 }, signals: [{ atMs: 400, vcpus: 0, signal: "SIGKILL" }], vmm: {} };
    const [old, now] = await Promise.all([
      runToEnd(t.api, seedScenario({ ...over, kernel: { profile: "pre-6.2" } })),
      runToEnd(t.api, seedScenario({ ...over, kernel: { profile: "6.2" } })),
    ]);
    for (const v of old.vcpus) {
      expect(v.state).toBe("killed");
      expect(v.stat.signal_exits).toBe(0);
      expect(v.exits.KVM_EXIT_INTR ?? 0).toBe(0);
    }
    expect(planned(old, 0)).toMatchObject({ outcome: "killed", via: "fault-error" });
    expect(now.vcpus.map((v) => v.state)).toEqual(["killed", "killed"]);
    expect(now.vcpus[0]!.stat.signal_exits).toBeGreaterThanOrEqual(1);
  });
});

describe("the signal control (POST /v1/runs/:id/signals)", () => {
  it("signal control - process: true SIGTERM requests the shutdown; vcpus and process together are refused", async () => {
    const run = await t.api.createRun(seedScenario({ durationMs: 4000, signals: [], vmm: {}, kernel: { profile: "6.2" } }));
    await waitFor(t.api, run.id, (r) => r.status === "running", "running");
    const both = await httpError(t.api.call("POST", `/v1/runs/${run.id}/signals`, { signal: "SIGTERM", vcpus: 0, process: true }));
    expect({ status: both.status, code: both.body.code, path: both.body.path }).toEqual({ status: 400, code: "FL_ERR_INVALID", path: "/body/process" });
    const sent = await t.api.call<{ sent: unknown[]; process: { thread: unknown; outcome: string } }>("POST", `/v1/runs/${run.id}/signals`, { signal: "SIGTERM", process: true });
    expect(sent).toMatchObject({ sent: [], process: { thread: "main", outcome: "shutdown-requested" } });
    await waitFor(t.api, run.id, (r) => r.status !== "running" || r.vcpus.every((v) => v.state === "paused"), "parked");
    await t.api.call("DELETE", `/v1/runs/${run.id}`);
  });
});
