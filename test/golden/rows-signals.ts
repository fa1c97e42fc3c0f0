/**
 * Golden rows (see rows.ts) for the signals side: QEMU's signal model (accel/kvm/kvm-all.c,
 * system/cpus.c, os-posix.c, system/runstate.c, util/qemu-thread-posix.c) and the kernel's signal
 * classes (kernel/signal.c). Each check states what the cited source implies, not what Faultline prints.
 */
import { expect } from "vitest";
import type { Result } from "@faultline/shared";
import type { RowCase } from "./rows.ts";

/** the page source is silent from 100 ms to 2100 ms (postcopy paused) */
const STALL = { atMs: 100, forMs: 2000 };
const STALL_END_MS = STALL.atMs + STALL.forMs;
/** "at once": far below the 2000 ms stall, generous for a shared 2-core machine */
const PROMPT_MS = 250;

const stalled = (over: Record<string, unknown>) => ({
  durationMs: 6000,
  kernel: { profile: "6.2" },
  vm: { vcpus: 2 },
  pager: { latency: { us: 200 }, stalls: [STALL] },
  workload: { pagesPerVcpu: 256 },
  signals: [],
  vmm: {},
  ...over,
});

/** resume_all_vcpus of `parked` (scenario time); `pause.resumedAtMs` is stamped later, once the vcpu service acknowledged it */
const RESUME_AT_MS = 700;

/** one vCPU whose guest has finished (halted in kvm_vcpu_block) when the VMM stops it at 300 ms; SIGUSR1 at 500 ms; resume at 700 ms */
const parked = (signalMask: string) => ({
  durationMs: 1500, kernel: { profile: "6.2" }, vm: { vcpus: 1 }, workload: { pagesPerVcpu: 16 }, pager: { latency: { us: 100 } },
  signals: [{ atMs: 500, vcpus: 0, signal: "SIGUSR1" }],
  vmm: { pauseAllAtMs: 300, resumeAtMs: RESUME_AT_MS, signalMask },
});

const plan = (r: Result, vcpu: number) => r.vcpus[vcpu]!.signals.find((s) => s.source === "plan")!;
const doneAt = (s: { sentAtMs: number; latencyUs: number | null }) => s.sentAtMs + s.latencyUs! / 1000;

