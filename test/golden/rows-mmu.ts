/**
 * Golden rows (see rows.ts) for the mmu side. Each check follows from the kernel functions the row
 * cites, not from what Faultline printed before.
 */
import type { Result } from "@faultline/shared";
import type { RowCase } from "./rows.ts";

const fail = (msg: string): never => {
  throw new Error(msg);
};

/** 6.13, two vCPUs of 8 tdp pages, postcopy paused from 0 for `stallMs` (0: no stall). */
const base = (stallMs: number, over: { kernel?: object; vm?: object; pager?: object; workload?: object } = {}) => ({
  durationMs: 4000,
  kernel: { profile: "6.13", ...over.kernel },
  vm: { vcpus: 2, ...over.vm },
  pager: { latency: { us: 200 }, stalls: stallMs > 0 ? [{ atMs: 0, forMs: stallMs }] : [], ...over.pager },
  workload: { pagesPerVcpu: 8, site: "tdp", ...over.workload },
});

const pages = (r: Result) => r.vcpus.reduce((n, v) => n + v.pages, 0);

export const MMU_ROWS: RowCase[] = [
  {
    id: "apf-cpl0-halt",
    situation: "async PF, PV on, the guest at CPL0 (a Linux guest ≥5.8 does not set KVM_ASYNC_PF_SEND_ALWAYS)",
    expected: "the async PF is set up and its kworker runs, but no 'page not present' is injected: KVM_REQ_APF_HALT, the vCPU halts",
    cite: "x86.c `kvm_can_deliver_async_pf`, `kvm_arch_async_page_not_present`, `kvm_arch_async_page_present`; docs/faults.md",
    scenario: base(600, { kernel: { asyncPf: true }, vm: { guest: { pvAsyncPf: true } }, workload: { userModeShare: 0 } }),
    check: (r) => {
      const t = r.asyncPf ?? fail("async PF off");
      const d = r.asyncPfDelivery ?? fail("no async-PF delivery counts");
      // kvm_arch_async_page_not_present: the tracepoint fires for each set-up, then not deliverable → halt
      if (t.kvm_async_pf_not_present !== pages(r)) fail(`kvm_async_pf_not_present ${t.kvm_async_pf_not_present}, expected one per page (${pages(r)})`);
      if (d.notPresentInjected !== 0) fail(`'page not present' injected ${d.notPresentInjected} times at CPL0`);
      if (d.haltRequests !== t.kvm_async_pf_not_present) fail(`KVM_REQ_APF_HALT ${d.haltRequests}, not one per set-up`);
      // kvm_arch_async_page_present: "page ready" only for items whose "page not present" was injected
      if (d.pageReadyInjected !== 0) fail(`'page ready' injected ${d.pageReadyInjected} times`);
      // the kworker, not the vCPU, waited in the uffd; the vCPU sat in kvm_vcpu_block
      if (r.latency.faultSlow.count !== 0) fail(`${r.latency.faultSlow.count} synchronous slow faults`);
      for (const v of r.vcpus) if (v.state !== "done" || v.blocktimeMs <= 0) fail(`vCPU ${v.id}: ${v.state}, blocktime ${v.blocktimeMs}`);
    },
  },
  {
    id: "emulated-sigbus-mmio",
    situation: "the emulator's own guest-memory access fails (UFFD_FEATURE_SIGBUS)",
    expected: "the access is treated as MMIO: KVM_RUN exits KVM_EXIT_MMIO, it does not fail with -EFAULT; the run goes on",
    cite: "x86.c `emulator_read_write_onepage`; docs/faults.md",
    scenario: base(0, { pager: { features: ["sigbus"] }, workload: { site: "emulated" } }),
    check: (r) => {
      for (const v of r.vcpus) {
        if (v.error !== null) fail(`vCPU ${v.id}: ${v.error}`);
        if (v.state !== "done") fail(`vCPU ${v.id}: ${v.state}`);
        if (v.exits.KVM_EXIT_MMIO !== v.pages) fail(`vCPU ${v.id}: KVM_EXIT_MMIO ${v.exits.KVM_EXIT_MMIO ?? 0}, expected one per page (${v.pages})`);
      }
    },
  },
  {
    id: "memslot-delete-waits",
    situation: "KVM_SET_USER_MEMORY_REGION deletes a slot while vCPUs sleep in tdp faults (postcopy paused)",
    expected: "the ioctl returns only after every vCPU inside a fault when it began has left it: after the stall",
    cite: "kvm_main.c `kvm_set_memslot`, `kvm_invalidate_memslot`, `kvm_swap_active_memslots` (`synchronize_srcu_expedited`); docs/faults.md",
    scenario: base(1200, {
      vm: { memslots: [{ slot: 0, gpa: 0, size: "64MiB" }, { slot: 1, gpa: 1 << 30, size: "1MiB" }], memslotOps: [{ atMs: 200, op: "delete", slot: 1 }] },
    }),
    check: (r) => {
      const op = r.memslotOps[0] ?? fail("no memslot op recorded");
      if (op.errno !== null) fail(`refused -${op.errno}`);
      const done = op.completedAtMs ?? fail("the delete never completed");
      // the vCPUs asleep in handle_userfault hold kvm->srcu until their pages arrive at 1200 ms
      if (done < 1200) fail(`completed at ${done} ms, inside the stall`);
    },
  },
  {
    id: "pf-not-present-not-fast",
    situation: "tdp demand paging: every fault is a not-present EPT violation, A/D bits on",
    expected: "fast_page_fault is not tried (page_fault_can_be_fast): pf_fast stays 0, each page is pf_fixed",
    cite: "mmu.c `page_fault_can_be_fast`, `fast_page_fault`, `kvm_mmu_do_page_fault`; docs/faults.md",
    scenario: base(0),
    check: (r) => {
      for (const v of r.vcpus) {
        if (v.stat.pf_fast !== 0) fail(`vCPU ${v.id}: pf_fast ${v.stat.pf_fast}`);
        if (v.stat.pf_fixed !== v.pages) fail(`vCPU ${v.id}: pf_fixed ${v.stat.pf_fixed}, expected ${v.pages}`);
      }
    },
  },
];
