/** Golden rows (see rows.ts) for the pager side. */
import type { RowCase } from "./rows.ts";

const fail = (what: string, got: unknown): never => {
  throw new Error(`${what}: ${JSON.stringify(got)}`);
};

/** every guest page of 4 vCPUs x 200, dropped (MADV_DONTNEED) again and again while the vCPUs fault */
const DROPS = Array.from({ length: 12 }, (_, k) => ({ atMs: 100 + k * 150, gfns: Array.from({ length: 800 }, (_, i) => i) }));
const LAST_DROP_MS = DROPS.at(-1)!.atMs;
/** `untilDone`: the run ends when the vCPUs are done (they must outlast the drops); else it lasts past the last drop */
const dropsWhileFaulting = (pager: Record<string, unknown>, untilDone: boolean) => ({
  ...(untilDone ? { durationMs: 60_000 } : { durationMs: LAST_DROP_MS + 300, endWhenDone: false }),
  kernel: { profile: "6.13" },
  vm: { vcpus: 4 },
  pager: { drops: DROPS, ...pager },
  workload: { pagesPerVcpu: 200 },
});

export const PAGER_ROWS: RowCase[] = [
  {
    id: "uaccess-spin-flood",
    situation: "emulated access (`__copy_from_user`) on a missing page, SIGUSR1 while the source stalls",
    expected: "the task busy-loops: each pass re-enters handle_userfault and queues another UFFD_EVENT_PAGEFAULT (thousands), and it burns CPU for the spin's length",
    cite:
      "arch/x86/mm/fault.c `do_user_addr_fault` (`fault_signal_pending` is false for a kernel-mode fault and a non-fatal signal: retry with FAULT_FLAG_TRIED); " +
      "fs/userfaultfd.c `handle_userfault` (queues a `uffd_msg` on every entry, schedule() returns at once with a signal pending); docs/faults.md",
    scenario: {
      durationMs: 1200,
      kernel: { profile: "6.13" },
      vm: { vcpus: 1 },
      pager: { latency: { us: 200 }, stalls: [{ atMs: 0, forMs: 5000 }] },
      workload: { pagesPerVcpu: 8, site: "emulated" },
      signals: [{ atMs: 300, vcpus: 0, signal: "SIGUSR1" }],
    },
    check: (r) => {
      const v = r.vcpus[0]!;
      if (v.blockedIn?.waitState !== "SPINNING") fail("not spinning at the end", v.blockedIn);
      // one message per pass: a loop, not one sleep
      if (r.pager.spinRefaults < 1000) fail("spin re-faults", r.pager.spinRefaults);
      if (r.pager.faultEvents < r.pager.spinRefaults) fail("fault events below the spin's", r.pager);
      // runnable the whole time (state R): CPU time of the order of the spin's length, never more
      const spunMs = r.durationMs - v.blockedIn!.sinceMs;
      if (!(v.spinCpuMs >= spunMs / 2 && v.spinCpuMs <= spunMs + 1)) fail(`spinCpuMs against a ${spunMs} ms spin`, v.spinCpuMs);
    },
  },
  {
    id: "remove-eagain",
    situation: "MADV_DONTNEED while fills are in flight and the handler is slow to read",
    expected:
      "UFFD_EVENT_REMOVE raises mmap_changing until the handler reads it: a UFFDIO_COPY meanwhile fails -EAGAIN, the handler retries it, every vCPU finishes; madvise waits for the read",
    cite:
      "fs/userfaultfd.c `userfaultfd_remove`, `userfaultfd_event_wait_completion`, `userfaultfd_ctx_read` (faults are read before events); " +
      "mm/userfaultfd.c `mfill_atomic` (`mmap_changing` → -EAGAIN); docs/faults.md",
    // the handler reads one message per 5 ms: 800+ faults take it 4 s, past the last drop
    scenario: dropsWhileFaulting({ latency: { us: 0 }, eventReadUs: 5000 }, true),
    check: (r) => {
      if (r.pager.removeEvents !== DROPS.length) fail("REMOVE events read", r.pager.removeEvents);
      if (r.pager.eagain < 1) fail("no -EAGAIN", r.pager);
      if (!r.vcpus.every((v) => v.state === "done" && v.pagesTouched === 200)) fail("a vCPU did not finish", r.vcpus.map((v) => [v.state, v.pagesTouched]));
    },
  },
  {
    id: "invalidate-retry",
    situation: "MADV_DONTNEED of guest pages while vCPUs sleep in gup for others",
    expected:
      "each drop is one mmu-notifier invalidation (start: SPTEs zapped, in_progress; the page goes; end: mmu_invalidate_seq++); a fault across it returns RET_PF_RETRY and re-faults",
    cite:
      "mm/mmu_notifier.c; virt/kvm/kvm_main.c `kvm_mmu_notifier_invalidate_range_start`/`_end`, `mmu_invalidate_retry_gfn`; " +
      "arch/x86/kvm/mmu/mmu.c `is_page_fault_stale`; docs/faults.md",
    scenario: dropsWhileFaulting({ latency: { us: 2000 } }, false),
    check: (r) => {
      if (r.mmu.invalidateSeq !== DROPS.length) fail("mmu_invalidate_seq", r.mmu.invalidateSeq);
      if (r.mmu.stale < 1) fail("no fault retried across an invalidation", r.mmu);
      if (r.mmu.zapped < 1) fail("no SPTE zapped", r.mmu);
      if (!r.vcpus.every((v) => v.state === "done")) fail("a vCPU did not finish", r.vcpus.map((v) => v.state));
    },
  },
];
