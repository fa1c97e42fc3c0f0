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

/** Signals Faultline can send. `fatal` = SIGKILL or a default-terminate signal with no handler (`complete_signal`, docs/signals.md). */
export const SIGNALS = {
  SIGINT: { signo: 2, fatalWithoutHandler: true },
  SIGTRAP: { signo: 5, fatalWithoutHandler: true },
  SIGKILL: { signo: 9, fatalWithoutHandler: true },
  SIGUSR1: { signo: 10, fatalWithoutHandler: true },
  SIGTERM: { signo: 15, fatalWithoutHandler: true },
} as const;
export type SignalName = keyof typeof SIGNALS;
export const SIGNAL_NAMES = Object.keys(SIGNALS) as SignalName[];

/** QEMU's `#define SIG_IPI SIGUSR1` (include/qemu/main-loop.h): the pause kick. */
export const SIG_IPI: SignalName = "SIGUSR1";

/**
 * The VMM (QEMU) installs handlers for these, so they are not fatal: SIG_IPI (`dummy_signal`),
 * SIGINT (Ctrl-C handling), SIGTRAP (gdbstub). SIGKILL can never be caught.
 */
export const VMM_HANDLED_SIGNALS: ReadonlySet<SignalName> = new Set(["SIGUSR1", "SIGINT", "SIGTRAP"]);

export function isFatal(signal: SignalName, handled: ReadonlySet<SignalName> = VMM_HANDLED_SIGNALS): boolean {
  if (signal === "SIGKILL") return true;
  return SIGNALS[signal].fatalWithoutHandler && !handled.has(signal);
}

export const PAGE_SIZE = 4096;
