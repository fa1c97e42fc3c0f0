/**
 * QEMU's signal model and the kernel's signal classes, through the real Vcpu + Mmu + Uffd + Tasks +
 * PauseController logic (test/helpers/inproc.ts), by ordering only. QEMU: accel/kvm/kvm-all.c
 * (kvm_init_cpu_signals, kvm_ipi_signal, kvm_cpu_kick, kvm_eat_signals), system/cpus.c
 * (pause_all_vcpus, cpus_kick_thread); kernel: kernel/signal.c (complete_signal, legacy_queue).
 */
import { describe, expect, it } from "vitest";
import { harness, settle, until } from "../helpers/inproc.ts";

describe("QEMU signal mask (vmm.signalMask)", () => {
  it("immediate-exit - a kick to a parked vCPU is handled at once in the VMM; the next KVM_RUN returns -EINTR without KVM_EXIT_INTR", async () => {
    const h = harness("6.2", { pages: 2, autoFill: true });
    await until(() => h.vcpus[0]!.state === "done", "guest halted");
    await h.pause.pause();
    await until(() => h.vcpus[0]!.state === "paused", "parked");
    const exitsBefore = h.vcpus[0]!.stat.signal_exits;
    h.send([0], "SIGUSR1"); // lands while parked in qemu_wait_io_event
    await until(() => h.tasks.records.at(-1)!.outcome !== null, "taken");
    expect(h.tasks.records.at(-1)).toMatchObject({ outcome: "delivered-in-vmm", via: "parked" });
    expect(h.tasks.records.at(-1)!.latencyUs!).toBeLessThan(1000 * 1000);
    await h.pause.resume();
    await until(() => h.vcpus[0]!.immediateExits >= 1, "immediate exit");
    await settle(20);
    expect(h.vcpus[0]!.stat.signal_exits).toBe(exitsBefore); // kvm_handle_signal_exit never ran
    expect(h.vcpus[0]!.immediateExit).toBe(false); // kvm_eat_signals cleared it
    h.close();
  });

  it("kvm-set-signal-mask - a kick to a parked vCPU stays pending until the next KVM_RUN exits at the pre-entry check", async () => {
    const h = harness("6.2", { pages: 2, autoFill: true, signalMask: "kvm-set-signal-mask" });
    await until(() => h.vcpus[0]!.state === "done", "guest halted");
    await h.pause.pause();
    await until(() => h.vcpus[0]!.state === "paused", "parked");
    const exitsBefore = h.vcpus[0]!.stat.signal_exits;
    h.send([0], "SIGUSR1");
    await settle(50);
    const plan = h.tasks.records.find((r) => r.source === "plan")!;
    expect(plan.outcome).toBeNull(); // blocked in userspace: pending
    await h.pause.resume(); // cpu_resume's own kick finds SIG_IPI still pending: coalesced
    await until(() => plan.outcome !== null, "delivered in KVM_RUN");
    expect(plan).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "pre-entry-check" });
    expect(h.vcpus[0]!.stat.signal_exits).toBeGreaterThan(exitsBefore);
    expect(h.vcpus[0]!.immediateExits).toBe(0);
    h.close();
  });
});

describe("signal classes (complete_signal)", () => {
  it("SIGSEGV to a vCPU thread, pre-6.2 - coredump class: does not wake TASK_KILLABLE; after the page, KVM_EXIT_INTR, then the core dump kills every vCPU", async () => {
    const h = harness("pre-6.2", { vcpus: 2 });
    await until(() => h.uffd.waiters().length === 2, "both asleep");
    h.send([0], "SIGSEGV");
    await settle(50);
    expect(h.uffd.waiters()).toHaveLength(2);
    expect(h.vcpus.map((v) => v.state)).toEqual(["running", "running"]);
    h.release(0);
    await until(() => h.vcpus.every((v) => v.state === "killed"), "all killed");
    expect(h.tasks.records[0]).toMatchObject({ signal: "SIGSEGV", outcome: "killed", via: "core-dump" });
    expect(h.vcpus[0]!.stat.signal_exits).toBe(1); // it left KVM_RUN by the pre-entry check
    expect(h.fetching.has(4)).toBe(true); // vCPU 1's page never came: zap_threads' SIGKILL woke it
    h.close();
  });

  it("SIGSEGV to a vCPU thread, 6.2 - wakes the TASK_INTERRUPTIBLE sleeper at once (KVM_EXIT_INTR), then the core dump kills every vCPU", async () => {
    const h = harness("6.2", { vcpus: 2 });
    await until(() => h.uffd.waiters().length === 2, "both asleep");
    h.send([0], "SIGSEGV");
    await until(() => h.vcpus.every((v) => v.state === "killed"), "all killed");
    expect(h.tasks.records[0]).toMatchObject({ outcome: "killed", via: "core-dump" });
    expect(h.vcpus[0]!.exits.KVM_EXIT_INTR).toBe(1);
    expect([...h.fetching].sort()).toEqual([0, 4]); // no page arrived
    h.close();
  });

  it("kill(pid) SIGUSR2, pre-6.2 - no handler, not coredump: promoted to a group SIGKILL, which wakes TASK_KILLABLE", async () => {
    const h = harness("pre-6.2", { vcpus: 2 });
    await until(() => h.uffd.waiters().length === 2, "both asleep");
    h.sendProcess("SIGUSR2");
    await until(() => h.vcpus.every((v) => v.state === "killed"), "all killed");
    expect(h.tasks.processRecords[0]).toMatchObject({ thread: "main", outcome: "killed" });
    h.close();
  });
});

describe("pre-6.2 SIGKILL (no KVM_PFN_ERR_SIGPENDING)", () => {
  for (const [profile, exits] of [["pre-6.2", 0], ["6.2", 1]] as const) {
    it(`SIGKILL during a slow fault, profile ${profile} - signal_exits ${exits}: ${profile === "pre-6.2" ? "gup -EINTR → KVM_PFN_ERR_FAULT → -EFAULT" : "KVM_PFN_ERR_SIGPENDING → KVM_EXIT_INTR"}`, async () => {
      const h = harness(profile, { vcpus: 2 });
      await until(() => h.uffd.waiters().length === 2, "both asleep");
      h.send([0], "SIGKILL");
      await until(() => h.vcpus.every((v) => v.state === "killed"), "all killed");
      for (const v of h.vcpus) {
        expect(v.stat.signal_exits).toBe(exits);
        expect(v.exits.KVM_EXIT_INTR ?? 0).toBe(exits);
      }
      expect(h.tasks.records[0]).toMatchObject({ outcome: "killed", via: profile === "pre-6.2" ? "fault-error" : "gup-eintr" });
      h.close();
    });
  }
});
