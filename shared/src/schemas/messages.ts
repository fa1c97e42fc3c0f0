/**
 * Every NATS message body, as TypeBox schemas. Each carries the VM id and a trace id; messages
 * about one vCPU carry its id. Receivers validate with `assertValid` before acting.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { KVM_EXIT, RET_PF, SIGNAL_NAMES, WAIT_STATES, SITES } from "../kernel.ts";
import { MemslotOpSchema, ScenarioSchema, VcpuSelectorSchema } from "./scenario.ts";

const lit = <T extends string>(xs: readonly T[]) => Type.Union(xs.map((x) => Type.Literal(x)));
const Strict = <P extends Record<string, TSchema>>(p: P) => Type.Object(p, { additionalProperties: false });

export const Envelope = {
  vm: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }),
  trace: Type.String({ minLength: 1, maxLength: 64 }),
};
const VcpuId = Type.Integer({ minimum: 0, maximum: 255 });
const Gfn = Type.Integer({ minimum: 0 });
export const SignalNameSchema = lit(SIGNAL_NAMES);
export const WaitStateSchema = lit(WAIT_STATES);
export const ExitNameSchema = lit(Object.keys(KVM_EXIT) as Array<keyof typeof KVM_EXIT>);
/**
 * A vCPU's state. The vcpu service announces running, paused, halted (the async-PF artificial halt in
 * `kvm_vcpu_block`), done and killed; blocked (asleep in `handle_userfault`) and spinning (a
 * kernel-mode access busy-looping with a signal pending) come from joining its fault in flight with
 * the pager's sleepers.
 */
export const VcpuStateSchema = lit(["running", "blocked", "spinning", "paused", "halted", "done", "killed"] as const);

export const Empty = Strict({ ...Envelope });
export const Ok = Strict({ ok: Type.Literal(true) });

export const ClaimMsg = Strict({ ...Envelope });
export const ClaimReply = Strict({ instance: Type.String({ pattern: "^[A-Za-z0-9_-]{1,128}$" }) });
export const SetupMsg = Strict({
  ...Envelope,
  scenario: ScenarioSchema,
  leaseMs: Type.Integer({ minimum: 100, maximum: 600_000, description: "the VM is torn down when its lease is not renewed for this long" }),
});
export const SetupReply = Strict({ ok: Type.Literal(true), instance: Type.String() });
export const StartMsg = Strict({
  ...Envelope,
  t0: Type.Number({ description: "epoch ms of scenario time 0" }),
  /** the instance of each service that holds the VM (a stall of another stack's service is not this run's) */
  owners: Type.Record(Type.String(), Type.String()),
});
export const LeaseMsg = Strict({ ...Envelope, leaseMs: Type.Integer({ minimum: 100 }) });
export const ResyncMsg = Strict({ ...Envelope, instance: Type.String() });
export const HeartbeatMsg = Strict({
  service: Type.String(),
  instance: Type.String(),
  vms: Type.Array(Type.String(), { maxItems: 100_000 }),
  atMs: Type.Number(),
});

