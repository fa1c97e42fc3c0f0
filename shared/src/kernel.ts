/**
 * Kernel constants and names that Faultline models. Values are the real uapi/kernel ones where
 * they exist (include/uapi/linux/kvm.h, include/linux/kvm_host.h, arch/x86/kvm/mmu/mmu_internal.h),
 * so a result can be read next to a trace of a real VM.
 */

/** `run->exit_reason` values (include/uapi/linux/kvm.h). */
export const KVM_EXIT = {
  KVM_EXIT_UNKNOWN: 0,
  KVM_EXIT_IO: 2,
  KVM_EXIT_HLT: 5,
  KVM_EXIT_MMIO: 6,
  KVM_EXIT_INTR: 10,
  KVM_EXIT_MEMORY_FAULT: 39,
} as const;
export type KvmExitName = keyof typeof KVM_EXIT;

/** Return codes of the x86 fault handler (mmu_internal.h); all >= 0, -errno are separate. */
export const RET_PF = {
  RET_PF_CONTINUE: 0,
  RET_PF_RETRY: 1,
  RET_PF_EMULATE: 2,
  RET_PF_WRITE_PROTECTED: 3,
  RET_PF_INVALID: 4,
  RET_PF_FIXED: 5,
  RET_PF_SPURIOUS: 6,
} as const;
export type RetPfName = keyof typeof RET_PF;

/** Blocking states of a sleeping task (include/linux/sched.h), plus Faultline's SPINNING for kernel-uaccess busy loops. */
export const WAIT_STATES = ["TASK_INTERRUPTIBLE", "TASK_KILLABLE", "SPINNING"] as const;
export type WaitState = (typeof WAIT_STATES)[number];

/** Kernel profiles (docs/profiles.md): three merged behaviours and two proposed designs. */
export const MERGED_PROFILES = ["pre-6.2", "6.2", "6.13"] as const;
export const PROPOSED_PROFILES = ["exit-on-missing", "kvm-userfault"] as const;
export const PROFILES = [...MERGED_PROFILES, ...PROPOSED_PROFILES] as const;
export type Profile = (typeof PROFILES)[number];

/**
 * Proposed designs that turn a stage-2 miss into `KVM_EXIT_MEMORY_FAULT` instead of sleeping in uffd:
 * Anish Moorthy's `KVM_MEM_EXIT_ON_MISSING` (fast GUP only, exit on a miss) and James Houghton's
 * `KVM_MEM_USERFAULT` (a bitmap tested before GUP). Both build on 6.13; KVM's own accesses (emulation,
 * `kvm_vcpu_map`, pfn caches) still go through userfaultfd (docs/profiles.md).
 */
export function exitsOnMissing(profile: Profile): boolean {
  return profile === "exit-on-missing" || profile === "kvm-userfault";
}

/** `run->memory_fault.flags` (include/uapi/linux/kvm.h; USERFAULT from the KVM Userfault series). */
export const KVM_MEMORY_EXIT_FLAG_USERFAULT = 1 << 4;
export const DEFAULT_PROFILE: Profile = "6.13";

/**
 * Whether attempt 2 of `__kvm_mmu_faultin_pfn` passes FOLL_INTERRUPTIBLE (Peter Xu's series, v6.2).
 * Before it, `__gfn_to_pfn_memslot(slot, gfn, false, NULL, ...)` slept TASK_KILLABLE.
 */
export function follInterruptible(profile: Profile): boolean {
  return profile !== "pre-6.2";
}

/**
 * Where a guest access meets a missing page (docs/faults.md, "The sites and their wait states"):
 * - `tdp`: a stage-2 (EPT/NPT) violation, `kvm_mmu_page_fault` → the two-attempt fault-in;
 * - `emulated`: KVM reads guest memory itself (`kvm_read_guest` → `__copy_from_user`), a kernel-mode
 *   fault that wakes on a signal but only aborts on a fatal one, so it busy-loops (SPINNING);
 * - `nested-map`: `kvm_vcpu_map` of a vmcs12 page (`nested_get_vmcs12_pages`), TASK_KILLABLE, -EINVAL;
 * - `pfn-cache`: a `gfn_to_pfn_cache` refresh (`hva_to_pfn_retry`: kvmclock, Xen), TASK_KILLABLE, -EFAULT.
 */
export const SITES = ["tdp", "emulated", "nested-map", "pfn-cache"] as const;
export type Site = (typeof SITES)[number];

/**
 * A signal's default action class (kernel/signal.c `SIG_KERNEL_*_MASK`): `term` terminates,
 * `core` terminates with a core dump (`sig_kernel_coredump`), `kill` is SIGKILL (never caught or blocked).
 */
export type SignalAction = "term" | "core" | "kill";

