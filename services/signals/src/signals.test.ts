import { describe, expect, it } from "vitest";
import { PauseController } from "./pause.ts";
import { Tasks } from "./tasks.ts";

describe("signals", () => {
  it("signals - a second SIGUSR1 while one is pending is coalesced (legacy_queue): one delivery, the second record says so", () => {
    const t = new Tasks(2);
    t.send([0], "SIGUSR1", "plan", 10);
    const [c] = t.send([0], "SIGUSR1", "pause-kick", 12);
    expect(c).toBeUndefined(); // nothing new to wake
    expect(t.pendingOf(0)).toEqual(["SIGUSR1"]);
    const { eaten } = t.dequeue(0, 15, "KVM_EXIT_INTR", "gup-eintr");
    expect(eaten).toEqual(["SIGUSR1"]);
    expect(t.records.map((r) => [r.outcome, r.latencyUs])).toEqual([["KVM_EXIT_INTR", 5000], ["coalesced", null]]);
    expect(t.pendingOf(0)).toEqual([]);
    // once dequeued, the next one is queued again
    t.send([0], "SIGUSR1", "plan", 20);
    expect(t.records.at(-1)!.outcome).toBeNull();
  });

  it("signals - SIGKILL to one task queues SIGKILL on, and wakes, every task of the VM (complete_signal)", () => {
    const t = new Tasks(3);
    const changes = t.send([1], "SIGKILL", "api", 0);
    expect(changes.map((c) => [c.vcpu, c.fatal]).sort()).toEqual([[0, true], [1, true], [2, true]]);
    expect(t.vmKilled).toBe(true);
    // KVM_EXIT_INTR does not consume a fatal signal: the task dies on its way to userspace
    t.dequeue(0, 1, "KVM_EXIT_INTR", "gup-eintr");
    expect(t.fatalPending(0)).toBe(true);
  });

  it("signals - QEMU's vCPU threads block SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGTRAP, SIGABRT, SIGUSR2: they stay pending, wake nothing, kill nobody", () => {
    const t = new Tasks(1);
    for (const s of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGTRAP", "SIGABRT", "SIGUSR2"] as const) {
      expect(t.send([0], s, "plan", 0)).toEqual([]);
    }
    expect(t.records.every((r) => r.outcome === "blocked")).toBe(true);
    expect(t.pendingOf(0)).toEqual([]); // signal_pending() is false
    expect(t.blockedOf(0)).toHaveLength(7);
    expect(t.vmKilled).toBe(false);
  });

  it("signals - a coredump-class signal (SIGSEGV) wakes without fatal (signal_wake_up(t, 0)); the core dump then SIGKILLs the others (zap_threads)", () => {
    const t = new Tasks(3);
    const [c] = t.send([1], "SIGSEGV", "plan", 0);
    expect(c).toMatchObject({ vcpu: 1, fatal: false, pending: ["SIGSEGV"] });
    expect(t.vmKilled).toBe(false);
    const { woken } = t.dequeue(1, 5, "killed", "core-dump");
    expect(t.records[0]).toMatchObject({ outcome: "killed", via: "core-dump" });
    expect(woken.map((w) => [w.vcpu, w.fatal]).sort()).toEqual([[0, true], [2, true]]);
    expect(t.vmKilled).toBe(true);
  });

  it("signals - kill(pid): SIGTERM goes to the main thread (shutdown), SIGUSR2 is promoted to a group SIGKILL, SIGQUIT dumps core, SIGUSR1 goes to a vCPU thread", () => {
    const t = new Tasks(2);
    expect(t.sendProcess("SIGTERM", "plan", 0)).toMatchObject({ record: { thread: "main", outcome: "shutdown-requested" }, changes: [] });
    const usr1 = t.sendProcess("SIGUSR1", "plan", 1);
    expect(usr1.record).toMatchObject({ thread: 0, outcome: "to-vcpu" });
    expect(t.records.at(-1)).toMatchObject({ vcpu: 0, signal: "SIGUSR1", outcome: null });
    expect(t.vmKilled).toBe(false);
    const quit = new Tasks(2).sendProcess("SIGQUIT", "plan", 2);
    expect(quit.record).toMatchObject({ thread: "main", outcome: "core-dump" });
    expect(quit.changes.every((c) => c.fatal)).toBe(true);
    const usr2 = t.sendProcess("SIGUSR2", "plan", 3);
    expect(usr2.record).toMatchObject({ thread: "main", outcome: "killed" });
    expect(usr2.changes.map((c) => c.vcpu).sort()).toEqual([0, 1]);
    expect(t.vmKilled).toBe(true);
  });

  function pc(vcpus: number, rekickMs?: number) {
    const kicks: number[][] = [];
    const timers: Array<() => void> = [];
    const p = new PauseController(vcpus, rekickMs, {
      now: () => 0,
      stopAll: async () => undefined,
      contAll: async () => undefined,
      kick: (v) => kicks.push(v),
      every: (_ms, fn) => (timers.push(fn), () => undefined),
    });
    for (let v = 0; v < vcpus; v++) p.onState(v, "running");
    return { p, kicks, timers };
  }

  it("pause - kicks every vCPU once; a park re-kicks every vCPU but cpus_kick_thread skips those with thread_kicked set", async () => {
    const { p, kicks, timers } = pc(3);
    const rec = await p.pause();
    expect(kicks).toEqual([[0, 1, 2]]);
    expect(timers).toHaveLength(0); // no timed re-kick by default
    p.onState(0, "paused"); // qemu_wait_io_event_common cleared vCPU 0's thread_kicked; 1 and 2 are still in KVM_RUN
    expect(kicks.at(-1)).toEqual([0]);
    p.onState(1, "paused");
    expect(kicks.at(-1)).toEqual([1]);
    expect(rec.completedAtMs).toBeNull();
    p.onState(2, "paused");
    expect(rec.completedAtMs).not.toBeNull();
    expect(rec.kicks).toBe(5);
    expect(rec.kicksSkipped).toBe(4);
    // resume_all_vcpus → cpu_resume kicks too: only vCPU 2 (the last to park) has thread_kicked clear
    await p.resume();
    expect(kicks.at(-1)).toEqual([2]);
    expect(rec.kicks).toBe(6);
  });

  it("pause - the opt-in rekickMs timer re-kicks through cpus_kick_thread: vCPUs still in KVM_RUN are skipped", async () => {
    const { p, kicks, timers } = pc(2, 50);
    const rec = await p.pause();
    expect(timers).toHaveLength(1);
    timers[0]!();
    expect(rec.kicks).toBe(2); // both still kicked: skipped
    expect(rec.kicksSkipped).toBe(2);
    p.onState(1, "paused"); // vCPU 1 parks: cleared, then re-kicked by the park itself
    expect(kicks.at(-1)).toEqual([1]);
    timers[0]!();
    expect(rec.kicks).toBe(3);
  });

  it("pause - coming back from kvm_cpu_exec during a pause does not clear thread_kicked before the park (one BQL section); outside a pause it does", async () => {
    const { p, kicks } = pc(2);
    const rec = await p.pause();
    p.leftKvmRun(1); // vCPU 1 is on its way to park: not yet visible as cleared
    p.onState(0, "paused"); // the re-kick reaches vCPU 0 only
    expect(kicks.at(-1)).toEqual([0]);
    p.onState(1, "paused");
    expect(rec.completedAtMs).not.toBeNull();
    await p.resume(); // cpu_resume: only vCPU 1 (cleared at its park, never re-kicked) gets a SIG_IPI
    expect(kicks.at(-1)).toEqual([1]);
    expect(rec.kicks).toBe(4);
    p.leftKvmRun(0); // no pause now: -EINTR back in kvm_vcpu_thread_fn clears it
    expect(p.kicked(0)).toBe(false);
  });

  it("pause - never completes once a vCPU is killed, and stops kicking", async () => {
    const { p, kicks } = pc(2);
    const rec = await p.pause();
    p.onState(1, "killed");
    p.onState(0, "paused");
    expect(rec.completedAtMs).toBeNull();
    expect(kicks).toHaveLength(1);
  });
});