/** vcpu → mmu: `kvm_mmu_page_fault(vcpu, gpa, error_code)`. */
export const FaultReq = Strict({
  ...Envelope, vcpu: VcpuId, gfn: Gfn, write: Type.Boolean(), site: lit(SITES),
  /** the guest was at CPL3 (user mode) when it made the access; false: CPL0 (`kvm_can_deliver_async_pf` refuses there) */
  user: Type.Boolean(),
});
export const FaultPath = lit(["fast_page_fault", "hva_to_pfn_fast", "gup", "noslot", "stale", "uaccess", "kvm_vcpu_map", "gpc_refresh", "memory_fault", "async_pf", "memslot_invalid", "ro_fault"] as const);
export const FaultReply = Strict({
  /** RET_PF_* name for r >= 0, or ERRNO for r < 0 (then `errno` says which). */
  ret: Type.Union([lit(Object.keys(RET_PF) as Array<keyof typeof RET_PF>), Type.Literal("ERRNO")]),
  errno: Type.Optional(lit(["EINTR", "EFAULT", "EINVAL"] as const)),
  /** set when the handler already decided the KVM_RUN exit (`kvm_handle_signal_exit`, MMIO). */
  exit: Type.Optional(ExitNameSchema),
  /**
   * where it was resolved: `fast_page_fault` (pf_fast; never for a not-present fault with A/D bits on), attempt 1
   * (`hva_to_pfn_fast`, no pager), attempt 2 (`gup`, the pager)
   */
  path: FaultPath,
  /** how many times the task entered `handle_userfault` for this fault. */
  sleeps: Type.Integer({ minimum: 0 }),
  /** a fatal signal is pending on the task (gup bailed for it). */
  fatal: Type.Boolean(),
  /** CPU time the task burnt busy-looping in a kernel-mode fault with a non-fatal signal pending (SPINNING): spin wall time x kernel.uaccessSpin.cpuShare, ms */
  spinMs: Type.Number({ minimum: 0 }),
  /** the MMIO fault installed an MMIO SPTE (`pf_mmio_spte_created`) */
  mmioSpte: Type.Optional(Type.Boolean()),
  /** an async page fault was set up (`not-present` injected) or the vCPU must halt (`halt`: KVM_REQ_APF_HALT) */
  apf: Type.Optional(Strict({ kind: lit(["not-present", "halt"] as const), token: Type.Integer() })),
  /** KVM_PFN_ERR_HWPOISON: `kvm_send_hwpoison_signal` sent SIGBUS (BUS_MCEERR_AR) to the vCPU thread */
  hwpoison: Type.Optional(Type.Boolean()),
  /** `run->memory_fault` of a KVM_EXIT_MEMORY_FAULT (KVM_RUN returns -1/EFAULT) */
  memoryFault: Type.Optional(Strict({ gpa: Type.Integer({ minimum: 0 }), size: Type.Integer(), flags: Type.Integer() })),
});

/** vcpu (the VMM) → pager: fetch and install one page after a KVM_EXIT_MEMORY_FAULT. */
export const ResolveReq = Strict({ ...Envelope, vcpu: VcpuId, gfn: Gfn });
export const ResolveReply = Strict({ result: lit(["copied", "present"] as const) });

/** mmu → pager: attempt 2, `get_user_pages_unlocked(hva, 1, FOLL_HWPOISON | [FOLL_WRITE] | [FOLL_INTERRUPTIBLE])`. */
export const GupReq = Strict({
  ...Envelope,
  vcpu: VcpuId,
  gfn: Gfn,
  write: Type.Boolean(),
  interruptible: Type.Boolean(),
  /** a kernel-mode uaccess fault (`__copy_from_user`), not gup: retries on non-fatal signals (busy loop) */
  uaccess: Type.Optional(Type.Boolean()),
  /** the async-PF kworker (`async_pf_execute`) faults the page in for `vcpu`: not the vCPU task, no signals */
  kworker: Type.Optional(Type.Boolean()),
});

/** mmu → vcpu: `kvm_async_pf_completed`: the kworker has the page; KVM_REQ_APF_READY, kick. */
export const ApfCompletedMsg = Strict({ ...Envelope, vcpu: VcpuId, gfn: Gfn, token: Type.Integer() });
/** vcpu → mmu: `kvm_check_async_pf_completion`: replay the fault with prefetch=true, page present. */
export const ApfReadyReq = Strict({ ...Envelope, vcpu: VcpuId, gfn: Gfn, token: Type.Integer() });
export const GupReply = Strict({
  /** ok, EINTR (gup bailed on a signal), EFAULT (a uaccess aborted on a fatal signal: the exception fixup) */
  result: lit(["ok", "EINTR", "EFAULT", "EHWPOISON"] as const),
  fatal: Type.Boolean(),
  sleeps: Type.Integer({ minimum: 0 }),
  /** CPU time burnt busy-looping (SPINNING): spin wall time x kernel.uaccessSpin.cpuShare, ms */
  spinMs: Type.Number({ minimum: 0 }),
});

export const ResidentMsg = Strict({ ...Envelope, gfns: Type.Array(Gfn, { maxItems: 65536 }) });
/**
 * pager → mmu: the mmu notifier around MADV_DONTNEED's zap (after UFFD_EVENT_REMOVE was read):
 * `start` (`kvm_mmu_notifier_invalidate_range_start`: zap the SPTEs of `gfns`, mmu_invalidate_in_progress++),
 * the host pages go, then `end` (`..._range_end`: `gfns` are the pages that went; mmu_invalidate_seq++,
 * in_progress--). `id` pairs the two; a repeated start or end of one id is a no-op.
 */
