/**
 * One vCPU task: the kernel half (kvm-run.ts: `KVM_RUN` → `vcpu_run` → `vcpu_enter_guest`, with the
 * pre-entry pending-signal check of `xfer_to_guest_mode_handle_work`) and the QEMU half (vmm.ts:
 * `kvm_cpu_exec`: on -EINTR `kvm_eat_signals`, park if `cpu->stop`, else re-enter). The guest
 * workload runs inside. Pure logic: the mmu fault, the signal dequeue and state announcements are
 * injected ports. This class is what the rest of the vcpu service talks to: the events that reach a
 * task from outside (signals, zaps, async-PF completions, stop requests).
 */
import type { SignalMaskMode, SignalName, Site } from "@faultline/shared";
import { VcpuTask, type VcpuPorts } from "./task.ts";
import { kvmCpuExec } from "./vmm.ts";
import type { Workload } from "./workload.ts";

export { MEMORY_FAULT_REPEATS } from "./vmm.ts";
export type { ExitVia, Outcome, VcpuPorts, VcpuStat } from "./task.ts";

export class Vcpu extends VcpuTask {
  constructor(id: number, site: Site | "mixed", accesses: Workload, ports: VcpuPorts, signalMask: SignalMaskMode = "immediate-exit") {
    super(id, site, accesses, ports, signalMask);
    void accesses.ready(); // a large workload goes on building in slices, between other work
  }

  /** The task's pending set changed (`signal_wake_up` or dequeue), as published by the signals service. */
  setPending(pending: SignalName[], fatal: boolean): void {
    this.pending = pending;
    this.fatal = fatal;
    this.notify();
  }

  /** SPTEs zapped (memslot change, mmu notifier): the next access to these pages faults again. */
  unmap(gfns: readonly number[]): void {
    // runs of consecutive gfns (a zapped memslot is one run per chunk) go as one range each
    for (let i = 0; i < gfns.length; ) {
      let j = i + 1;
      while (j < gfns.length && gfns[j] === gfns[j - 1]! + 1) j++;
      this.mapped.deleteRange(gfns[i]!, gfns[j - 1]! + 1);
      i = j;
    }
  }

  /** `kvm_async_pf_completed` reached this vCPU: KVM_REQ_APF_READY, and the kick wakes a halt. */
  apfCompleted(gfn: number, token: number): void {
    this.apfDone.push({ gfn, token });
    this.notify();
  }

  /** QEMU `cpu->stop`. Setting it does not get the vCPU out of KVM_RUN: that takes a kick (SIG_IPI). */
  setStop(stop: boolean): void {
    this.stop = stop;
    this.notify();
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  /** The VMM's vCPU thread (`kvm_vcpu_thread_fn` → `kvm_cpu_exec`). */
  run(): Promise<void> {
    return kvmCpuExec(this);
  }

  /** A testbed stall ended at `toMs` (scenario time): if this vCPU's fault was in flight before then, its sample is tainted. */
  noteTestbedStall(toMs: number): void {
    if (this.inFault && this.inFault.sinceMs < toMs) this.faultStalled = true;
  }
}
