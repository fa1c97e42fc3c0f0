/**
 * The VMM half of a vCPU task: QEMU's vCPU thread (`kvm_vcpu_thread_fn` → `kvm_cpu_exec`). It
 * enters KVM_RUN, and on its return: -EINTR → `kvm_eat_signals` (the pending signals are dequeued)
 * and re-enter; `cpu->stop` → park until resumed (`qemu_wait_io_event`); KVM_EXIT_MEMORY_FAULT →
 * ask the pager for the page and re-enter (the proposed designs); a fatal signal → the task dies.
 *
 * SIG_IPI outside KVM_RUN (`vmm.signalMask`): with `immediate-exit` (KVM_CAP_IMMEDIATE_EXIT,
 * `kvm_init_cpu_signals` unblocks it with pthread_sigmask) the handler `kvm_ipi_signal` runs at once
 * wherever the thread is (`delivered-in-vmm`) and `kvm_cpu_kick` sets `run->immediate_exit`, so the
 * next KVM_RUN returns -EINTR before entering; `kvm_eat_signals` then clears it. With
 * `kvm-set-signal-mask` SIG_IPI is blocked in userspace and stays pending until the next KVM_RUN.
 * A coredump-class signal the thread does not block (SIGSEGV, SIGILL) kills it on its way to
 * userspace (`get_signal` → `do_coredump`), and with it the VM.
 */
import { SIG_IPI, isCoredump, type ExitVia, type VcpuStateName } from "@faultline/shared";
import { kvmRun } from "./kvm-run.ts";
import type { VcpuTask } from "./task.ts";

/** "Userspaces which attempt to resolve memory faults so that they can retry KVM_RUN are encouraged
 * to guard against repeatedly receiving the same error/annotated fault" (api.rst): give up after this many. */
export const MEMORY_FAULT_REPEATS = 3;

/** `kvm_cpu_exec`, looped by `kvm_vcpu_thread_fn` until the VM goes away or the task dies. */
export async function kvmCpuExec(t: VcpuTask): Promise<void> {
  if (!t.accesses.built) await t.accesses.ready();
  t.setState("running");
  while (!t.closed) {
    if (t.fatal) return die(t, "vm-killed");
    if (coredumpPending(t)) return die(t, "core-dump");
    if (sigIpiInVmm(t)) {
      await deliverInVmm(t, "vmm-exit");
      continue;
    }
    if (t.stop) {
      await park(t);
      continue;
    }
    const r = await kvmRun(t);
    if (r.kind === "closed") return;
    if (r.kind === "fatal") return die(t, r.via);
    if (r.kind === "MEMORY_FAULT") await resolveMemoryFault(t, r.gfn);
    if (r.kind === "IMMEDIATE_EXIT") t.immediateExit = false; // kvm_eat_signals: nothing pending, clear run->immediate_exit
    if (r.kind === "EINTR") {
      // the task returns to userspace with a fatal signal pending: it dies there
      if (t.fatal) return die(t, r.via);
      if (coredumpPending(t)) return die(t, "core-dump");
      await t.ports.dequeue(t.id, t.ports.now(), "KVM_EXIT_INTR", r.via); // the handler ran on the way out; kvm_eat_signals
      t.immediateExit = false;
    }
  }
}

/** SIG_IPI pending while the thread is outside KVM_RUN, and unblocked there (immediate-exit mode). */
function sigIpiInVmm(t: VcpuTask): boolean {
  return t.signalMask === "immediate-exit" && !t.fatal && t.pending.includes(SIG_IPI);
}

/** `kvm_ipi_signal` → `kvm_cpu_kick`: the signal is taken in userspace at once; the next KVM_RUN exits immediately. */
async function deliverInVmm(t: VcpuTask, via: ExitVia): Promise<void> {
  t.immediateExit = true;
  await t.ports.dequeue(t.id, t.ports.now(), "delivered-in-vmm", via);
}

/** An unblocked coredump-class signal is pending: `get_signal` on the way to userspace dumps core. */
function coredumpPending(t: VcpuTask): boolean {
  return t.pending.some(isCoredump);
}

/**
 * The VMM's handling of KVM_EXIT_MEMORY_FAULT (proposed designs): ask the pager for the page, then
 * re-enter. The vCPU thread waits in userspace with SIG_IPI unblocked (ppoll-style), so a kick is
 * consumed at once ("delivered-in-vmm") and a stop request parks it without FOLL_INTERRUPTIBLE; the
 * fetch goes on, and the next KVM_RUN re-faults. The same fault after a resolve is counted, and the
 * vCPU gives up after MEMORY_FAULT_REPEATS of them.
 */
async function resolveMemoryFault(t: VcpuTask, gfn: number): Promise<void> {
  const last = noteMemoryFault(t, gfn);
  const start = t.ports.now();
  const state: { done: boolean; err: unknown } = { done: false, err: null };
  t.ports.resolve(t.id, gfn).then(
    () => ((state.done = true), t.notify()),
    (err: unknown) => ((state.done = true), (state.err = err), t.notify()),
  );
  t.inFault = { site: "tdp", gfn, sinceMs: start };
  try {
    for (;;) {
      // SIG_IPI is unblocked here: a pending kick is delivered before anything else is looked at
      // (with KVM_SET_SIGNAL_MASK, SIG_IPI stays blocked in userspace: it waits for the next KVM_RUN)
      if (sigIpiInVmm(t) && !coredumpPending(t)) {
        await deliverInVmm(t, "memory-fault-wait");
        continue;
      }
      if (state.done || t.closed || t.fatal || t.stop || coredumpPending(t)) break;
      await t.wait();
    }
  } finally {
    t.inFault = null;
  }
  if (state.err) throw state.err;
  if (!state.done) return; // stopped or dying: the loop parks or kills; the fetch goes on
  last.resolved = true;
  const dt = t.ports.now() - start;
  t.slowUs.push(dt * 1000);
  t.blocktimeMs += dt;
}

/** The repeat guard: the same gfn faulting again after it was resolved counts, up to MEMORY_FAULT_REPEATS. */
function noteMemoryFault(t: VcpuTask, gfn: number): { gfn: number; resolved: boolean; repeats: number } {
  const last = t.lastMemoryFault;
  if (last?.gfn === gfn && last.resolved) {
    if (++last.repeats >= MEMORY_FAULT_REPEATS) {
      throw new Error(`KVM_EXIT_MEMORY_FAULT for gpa 0x${(gfn * 4096).toString(16)} repeated ${last.repeats} times after it was resolved`);
    }
    last.resolved = false;
    return last;
  }
  return (t.lastMemoryFault = { gfn, resolved: false, repeats: 0 });
}

/** `cpu->stop`: the thread parks (`qemu_wait_io_event`) until resumed, killed, or the VM goes away. */
async function park(t: VcpuTask): Promise<void> {
  const resumeTo: VcpuStateName = t.doneAtMs === null ? "running" : "done";
  t.setState("paused");
  while (t.stop && !t.fatal && !t.closed && !coredumpPending(t)) {
    // parked in qemu_wait_io_event (a futex wait, interruptible): an unblocked SIG_IPI runs its handler
    if (sigIpiInVmm(t)) await deliverInVmm(t, "parked");
    else await t.wait();
  }
  if (!t.fatal && !t.closed && !coredumpPending(t)) t.setState(resumeTo);
}

/** The task dies of its fatal signal; the signals service records the outcome of what was pending. */
async function die(t: VcpuTask, via: ExitVia): Promise<void> {
  t.setState("killed");
  await t.ports.dequeue(t.id, t.ports.now(), "killed", via);
}