describe("pause - QEMU's main loop", () => {
  function ctl(vcpus: number) {
    const kicks: number[][] = [];
    let conts = 0;
    const p = new PauseController(vcpus, undefined, {
      now: () => 0, stopAll: async () => undefined, contAll: async () => void conts++, kick: (v) => kicks.push(v), every: () => () => undefined,
    });
    return { p, kicks, conts: () => conts };
  }

  it("pause - a resume asked for while the pause is incomplete waits for it (resume_all_vcpus runs after pause_all_vcpus returns)", async () => {
    const { p, conts } = ctl(2);
    const rec = await p.pause();
    p.onState(0, "paused");
    const resumed = p.resume();
    expect(p.resumeDeferred).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(conts()).toBe(0);
    expect(rec.resumedAtMs).toBeNull();
    expect(rec.resumeRequestedAtMs).toBe(0);
    p.onState(1, "paused"); // the pause completes: the main loop goes on to the resume
    await resumed;
    expect(conts()).toBe(1);
    expect(rec.resumedAtMs).not.toBeNull();
  });

  it("pause - a vCPU back to running from a halt inside KVM_RUN keeps thread_kicked (only a park or unpark clears it)", async () => {
    const { p, kicks } = ctl(2);
    p.onState(0, "halted");
    await p.pause();
    expect(kicks).toEqual([[0, 1]]);
    p.onState(0, "running"); // the APF halt ended inside KVM_RUN: kvm_cpu_exec has not returned
    expect(p.kicked(0)).toBe(true);
    p.onState(1, "paused"); // a park: qemu_pause_cond → kick all; vCPU 0's kick is still pending
    expect(kicks.at(-1)).toEqual([1]);
  });
});

describe("signals - process-directed", () => {
  it("signals - kill(pid, SIGUSR1) goes to a vCPU thread with nothing pending (complete_signal's wants_signal), not into vCPU 0's pending SIG_IPI", () => {
    const t = new Tasks(3);
    t.send([0], "SIGUSR1", "pause-kick", 1);
    const { record } = t.sendProcess("SIGUSR1", "plan", 2);
    expect(record.outcome).toBe("to-vcpu");
    expect(record.thread).toBe(1);
    expect(t.pendingOf(1)).toEqual(["SIGUSR1"]);
    expect(t.records.filter((r) => r.outcome === "coalesced")).toEqual([]);
  });
});
