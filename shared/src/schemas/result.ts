/** The result document, v1 (README "How to read the output", docs/runs.md). Names are stable; fields may be added. */
import { Type, type Static } from "@sinclair/typebox";
import { LOG2_BUCKETS } from "../histogram.ts";
import { ExitNameSchema, ProcessSignalOutcomeSchema, ProcessSignalThread, SignalExitOutcomeSchema, SignalNameSchema, SignalSendOutcomeSchema, SignalSource, VcpuStateSchema, WaitStateSchema } from "./messages.ts";

const N = Type.Number();
const NullN = Type.Union([Type.Number(), Type.Null()]);

export const LatencySchema = Type.Object({
  count: Type.Integer(),
  p50Us: N,
  p90Us: N,
  p99Us: N,
  maxUs: N,
  /** below 1 µs counts in bucket 0, above the top in the last */
  log2Buckets: Type.Array(Type.Integer(), { minItems: LOG2_BUCKETS, maxItems: LOG2_BUCKETS, description: "[2^i, 2^(i+1)) µs" }),
  /** samples whose interval overlapped a testbed stall (a service that could not run, a NATS outage): they measure the testbed */
  testbedStalled: Type.Optional(Type.Integer()),
});

export const IncidentSchema = Type.Object({
  /** ms since the scenario started (negative: before it) */
  atMs: N,
  service: Type.String(),
  instance: Type.String(),
  kind: Type.String({ description: "nats-disconnect, nats-reconnect, loop-stall, retry, request-failed, lease-lapsed, start-late, service-lost, cancelled" }),
  detail: Type.String(),
  durationMs: Type.Optional(N),
});

/** What one service saw of the testbed itself during the run. */
export const ServiceTestbedSchema = Type.Object({
  service: Type.String(),
  instance: Type.String(),
  /** event-loop delay of the service process (perf_hooks.monitorEventLoopDelay), ms */
  loopDelay: Type.Object({ p50Ms: N, p99Ms: N, maxMs: N }),
  /** host load average (1 min) at the VM's setup and at the report */
  loadAvg1: Type.Object({ start: N, end: N }),
  /** requests re-sent (timeout, no responders, reconnect) */
  retries: Type.Integer(),
  incidents: Type.Array(Type.Object({ at: N, service: Type.String(), instance: Type.String(), kind: Type.String(), detail: Type.String(), durationMs: Type.Optional(N) })),
  incidentsDropped: Type.Integer(),
});

export const TestbedSchema = Type.Object({
  services: Type.Record(Type.String(), Type.Omit(ServiceTestbedSchema, ["incidents"])),
  incidents: Type.Array(IncidentSchema),
  /** one line when the testbed's own delay is not small next to the latencies the run reports; null otherwise */
  warning: Type.Union([Type.String(), Type.Null()]),
});

/** one member of SignalExitOutcomeSchema (the name is checked against it) */
const exitOutcome = (x: Static<typeof SignalExitOutcomeSchema>) => SignalExitOutcomeSchema.anyOf.find((l) => l.const === x)!;

export const SignalOutcomeSchema = Type.Object({
  signal: SignalNameSchema,
  source: SignalSource,
  sentAtMs: N,
  /** a dequeue outcome (SignalExitOutcomeSchema), or ignored / pending for a signal never dequeued (v1 order kept) */
  outcome: Type.Union([
    exitOutcome("KVM_EXIT_INTR"), exitOutcome("killed"), Type.Literal("ignored"), Type.Literal("pending"), exitOutcome("delivered-in-vmm"),
    ...SignalSendOutcomeSchema.anyOf,
  ]),
  /** how the vCPU got out: gup-eintr (woken in handle_userfault), pre-entry-check, halt-wakeup, vm-killed, core-dump; for delivered-in-vmm where the thread was (parked, vmm-exit, memory-fault-wait) */
  via: Type.Union([Type.String(), Type.Null()]),
  /** sent → vCPU out of KVM_RUN, null if never */
  latencyUs: NullN,
  /** the latency overlapped a testbed stall (a service that could not run, a NATS outage): it measures the testbed */
  testbedStalled: Type.Optional(Type.Boolean()),
});

export const VcpuResultSchema = Type.Object({
  id: Type.Integer(),
  state: VcpuStateSchema,
  blockedIn: Type.Union([
    Type.Null(),
    Type.Object({ site: Type.String(), gfn: Type.Integer(), waitState: WaitStateSchema, sinceMs: N }),
  ]),
  exits: Type.Record(Type.String(), Type.Integer(), { description: "KVM_EXIT_* name → count of KVM_RUN returns" }),
  stat: Type.Object({
    exits: N, pf_taken: N, pf_fast: N, pf_fixed: N, pf_spurious: N, pf_emulate: N, pf_mmio_spte_created: N,
    signal_exits: N, halt_exits: N, halt_wakeup: N, insn_emulation: N,
  }),
  signals: Type.Array(SignalOutcomeSchema),
  /** KVM_RUN calls that returned -EINTR at once because run->immediate_exit was set (no KVM_EXIT_INTR, no signal_exits++) */
  immediateExits: Type.Optional(Type.Integer()),
  blocktimeMs: N,
  /** SIGBUS BUS_MCEERR_AR from KVM_PFN_ERR_HWPOISON (UFFDIO_POISON): the VMM injected an MCE, the guest dropped the page */
  hwpoisonSigbus: Type.Integer(),
  pagesTouched: Type.Integer(),
  pages: Type.Integer(),
  /** distinct pages the vCPU's accesses touch (a zipf, hotset or trace workload repeats pages) */
  distinctPages: Type.Optional(Type.Integer()),
  /** guest compute time slept between accesses (workload.computeUs), ms */
  computeMs: Type.Optional(N),
  doneAtMs: NullN,
  spinCpuMs: N,
  error: Type.Union([Type.String(), Type.Null()]),
});