export const InvalidateMsg = Strict({
  ...Envelope,
  id: Type.String({ minLength: 1, maxLength: 128 }),
  phase: lit(["start", "end"] as const),
  gfns: Type.Array(Gfn, { maxItems: 65536 }),
});
/** mmu → vcpu: SPTEs zapped (the vCPU's guest will fault on them again). */
export const ZapMsg = Strict({ ...Envelope, gfns: Type.Array(Gfn, { maxItems: 1048576 }) });
/** api → mmu: KVM_SET_USER_MEMORY_REGION. */
export const MemslotReq = Strict({ ...Envelope, op: MemslotOpSchema });
/** api → pager: drop resident pages. */
export const DropReq = Strict({ ...Envelope, gfns: Type.Array(Gfn, { minItems: 1, maxItems: 65536 }) });
export const StallReq = Strict({ ...Envelope, action: lit(["stall", "unstall"] as const) });
export const StallReply = Strict({ stalled: Type.Boolean(), atMs: Type.Number() });

export const SignalSource = lit(["plan", "api", "pause-kick"] as const);
/** tgkill to vCPU threads (`vcpus`) or kill(pid) to the VMM (`process`); exactly one of the two. */
export const SendReq = Strict({
  ...Envelope,
  vcpus: Type.Optional(VcpuSelectorSchema),
  process: Type.Optional(Type.Literal(true)),
  signal: SignalNameSchema,
  source: SignalSource,
});
/**
 * What a process-directed signal did: the thread `complete_signal` picked (`main`, a vCPU id, or null
 * when every thread blocks it) and its effect there: `shutdown-requested` (QEMU's termsig_handler),
 * `killed` (promoted to a group SIGKILL), `core-dump` (zap_threads kills every thread), `to-vcpu` (the
 * vCPU thread's record carries the outcome), `coalesced` (already pending: legacy_queue), `blocked`.
 */
export const ProcessSignalOutcomeSchema = lit(["shutdown-requested", "killed", "core-dump", "to-vcpu", "coalesced", "blocked"] as const);
export const ProcessSignalThread = Type.Union([Type.Literal("main"), VcpuId, Type.Null()]);
export const SendReply = Strict({
  sent: Type.Array(Strict({ vcpu: VcpuId, signal: SignalNameSchema, sentAtMs: Type.Number() })),
  process: Type.Optional(Strict({ signal: SignalNameSchema, sentAtMs: Type.Number(), thread: ProcessSignalThread, outcome: ProcessSignalOutcomeSchema })),
});

/**
 * signals → pager, vcpu: the task's pending set changed. `signal_wake_up` when a signal was sent
 * (then `signal` names it), `dequeued` when the VMM ate its signals. `fatal`: a fatal signal is pending.
 */
export const WakeMsg = Strict({
  ...Envelope,
  vcpu: VcpuId,
  /** resync: the same state again, after a reconnect (a message may have been lost) */
  kind: lit(["signal_wake_up", "dequeued", "resync"] as const),
  signal: Type.Optional(SignalNameSchema),
  fatal: Type.Boolean(),
  pending: Type.Array(SignalNameSchema),
});

/**
 * What became of a vCPU task's pending signals when it dequeued them: KVM_EXIT_INTR (the signal got
 * the vCPU out of KVM_RUN), killed, or delivered-in-vmm (it was outside KVM_RUN, in the VMM, with
 * the signal unblocked).
 */
export const SignalExitOutcomeSchema = lit(["KVM_EXIT_INTR", "killed", "delivered-in-vmm"] as const);
/**
 * Outcomes decided when the signal is sent: `coalesced` (a standard signal already pending on the
 * thread is not queued twice: legacy_queue), `blocked` (the thread blocks it: it stays pending, wakes nothing).
 */
export const SignalSendOutcomeSchema = lit(["coalesced", "blocked"] as const);
/**
 * How the vCPU got out: woken in handle_userfault (gup-eintr), vcpu_enter_guest's check, a halt
 * wakeup, ...; for delivered-in-vmm, where the thread was: parked (qemu_wait_io_event), vmm-exit (in
 * the VMM between two KVM_RUNs), memory-fault-wait; core-dump: killed by a coredump-class signal it dequeued.
 */