export interface SignalInfo {
  /** x86 signal number */
  signo: number;
  action: SignalAction;
  /** the handler QEMU installs for it (process-wide: `sigaction` is per thread group), null = SIG_DFL */
  qemuHandler: string | null;
  /**
   * blocked in QEMU's vCPU threads: `qemu_thread_create` starts every thread with all signals blocked
   * but SIGSEGV, SIGFPE and SIGILL; `kvm_init_cpu_signals` unblocks SIG_IPI (and SIGBUS)
   */
  blockedInVcpu: boolean;
  /** blocked in QEMU's main thread: `qemu_signal_init` blocks SIG_IPI, SIGIO, SIGALRM and SIGBUS there */
  blockedInMain: boolean;
}

/** Signals Faultline can send, with QEMU's dispositions for them (a QEMU/KVM VMM on Linux x86). */
export const SIGNALS = {
  SIGHUP: { signo: 1, action: "term", qemuHandler: "termsig_handler", blockedInVcpu: true, blockedInMain: false },
  SIGINT: { signo: 2, action: "term", qemuHandler: "termsig_handler", blockedInVcpu: true, blockedInMain: false },
  SIGQUIT: { signo: 3, action: "core", qemuHandler: null, blockedInVcpu: true, blockedInMain: false },
  SIGILL: { signo: 4, action: "core", qemuHandler: null, blockedInVcpu: false, blockedInMain: false },
  SIGTRAP: { signo: 5, action: "core", qemuHandler: null, blockedInVcpu: true, blockedInMain: false },
  SIGABRT: { signo: 6, action: "core", qemuHandler: null, blockedInVcpu: true, blockedInMain: false },
  SIGKILL: { signo: 9, action: "kill", qemuHandler: null, blockedInVcpu: false, blockedInMain: false },
  SIGUSR1: { signo: 10, action: "term", qemuHandler: "kvm_ipi_signal", blockedInVcpu: false, blockedInMain: true },
  SIGSEGV: { signo: 11, action: "core", qemuHandler: null, blockedInVcpu: false, blockedInMain: false },
  SIGUSR2: { signo: 12, action: "term", qemuHandler: null, blockedInVcpu: true, blockedInMain: false },
  SIGTERM: { signo: 15, action: "term", qemuHandler: "termsig_handler", blockedInVcpu: true, blockedInMain: false },
} as const satisfies Record<string, SignalInfo>;
export type SignalName = keyof typeof SIGNALS;
export const SIGNAL_NAMES = Object.keys(SIGNALS) as SignalName[];

/** QEMU's `#define SIG_IPI SIGUSR1` (include/qemu/main-loop.h): the pause kick. */
export const SIG_IPI: SignalName = "SIGUSR1";

/** The signals QEMU installs a handler for (so their default action never applies). */
export const VMM_HANDLED_SIGNALS: ReadonlySet<SignalName> = new Set(SIGNAL_NAMES.filter((s) => SIGNALS[s].qemuHandler !== null));

/**
 * How QEMU's vCPU thread takes SIG_IPI outside `KVM_RUN` (scenario `vmm.signalMask`):
 * `immediate-exit` (KVM_CAP_IMMEDIATE_EXIT): unblocked with `pthread_sigmask`, its handler sets
 * `run->immediate_exit`; `kvm-set-signal-mask` (the fallback): blocked in userspace, unblocked only
 * inside `KVM_RUN` through `KVM_SET_SIGNAL_MASK`.
 */
export const SIGNAL_MASK_MODES = ["immediate-exit", "kvm-set-signal-mask"] as const;
export type SignalMaskMode = (typeof SIGNAL_MASK_MODES)[number];

/** Which thread of the VMM a signal is aimed at: a vCPU thread (tgkill) or the main thread. */
export type VmmThread = "vcpu" | "main";

/** `sigismember(&t->blocked, sig)` for a QEMU thread of that kind (SIGKILL can never be blocked). */
export function blockedIn(signal: SignalName, thread: VmmThread): boolean {
  const s: SignalInfo = SIGNALS[signal];
  return thread === "vcpu" ? s.blockedInVcpu : s.blockedInMain;
}

/**
 * `complete_signal`: a signal that reaches a thread that does not block it is promoted to a group
 * SIGKILL (every thread gets SIGKILL and is woken, `fatal_signal_pending` becomes true) when
 * `sig_fatal` (no handler, default action terminate) and not `sig_kernel_coredump`. This is what
 * `fatal` means throughout Faultline.
 */
export function isFatal(signal: SignalName): boolean {
  const s: SignalInfo = SIGNALS[signal];
  return s.action === "kill" || (s.action === "term" && s.qemuHandler === null);
}

/**
 * A coredump-class signal with no handler (`sig_kernel_coredump`): not promoted by `complete_signal`
 * (it wakes only an interruptible sleeper, `signal_wake_up(t, 0)`); the thread that dequeues it on
 * its way to userspace (`get_signal`) dumps core, and `zap_threads` SIGKILLs every other thread.
 */
export function isCoredump(signal: SignalName): boolean {
  const s: SignalInfo = SIGNALS[signal];
  return s.action === "core" && s.qemuHandler === null;
}

export const PAGE_SIZE = 4096;
