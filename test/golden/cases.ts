/**
 * The golden suite's cases. Each names a kernel path and what the kernel does there with SIGUSR1
 * and SIGKILL, derived from the kernel source (`cite`: the kernel or QEMU functions, and the docs/
 * page that explains them), never from what Faultline prints. The
 * suite (golden.int.test.ts) runs each case on the real services; the README's table is rendered
 * from these expectations (table.ts), and a test keeps the two in step.
 *
 * Every case: postcopy paused from the start for longer than the run; SIGUSR1 at 300 ms, then
 * pause_all_vcpus at 350 ms; the run ends at 1200 ms, inside the stall. A second run sends SIGKILL at 300 ms instead.
 */
import type { Result } from "@faultline/shared";

export type Usr1 =
  /** woken at once: KVM_EXIT_INTR well before the page could arrive */
  | "exits-at-once"
  /** not woken: still blocked at the end, the signal ignored */
  | "ignored-blocked"
  /** woken but busy-looping: still SPINNING at the end, the signal ignored */
  | "ignored-spinning"
  /** the vCPU was already out of KVM_RUN, in the VMM: the signal is taken there at once */
  | "taken-in-vmm";

export interface GoldenCase {
  id: string;
  /** the path, as the README table names it */
  path: string;
  /** where the vCPU task waits (blocking state or what stands for it) */
  waits: string;
  /** "<kernel/QEMU function(s)> (docs/<page>.md)": where the expectation comes from, and the page that explains it */
  cite: string;
  scenario: Record<string, unknown>;
  usr1: Usr1;
  /** how an "exits-at-once" vCPU got out: woken in gup, or out of a halt (async PF) */
  via?: "gup-eintr" | "halt-wakeup";
  pauseCompletes: boolean;
  /** extra checks on the SIGUSR1 run, each derived from the cited kernel functions */
  check?: (r: Result) => void;
  checkNote?: string;
}

const stall = { stalls: [{ atMs: 0, forMs: 5000 }], latency: { us: 200 } };
const base = (over: { kernel?: object; vm?: object; pager?: object; workload?: object }) => ({
  durationMs: 1200,
  kernel: { profile: "6.13", ...over.kernel },
  vm: { vcpus: 2, ...over.vm },
  pager: { ...stall, ...over.pager },
  workload: { pagesPerVcpu: 48, ...over.workload },
});