/** The pager's counters, as reported by the pager and kept in the result. */
export const PagerCountersSchema = Type.Object({
  faultEvents: N, copies: N, zeropages: N, continues: N, eexist: N, wakes: N, duplicateRequests: N, resident: N, vmmRequests: N,
  /** UFFD_EVENT_REMOVE: resident pages dropped (MADV_DONTNEED) */
  removes: N,
  writeprotects: N, poisons: N, wakeCalls: N,
  /** UFFD_EVENT_PAGEFAULTs re-queued by tasks busy-looping in a kernel-mode fault with a non-fatal signal pending (kernel.uaccessSpin), as the handler read them; also in faultEvents and eventsByPtid */
  spinRefaults: N,
  /** UFFD_EVENT_REMOVE messages the handler read (one per drop, MADV_DONTNEED) */
  removeEvents: N,
  /** UFFDIO_COPY / ZEROPAGE / CONTINUE that failed -EAGAIN (ctx->mmap_changing: a UFFD_EVENT_REMOVE not yet read); the handler retried each after reading it */
  eagain: N,
  /** UFFD_EVENT_PAGEFAULTs by feat.ptid (UFFD_FEATURE_THREAD_ID), "0" without it */
  eventsByPtid: Type.Record(Type.String(), Type.Integer()),
  /** page-source fetches lost and re-sent after pager.loss.retryMs */
  lostFetches: N,
  /** modelled time the uffd wait-queue locks were held (pager.uffd.waitQueue); 0 when not modelled */
  waitQueueLockMs: N,
});

/** The mmu's own counters (`Mmu.counters`), reported as they are by the mmu. */
export const MmuCountersSchema = Type.Object({
  faults: N, attempt1Hits: N, attempt2: N, sigpending: N, stale: N, noslot: N, uaccess: N, vcpuMap: N, gpcRefresh: N, memoryFaults: N,
  memslotInvalid: N, roFaults: N, zapped: N, hwpoison: N,
});

/**
 * One KVM_SET_USER_MEMORY_REGION (a planned `vm.memslotOps` entry or one sent through the API). A change
 * returns only after `synchronize_srcu_expedited(&kvm->srcu)` in `kvm_swap_active_memslots`, i.e. once every
 * vCPU that was inside a fault when the wait began has left it.
 */
export const MemslotOpResultSchema = Type.Object({
  op: Type.Union([Type.Literal("delete"), Type.Literal("add"), Type.Literal("move"), Type.Literal("flags")]),
  slot: Type.Integer(),
  /** planned time (`vm.memslotOps[].atMs`); null for an op sent through the API */
  atMs: NullN,
  /** when the VMM issued the ioctl, ms since the run started */
  requestedAtMs: N,
  /** when the ioctl returned (also for a refused op); null: still waiting when the run ended */
  completedAtMs: NullN,
  /** the errno KVM refused the op with (`__kvm_set_memory_region`), null when it was accepted */
  errno: Type.Union([Type.String(), Type.Null()]),
});

/**
 * How async page faults reached the guest (there is no KVM stat for this; these count what
 * `kvm_arch_async_page_not_present` / `kvm_arch_async_page_present` did).
 */
export const ApfDeliverySchema = Type.Object({
  /** #PF with KVM_PV_REASON_PAGE_NOT_PRESENT injected: the guest (at CPL3, PV on) schedules another task */
  notPresentInjected: Type.Integer(),
  /** KVM_REQ_APF_HALT: the fault was not deliverable (PV off, or the guest at CPL0), or a repeated fault */
  haltRequests: Type.Integer(),
  /** "page ready" (apf.vec) injected for an item whose "page not present" had been injected */
  pageReadyInjected: Type.Integer(),
});

/**
 * The demand-paging rate as `demand_paging_test` computes it: guest execution time from the vCPUs'
 * start until the last vCPU finished its pages, less the time the VM was paused; per-vCPU rate =
 * pages per vCPU / that time; overall = per-vCPU rate × nr_vcpus.
 */