export const ExitViaSchema = lit(["gup-eintr", "pre-entry-check", "halt-wakeup", "vm-killed", "fault-error", "memory-fault-wait", "parked", "vmm-exit", "core-dump", "hwpoison"] as const);

/** vcpu → signals: the vCPU left KVM_RUN (or died); its pending signals are consumed and get an outcome. */
export const DequeueReq = Strict({
  ...Envelope,
  vcpu: VcpuId,
  atMs: Type.Number(),
  outcome: SignalExitOutcomeSchema,
  via: ExitViaSchema,
});
export const DequeueReply = Strict({ eaten: Type.Array(SignalNameSchema) });

export const PauseReply = Strict({ requestedAtMs: Type.Number() });
export const StopReply = Strict({ parked: Type.Array(VcpuId) });

/** The fault a vCPU has in flight (its site), or its async-PF halt (`waitState` set: it sleeps in `kvm_vcpu_block`). */
export const InFaultSchema = Strict({
  site: lit(SITES),
  gfn: Gfn,
  sinceMs: Type.Number(),
  waitState: Type.Optional(Type.Literal("TASK_INTERRUPTIBLE")),
});

export const VcpuStateMsg = Strict({
  ...Envelope,
  vcpu: VcpuId,
  state: VcpuStateSchema,
  atMs: Type.Number(),
  pagesTouched: Type.Integer({ minimum: 0 }),
  /** a fault (or async-PF halt) that has lasted long enough to be seen; null: none; absent: not said */
  inFault: Type.Optional(Type.Union([Type.Null(), InFaultSchema])),
});

/**
 * pager → anyone: vCPU `vcpu` went to sleep in `handle_userfault` on `gfn` in `waitState` (only a
 * sleep that lasted long enough to be seen is announced, so a fast fault sends nothing), or
 * `waitState` null: it was woken. `atMs`: when it went to sleep, or when it was woken (scenario ms).
 */
export const VcpuWaitMsg = Strict({
  ...Envelope,
  vcpu: VcpuId,
  gfn: Gfn,
  waitState: Type.Union([WaitStateSchema, Type.Null()]),
  atMs: Type.Number(),
});

export const PingReply = Strict({
  name: Type.String(),
  instance: Type.String(),
  version: Type.String(),
  uptimeMs: Type.Number(),
  vms: Type.Integer({ minimum: 0 }),
});

/** A message less its envelope (`vm`, `trace`): what the in-process logic passes and returns. */
export type MessageBody<M> = Omit<M, keyof typeof Envelope>;

export type SetupMsg = Static<typeof SetupMsg>;
export type StartMsg = Static<typeof StartMsg>;
export type HeartbeatMsg = Static<typeof HeartbeatMsg>;
export type FaultReq = Static<typeof FaultReq>;
export type ResolveReq = Static<typeof ResolveReq>;
export type ApfCompletedMsg = Static<typeof ApfCompletedMsg>;
export type FaultReply = Static<typeof FaultReply>;
export type FaultPathName = Static<typeof FaultPath>;
export type GupReq = Static<typeof GupReq>;
export type GupReply = Static<typeof GupReply>;
export type InvalidateMsg = Static<typeof InvalidateMsg>;
export type ResolveReply = Static<typeof ResolveReply>;
export type StallReply = Static<typeof StallReply>;
export type SendReply = Static<typeof SendReply>;
export type WakeMsg = Static<typeof WakeMsg>;
export type DequeueReq = Static<typeof DequeueReq>;
export type SignalExitOutcome = Static<typeof SignalExitOutcomeSchema>;
export type ExitVia = Static<typeof ExitViaSchema>;
export type SendReq = Static<typeof SendReq>;
export type VcpuStateMsg = Static<typeof VcpuStateMsg>;
export type VcpuWaitMsg = Static<typeof VcpuWaitMsg>;
export type InFault = Static<typeof InFaultSchema>;
export type VcpuStateName = Static<typeof VcpuStateSchema>;
export type SignalSourceName = Static<typeof SignalSource>;
export type ProcessSignalOutcome = Static<typeof ProcessSignalOutcomeSchema>;
export type SignalSendOutcome = Static<typeof SignalSendOutcomeSchema>;
export type PingReply = Static<typeof PingReply>;
