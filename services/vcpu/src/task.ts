/**
 * A vCPU task's state, shared by its kernel half (kvm-run.ts: `KVM_RUN` → `vcpu_run` →
 * `vcpu_enter_guest`) and its VMM half (vmm.ts: QEMU's `kvm_cpu_exec`): `kvm_vcpu_stat`, the
 * KVM_RUN exit counts, latency samples, the task's pending-signal view, QEMU's `cpu->stop`, the
 * guest's cursor in its workload and its view of the SPTEs, and `vcpu->async_pf.done`.
 */
import { PageSet, type ExitVia, type FaultReply, type KvmExitName, type SignalExitOutcome, type SignalMaskMode, type SignalName, type Site, type VcpuResult, type VcpuStateName } from "@faultline/shared";
import type { Workload } from "./workload.ts";

export type { ExitVia } from "@faultline/shared";
/** what became of the task's pending signals when it dequeued them */
export type Outcome = SignalExitOutcome;

export interface VcpuPorts {
  /** a guest exit to KVM for an access; `user`: the guest was at CPL3 */
  fault: (vcpu: number, gfn: number, write: boolean, site: Site, user: boolean) => Promise<FaultReply>;
  dequeue: (vcpu: number, atMs: number, outcome: Outcome, via: ExitVia) => Promise<void>;
  /** page ready: replay the async page fault with prefetch=true (`kvm_check_async_pf_completion`) */
  apfReady: (vcpu: number, gfn: number, token: number) => Promise<FaultReply>;
  /** the VMM asks the pager to fetch and install a page after KVM_EXIT_MEMORY_FAULT */
  resolve: (vcpu: number, gfn: number) => Promise<unknown>;
  state: (vcpu: number, state: VcpuStateName, pagesTouched: number) => void;
  now: () => number;
  /** did a testbed stall (a service that could not run, a NATS outage) overlap [fromMs, toMs] of scenario time? */
  testbedStalled?: (fromMs: number, toMs: number) => boolean;
}

/** `kvm_vcpu_stat` as the result reports it; `exits` counts guest exits to KVM (faults, emulations, halts). */
export type VcpuStat = VcpuResult["stat"];

export class VcpuTask {
  state: VcpuStateName = "running";
  readonly stat: VcpuStat = {
    exits: 0, pf_taken: 0, pf_fast: 0, pf_fixed: 0, pf_spurious: 0, pf_emulate: 0, signal_exits: 0,
    halt_exits: 0, halt_wakeup: 0, insn_emulation: 0, pf_mmio_spte_created: 0,
  };
  readonly exits: Partial<Record<KvmExitName, number>> = {};
  readonly slowUs: number[] = [];
  readonly fastUs: number[] = [];
  pagesTouched = 0;
  blocktimeMs = 0;
  /** SIGBUS BUS_MCEERR_AR received (KVM_PFN_ERR_HWPOISON) */
  hwpoisonSigbus = 0;
  /** CPU time a kernel-mode fault busy-looped with a non-fatal signal pending (modelled) */
  spinCpuMs = 0;
  doneAtMs: number | null = null;
  inFault: { site: Site; gfn: number; sinceMs: number; waitState?: "TASK_INTERRUPTIBLE" } | null = null;
  /** fault → page ready of async page faults, µs */
  readonly asyncUs: number[] = [];
  error: string | null = null;
  /** latency samples that overlapped a testbed stall: they measure the testbed, not the model */
  readonly testbedStalled = { slow: 0, fast: 0 };

  // The task's internals, read and written by kvm-run.ts and vmm.ts (not part of the Vcpu's API).
  /** a testbed stall overlapped the fault in flight: its sample is tainted */
  faultStalled = false;
  /** the task's pending set and `fatal_signal_pending()`, as published by the signals service */
  pending: SignalName[] = [];
  fatal = false;
  /** QEMU `cpu->stop` */
  stop = false;
  /** `run->immediate_exit`, set by QEMU's `kvm_cpu_kick` when SIG_IPI is handled outside KVM_RUN (immediate-exit mode) */
  immediateExit = false;
  /** KVM_RUN calls that returned -EINTR at once on `run->immediate_exit` (no KVM_EXIT_INTR, no signal_exits++) */
  immediateExits = 0;
  closed = false;
  /** the guest's position in its workload */
  cursor = 0;
  /** guest compute time owed (µs, not slept yet), the accesses it covers (cursor below this), and the time slept so far (µs) */
  computeDebtUs = 0;
  computedThrough = 0;
  computeUs = 0;
  /** gfns the guest has mapped (its view of the SPTEs): ranges, so a sequential guest keeps one */
  readonly mapped = new PageSet();
  /** the last KVM_EXIT_MEMORY_FAULT, to catch the same fault repeating after it was resolved */
  lastMemoryFault: { gfn: number; resolved: boolean; repeats: number } | null = null;
  /** accesses of guest tasks waiting for "page ready" (PV async PF): gfn → when the fault was taken */
  readonly deferred = new Map<number, number>();
  /** `vcpu->async_pf.done` as seen by this vCPU: completions not processed yet */
  apfDone: Array<{ gfn: number; token: number }> = [];
  /** `vcpu->arch.apf.halted` (KVM_REQ_APF_HALT): survives a signal exit, cleared by a completion */
  apfHalted: { gfn: number; sinceMs: number } | null = null;
  #changed: (() => void) | null = null;

  readonly id: number;
  readonly site: Site | "mixed";
  readonly accesses: Workload;
  readonly ports: VcpuPorts;
  /** how the VMM thread takes SIG_IPI outside KVM_RUN (scenario `vmm.signalMask`) */
  readonly signalMask: SignalMaskMode;

  constructor(id: number, site: Site | "mixed", accesses: Workload, ports: VcpuPorts, signalMask: SignalMaskMode = "immediate-exit") {
    this.id = id;
    this.site = site;
    this.accesses = accesses;
    this.ports = ports;
    this.signalMask = signalMask;
  }

  /** The state announced to the signals service (pause_all_vcpus waits for "paused"). */
  setState(s: VcpuStateName): void {
    if (this.state === s) return;
    this.state = s;
    this.ports.state(this.id, s, this.pagesTouched);
  }

  countExit(name: KvmExitName): void {
    this.exits[name] = (this.exits[name] ?? 0) + 1;
  }

  /** Sleep until something about the task changes (`notify`). */
  wait(): Promise<void> {
    return new Promise((r) => (this.#changed = r));
  }

  /** Something changed (a signal, a completion, a stop request, close): wake the sleeping task. */
  notify(): void {
    const c = this.#changed;
    this.#changed = null;
    c?.();
  }
}