export const DemandPagingSchema = Type.Object({
  /** seconds, rounded to ms (v1); `totalGuestExecutionNs` has the full value */
  totalGuestExecutionS: N,
  perVcpuRate: N,
  overallRate: N,
  allDone: Type.Boolean(),
  /** the guest execution time, ns (printed as `%ld.%.9lds`) */
  totalGuestExecutionNs: Type.Optional(Type.Integer({ minimum: 0 })),
  /** pages per vCPU the rates are computed from (vCPU 0's region once all finished, as `vcpu_args[0].pages`) */
  pagesPerVcpu: Type.Optional(N),
  /** each vCPU's own execution time (start → its last page, less its own paused time), ns; null while it runs */
  vcpuExecutionNs: Type.Optional(Type.Array(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]))),
  /** paused time subtracted from the total, s */
  pausedS: Type.Optional(N),
});

export const PauseSchema = Type.Object({
  requestedAtMs: N, completedAtMs: NullN, latencyUs: NullN,
  /** SIG_IPI sent (pthread_kill calls of cpus_kick_thread) */
  kicks: Type.Integer(),
  /** kicks cpus_kick_thread skipped because cpu->thread_kicked was still set */
  kicksSkipped: Type.Optional(Type.Integer()),
  resumedAtMs: NullN,
  /** a resume asked for while the pause was incomplete waits for it (QEMU's main loop is inside pause_all_vcpus) */
  resumeRequestedAtMs: Type.Optional(N),
});

/** A graceful shutdown requested by SIGTERM/SIGINT/SIGHUP to the VMM (termsig_handler → qemu_system_killed); completed once every vCPU parked. */
export const ShutdownSchema = Type.Object({ signal: SignalNameSchema, requestedAtMs: N, completedAtMs: NullN });

/** A process-directed signal (kill(pid) to the VMM): the thread that took it and what it did. */
export const ProcessSignalSchema = Type.Object({
  signal: SignalNameSchema,
  source: SignalSource,
  sentAtMs: N,
  thread: ProcessSignalThread,
  outcome: ProcessSignalOutcomeSchema,
});

export const ResultSchema = Type.Object(
  {
    scenario: Type.String(),
    runId: Type.String(),
    durationMs: N,
    profile: Type.String(),
    vcpus: Type.Array(VcpuResultSchema),
    pause: Type.Union([Type.Null(), PauseSchema]),
    pauses: Type.Array(PauseSchema),
    /** the shutdown a termination signal to the VMM requested; null when none */
    shutdown: Type.Optional(Type.Union([Type.Null(), ShutdownSchema])),
    /** signals sent to the VMM process (kill(pid)) */
    processSignals: Type.Optional(Type.Array(ProcessSignalSchema)),
    pager: PagerCountersSchema,
    latency: Type.Object({ faultSlow: LatencySchema, faultFast: LatencySchema, faultAsync: LatencySchema, signalToExit: LatencySchema }),
    /** async-PF tracepoint counts (kvm_try_async_get_page, ..._repeated_fault, ..._not_present, ..._completed, ..._ready); null when off */
    asyncPf: Type.Union([Type.Null(), Type.Record(Type.String(), Type.Integer())]),
    /** what the guest was told of its async page faults; null when async PF is off */
    asyncPfDelivery: Type.Union([Type.Null(), ApfDeliverySchema]),
    /** every memslot op of the run, in the order the VMM issued them */
    memslotOps: Type.Array(MemslotOpResultSchema),
    /** mmu side: memslot and invalidation activity */
    mmu: Type.Object({
      ...Type.Pick(MmuCountersSchema, ["memslotInvalid", "roFaults", "zapped"]).properties,
      invalidateSeq: N,
      ...Type.Pick(MmuCountersSchema, ["hwpoison", "memoryFaults", "uaccess", "vcpuMap", "gpcRefresh"]).properties,
      /** faults that found an invalidation in progress over their gfn or run since their snapshot (is_page_fault_stale): RET_PF_RETRY */
      ...Type.Pick(MmuCountersSchema, ["stale"]).properties,
    }),
    demandPaging: DemandPagingSchema,
    /** true when some service's report is missing (a service was lost, the run was cancelled): the rest is what was gathered */
    partial: Type.Boolean(),
    /** the services whose report is missing */
    missing: Type.Array(Type.String()),
    testbed: TestbedSchema,
  },
  { $id: "Result" },
);

export type Result = Static<typeof ResultSchema>;
export type Testbed = Static<typeof TestbedSchema>;
export type ServiceTestbed = Static<typeof ServiceTestbedSchema>;
export type VcpuResult = Static<typeof VcpuResultSchema>;
export type SignalOutcome = Static<typeof SignalOutcomeSchema>;
/** the pager's counters as the result keeps them (`result.pager`) */
export type PagerResult = Static<typeof PagerCountersSchema>;
export type MmuCounters = Static<typeof MmuCountersSchema>;
export type Pause = Static<typeof PauseSchema>;
export type MemslotOpResult = Static<typeof MemslotOpResultSchema>;
export type ApfDelivery = Static<typeof ApfDeliverySchema>;
export type DemandPaging = Static<typeof DemandPagingSchema>;
export type Shutdown = Static<typeof ShutdownSchema>;
export type ProcessSignal = Static<typeof ProcessSignalSchema>;
export type Latency = Static<typeof LatencySchema>;
export { ExitNameSchema };