export const CASES: GoldenCase[] = [
  {
    id: "tdp-6.2", path: "`tdp` slow fault, 6.2", waits: "TASK_INTERRUPTIBLE (FOLL_INTERRUPTIBLE)",
    cite: "`__kvm_mmu_faultin_pfn` (FOLL_INTERRUPTIBLE), `gup_signal_pending`, `kvm_handle_signal_exit` (docs/signals.md)",
    scenario: base({ kernel: { profile: "6.2" } }), usr1: "exits-at-once", via: "gup-eintr", pauseCompletes: true,
  },
  {
    id: "tdp-6.13", path: "`tdp` slow fault, 6.13", waits: "TASK_INTERRUPTIBLE (FOLL_INTERRUPTIBLE)",
    cite: "`__kvm_mmu_faultin_pfn` → `kvm_follow_pfn`, `kvm_handle_error_pfn` (docs/profiles.md)",
    scenario: base({}), usr1: "exits-at-once", via: "gup-eintr", pauseCompletes: true,
  },
  {
    id: "tdp-pre-6.2", path: "`tdp` slow fault, before 6.2", waits: "TASK_KILLABLE",
    cite: "`__gfn_to_pfn_memslot` without FOLL_INTERRUPTIBLE, `handle_userfault` (docs/profiles.md)",
    scenario: base({ kernel: { profile: "pre-6.2" } }), usr1: "ignored-blocked", pauseCompletes: false,
  },
  {
    id: "nested-map", path: "`kvm_vcpu_map` (vmcs12 pages)", waits: "TASK_KILLABLE",
    cite: "`nested_get_vmcs12_pages` → `kvm_vcpu_map` (docs/faults.md)",
    scenario: base({ workload: { site: "nested-map" } }), usr1: "ignored-blocked", pauseCompletes: false,
  },
  {
    id: "pfn-cache", path: "`gfn_to_pfn_cache` refresh", waits: "TASK_KILLABLE",
    cite: "`hva_to_pfn_retry`, `kvm_gpc_refresh` (docs/faults.md)",
    scenario: base({ workload: { site: "pfn-cache" } }), usr1: "ignored-blocked", pauseCompletes: false,
  },
  {
    id: "emulated", path: "emulated access (`kvm_read_guest` → `__copy_from_user`)", waits: "TASK_INTERRUPTIBLE, then busy loop",
    cite: "`kvm_read_guest` → `__copy_from_user`, `fault_signal_pending` (docs/faults.md)",
    scenario: base({ workload: { site: "emulated" } }), usr1: "ignored-spinning", pauseCompletes: false,
    check: (r) => {
      for (const v of r.vcpus) if (v.spinCpuMs <= 0) throw new Error(`vCPU ${v.id}: spinCpuMs ${v.spinCpuMs}`);
    },
    checkNote: "spinCpuMs > 0",
  },
  {
    id: "apf-halt", path: "async PF, no PV: artificial halt", waits: "kvm_vcpu_block, TASK_INTERRUPTIBLE",
    cite: "`kvm_arch_async_page_not_present` → `KVM_REQ_APF_HALT`, `kvm_vcpu_block` (docs/faults.md)",
    scenario: base({ kernel: { profile: "pre-6.2", asyncPf: true }, vm: { guest: { pvAsyncPf: false } } }), usr1: "exits-at-once", via: "halt-wakeup", pauseCompletes: true,
    check: (r) => {
      if (!r.asyncPf || r.asyncPf.kvm_async_pf_not_present! < 1) throw new Error("no async PF set up");
    },
    checkNote: "kvm_async_pf_not_present >= 1, even on pre-6.2",
  },
  {
    id: "apf-pv", path: "async PF, PV: the kworker waits", waits: "the kworker, TASK_KILLABLE (the vCPU is not blocked)",
    cite: "`async_pf_execute` → `get_user_pages_remote` in a kworker (docs/faults.md)",
    // userModeShare 1: guest-user accesses; at CPL0 the guest would get the artificial halt (kvm_can_deliver_async_pf)
    scenario: base({ kernel: { profile: "6.13", asyncPf: true }, workload: { pagesPerVcpu: 32, userModeShare: 1 } }), usr1: "exits-at-once", via: "halt-wakeup", pauseCompletes: true,
    check: (r) => {
      for (const v of r.vcpus) if (v.blocktimeMs > 100) throw new Error(`vCPU ${v.id}: blocktime ${v.blocktimeMs}`);
      if (r.latency.faultSlow.count !== 0) throw new Error("a fault went synchronous");
    },
    checkNote: "blocktime near 0, no synchronous slow fault",
  },
  {
    id: "exit-on-missing", path: "`exit-on-missing` (proposed)", waits: "in the VMM, after KVM_EXIT_MEMORY_FAULT",
    cite: "`KVM_MEM_EXIT_ON_MISSING`: fast gup only, `KVM_EXIT_MEMORY_FAULT` (docs/profiles.md)",
    scenario: base({ kernel: { profile: "exit-on-missing" } }), usr1: "taken-in-vmm", pauseCompletes: true,
    check: (r) => {
      if (r.pager.faultEvents !== 0) throw new Error(`uffd events ${r.pager.faultEvents}`);
      if (!r.vcpus.every((v) => (v.exits.KVM_EXIT_MEMORY_FAULT ?? 0) >= 1)) throw new Error("no KVM_EXIT_MEMORY_FAULT");
    },
    checkNote: "KVM_EXIT_MEMORY_FAULT, no uffd event",
  },
  {
    id: "kvm-userfault", path: "`kvm-userfault` (proposed)", waits: "in the VMM, after KVM_EXIT_MEMORY_FAULT",
    cite: "`KVM_MEM_USERFAULT` bitmap, `KVM_MEMORY_EXIT_FLAG_USERFAULT` (docs/profiles.md)",
    scenario: base({ kernel: { profile: "kvm-userfault" } }), usr1: "taken-in-vmm", pauseCompletes: true,
    check: (r) => {
      if (r.pager.faultEvents !== 0) throw new Error(`uffd events ${r.pager.faultEvents}`);
    },
    checkNote: "no uffd event",
  },
  {
    id: "kvm-userfault-emulated", path: "`kvm-userfault`, KVM's own access (emulated)", waits: "TASK_INTERRUPTIBLE, then busy loop",
    cite: "`kvm_read_guest` → `handle_userfault`: KVM Userfault leaves KVM's own accesses to userfaultfd (docs/profiles.md)",
    scenario: base({ kernel: { profile: "kvm-userfault" }, workload: { site: "emulated" } }), usr1: "ignored-spinning", pauseCompletes: false,
  },
  {
    id: "minor", path: "`tdp`, uffd MINOR mode (6.13)", waits: "TASK_INTERRUPTIBLE",
    cite: "`UFFDIO_CONTINUE`, `userfaultfd_get_blocking_state` (docs/faults.md)",
    scenario: base({ pager: { mode: "minor" } }), usr1: "exits-at-once", via: "gup-eintr", pauseCompletes: true,
  },
  {
    id: "wp-pre-6.2", path: "`tdp` write, uffd WP mode, before 6.2", waits: "TASK_KILLABLE",
    cite: "`UFFDIO_WRITEPROTECT`, `handle_userfault` as `TASK_KILLABLE` (docs/faults.md)",
    scenario: base({ kernel: { profile: "pre-6.2" }, pager: { mode: "wp" }, workload: { writeRatio: 1 } }), usr1: "ignored-blocked", pauseCompletes: false,
  },
];