export const SIGNAL_ROWS: RowCase[] = [
  {
    id: "immediate-exit-parked-kick",
    situation: "SIG_IPI to a parked vCPU thread, QEMU with KVM_CAP_IMMEDIATE_EXIT",
    expected: "taken at once by the handler in userspace (delivered-in-vmm, parked); the next KVM_RUN returns -EINTR without KVM_EXIT_INTR or signal_exits++",
    cite: "QEMU `kvm_init_cpu_signals` (`pthread_sigmask` unblocks SIG_IPI), `kvm_ipi_signal` → `kvm_cpu_kick` (run->immediate_exit), `kvm_eat_signals`; x86.c `kvm_arch_vcpu_ioctl_run` (!vcpu->wants_to_run → -EINTR); docs/signals.md",
    scenario: parked("immediate-exit"),
    check: (r) => {
      const s = plan(r, 0);
      expect(s).toMatchObject({ outcome: "delivered-in-vmm", via: "parked" });
      expect(doneAt(s)).toBeLessThan(RESUME_AT_MS); // handled while still parked
      expect(r.vcpus[0]!.immediateExits!).toBeGreaterThanOrEqual(1);
      expect(r.vcpus[0]!.stat.signal_exits).toBe(1); // only the pause kick's halt wakeup
    },
  },
  {
    id: "set-signal-mask-parked-kick",
    situation: "SIG_IPI to a parked vCPU thread, QEMU without KVM_CAP_IMMEDIATE_EXIT (KVM_SET_SIGNAL_MASK)",
    expected: "blocked in userspace: pending until the next KVM_RUN, which exits at the pre-entry check with KVM_EXIT_INTR (signal_exits++)",
    cite: "QEMU `kvm_init_cpu_signals` (`kvm_set_signal_mask`), `kvm_eat_signals` (sigtimedwait); x86.c `vcpu_enter_guest` / `kvm_handle_signal_exit`; docs/signals.md",
    scenario: parked("kvm-set-signal-mask"),
    check: (r) => {
      const s = plan(r, 0);
      expect(s).toMatchObject({ outcome: "KVM_EXIT_INTR", via: "pre-entry-check" });
      expect(doneAt(s)).toBeGreaterThanOrEqual(RESUME_AT_MS); // not before the resume was requested
      expect(r.vcpus[0]!.immediateExits ?? 0).toBe(0);
      expect(r.vcpus[0]!.stat.signal_exits).toBe(2);
    },
  },
  {
    id: "kick-dedup-pre-6.2",
    situation: "pause_all_vcpus while both vCPUs sleep TASK_KILLABLE (pre-6.2 postcopy stall)",
    expected: "one SIG_IPI per vCPU stuck in KVM_RUN: re-kicks (on each park, and on resume) skip a vCPU whose thread_kicked is set; at most 2 per vCPU in all",
    cite: "QEMU `cpus_kick_thread` (cpu->thread_kicked), `qemu_wait_io_event_common` (clears it), `pause_all_vcpus` (re-kick only when `qemu_pause_cond` is signalled), `cpu_resume`; docs/signals.md",
    scenario: stalled({ kernel: { profile: "pre-6.2" }, signals: [{ atMs: 400, vcpus: "all", signal: "SIGUSR1" }], vmm: { pauseAllAtMs: 400, resumeAtMs: 2500 } }),
    check: (r) => {
      expect(r.pause!.kicks).toBeLessThanOrEqual(2 * r.vcpus.length);
      expect(r.pause!.kicksSkipped!).toBeGreaterThanOrEqual(1);
      for (const v of r.vcpus) expect(v.signals.filter((s) => s.source === "pause-kick").length).toBeLessThanOrEqual(2);
      expect(r.pause!.completedAtMs!).toBeGreaterThanOrEqual(STALL_END_MS - 5);
    },
  },
  {
    id: "coalesce-sigusr1",
    situation: "two SIGUSR1 to one vCPU in the same ms, 6.2 stall",
    expected: "a standard signal is not queued twice: one KVM_EXIT_INTR, the second coalesced, signal_exits 1",
    cite: "kernel/signal.c `__send_signal_locked` → `legacy_queue`; docs/signals.md",
    scenario: stalled({ durationMs: 1200, vm: { vcpus: 1 }, signals: [{ atMs: 400, vcpus: 0, signal: "SIGUSR1" }, { atMs: 400, vcpus: 0, signal: "SIGUSR1" }] }),
    check: (r) => {
      const v = r.vcpus[0]!;
      expect(v.signals.map((s) => s.outcome).sort()).toEqual(["KVM_EXIT_INTR", "coalesced"]);
      expect(v.stat.signal_exits).toBe(1);
    },
  },
  {
    id: "process-sigterm-pre-6.2",
    situation: "SIGTERM to the VMM process (kill), pre-6.2 stall",
    expected: "termsig_handler on the main thread requests a shutdown; it stops the vCPUs through pause_all_vcpus, which waits for the TASK_KILLABLE sleepers: complete only after the stall, no vCPU killed",
    cite: "QEMU os-posix.c `termsig_handler` → `qemu_system_killed`; runstate.c `main_loop_should_exit`, `qemu_cleanup` → `vm_shutdown` → `do_vm_stop` → `pause_all_vcpus`; `qemu_thread_create` (vCPU threads block SIGTERM); docs/signals.md",
    scenario: stalled({ durationMs: 2600, kernel: { profile: "pre-6.2" }, signals: [{ atMs: 400, process: true, signal: "SIGTERM" }] }),
    check: (r) => {
      expect(r.processSignals).toEqual([expect.objectContaining({ thread: "main", outcome: "shutdown-requested" })]);
      expect(r.shutdown!.completedAtMs!).toBeGreaterThanOrEqual(STALL_END_MS - 5);
      expect(r.vcpus.map((v) => v.state)).toEqual(["paused", "paused"]);
    },
  },
  {
    id: "process-sigterm-6.2",
    situation: "SIGTERM to the VMM process (kill), 6.2 stall",
    expected: "the shutdown's pause_all_vcpus kicks the TASK_INTERRUPTIBLE sleepers out (KVM_EXIT_INTR): complete at once, no vCPU killed",
    cite: "QEMU os-posix.c `termsig_handler` → `qemu_system_killed` → `pause_all_vcpus`; kvm_main.c FOLL_INTERRUPTIBLE / KVM_PFN_ERR_SIGPENDING; docs/signals.md",
    scenario: stalled({ durationMs: 1200, signals: [{ atMs: 400, process: true, signal: "SIGTERM" }] }),
    check: (r) => {
      expect(r.shutdown!.completedAtMs!).toBeLessThan(r.shutdown!.requestedAtMs + PROMPT_MS);
      expect(r.vcpus.map((v) => v.state)).toEqual(["paused", "paused"]);
    },
  },
  {
    id: "thread-sigterm-blocked",
    situation: "SIGTERM straight to a vCPU thread (tgkill), 6.2 stall",
    expected: "QEMU's vCPU threads block it: pending, signal_pending() false, the TASK_INTERRUPTIBLE sleeper is not woken, no shutdown",
    cite: "QEMU util/qemu-thread-posix.c `qemu_thread_create` (all signals blocked but SIGSEGV/SIGFPE/SIGILL); kernel/signal.c `complete_signal` (`wants_signal`); docs/signals.md",
    scenario: stalled({ durationMs: 1200, signals: [{ atMs: 400, vcpus: 0, signal: "SIGTERM" }] }),
    check: (r) => {
      expect(plan(r, 0).outcome).toBe("blocked");
      expect(r.vcpus[0]!.blockedIn).toMatchObject({ waitState: "TASK_INTERRUPTIBLE" });
      expect(r.vcpus[0]!.stat.signal_exits).toBe(0);
      expect(r.shutdown).toBeNull();
    },
  },
  {
    id: "coredump-vs-killable",
    situation: "SIGSEGV (coredump class, unblocked in vCPU threads) to a vCPU asleep TASK_KILLABLE, pre-6.2 stall",
    expected: "not promoted to a group SIGKILL, so fatal_signal_pending() stays false: the TASK_KILLABLE sleeper is not woken, nobody dies during the stall",
    cite: "kernel/signal.c `complete_signal` (!`sig_kernel_coredump`), signal_wake_up(t, 0); docs/signals.md",
    scenario: stalled({ durationMs: 1200, kernel: { profile: "pre-6.2" }, signals: [{ atMs: 400, vcpus: 0, signal: "SIGSEGV" }] }),
    check: (r) => {
      expect(r.vcpus[0]!.blockedIn).toMatchObject({ waitState: "TASK_KILLABLE" });
      expect(plan(r, 0).outcome).toBe("ignored");
      expect(r.vcpus.map((v) => v.state)).toEqual(["blocked", "blocked"]);
    },
  },
  {
    id: "coredump-interruptible",
    situation: "SIGSEGV to a vCPU asleep TASK_INTERRUPTIBLE, 6.2 stall",
    expected: "woken at once (KVM_EXIT_INTR); on its way to userspace the thread dumps core and zap_threads kills every vCPU",
    cite: "kernel/signal.c `complete_signal`, `get_signal` → `do_coredump`; fs/coredump.c `zap_threads`; docs/signals.md",
    scenario: stalled({ signals: [{ atMs: 400, vcpus: 0, signal: "SIGSEGV" }] }),
    check: (r) => {
      expect(r.vcpus.map((v) => v.state)).toEqual(["killed", "killed"]);
      expect(plan(r, 0)).toMatchObject({ outcome: "killed", via: "core-dump" });
      expect(r.vcpus[0]!.exits.KVM_EXIT_INTR).toBeGreaterThanOrEqual(1);
      expect(r.durationMs).toBeLessThan(STALL_END_MS);
    },
  },
  {
    id: "sigkill-pre-6.2-counters",
    situation: "SIGKILL to a vCPU during a pre-6.2 stall",
    expected: "gup's -EINTR has no KVM_PFN_ERR_SIGPENDING to become: KVM_PFN_ERR_FAULT → kvm_handle_bad_page → KVM_RUN -EFAULT; every vCPU dies with no KVM_EXIT_INTR and signal_exits 0",
    cite: "pre-6.2 mmu.c `handle_abnormal_pfn` → `kvm_handle_bad_page`; kvm_main.c `hva_to_pfn` (no -EINTR case before 6.2); docs/signals.md",
    scenario: stalled({ kernel: { profile: "pre-6.2" }, signals: [{ atMs: 400, vcpus: 0, signal: "SIGKILL" }] }),
    check: (r) => {
      for (const v of r.vcpus) {
        expect(v.state).toBe("killed");
        expect(v.stat.signal_exits).toBe(0);
        expect(v.exits.KVM_EXIT_INTR ?? 0).toBe(0);
      }
      expect(plan(r, 0)).toMatchObject({ outcome: "killed", via: "fault-error" });
    },
  },
];
