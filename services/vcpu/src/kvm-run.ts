/**
 * The kernel half of a vCPU task: one `KVM_RUN` ioctl (`kvm_arch_vcpu_ioctl_run` → `vcpu_run` →
 * `vcpu_enter_guest`): the pre-entry work (KVM_REQ_APF_READY, then the pending-signal check of
 * `xfer_to_guest_mode_handle_work`), the guest's accesses, halts in `kvm_vcpu_block`, and the
 * dispatch of each fault's answer from the mmu (`kvm_mmu_page_fault`) into "re-enter the guest" or
 * "return to userspace" (-EINTR, KVM_EXIT_MMIO, KVM_EXIT_MEMORY_FAULT).
 */
import { PAGE_SIZE, clock, type ExitVia, type FaultReply } from "@faultline/shared";
import type { VcpuTask } from "./task.ts";
import type { Access } from "./workload.ts";

/** Why KVM_RUN returned to userspace. */
export type RunExit =
  | { kind: "EINTR"; via: ExitVia }
  /** -EINTR at once: `run->immediate_exit` was set (no exit_reason, no signal_exits++) */
  | { kind: "IMMEDIATE_EXIT" }
  | { kind: "fatal"; via: ExitVia }
  | { kind: "MEMORY_FAULT"; gfn: number }
  | { kind: "MMIO" }
  | { kind: "closed" };

const CLOSED: RunExit = { kind: "closed" };
const MMIO: RunExit = { kind: "MMIO" };

/** Guest accesses to mapped pages between two turns of the event loop. */
const TOUCHES_PER_YIELD = 1024;

/** Guest compute time (`workload.computeUs`) is slept in batches of at least this much, µs ... */
export const COMPUTE_BATCH_US = 2_000;
/** ... and at most this much at once, so a signal or a pause request is seen soon. */
const COMPUTE_SLICE_US = 10_000;

/** One `KVM_RUN` ioctl: returns to userspace on -EINTR or an exit the kernel cannot handle. */
export async function kvmRun(t: VcpuTask): Promise<RunExit> {
  // kvm_arch_vcpu_ioctl_run: `if (!vcpu->wants_to_run) return -EINTR` (run->immediate_exit), before any entry
  if (t.immediateExit) {
    t.immediateExits++;
    return { kind: "IMMEDIATE_EXIT" };
  }
  let touchedSinceYield = 0;
  for (;;) {
    if (t.closed) return CLOSED;
    // vcpu_run: with apf.halted the vCPU blocks instead of entering the guest (also after a signal exit)
    if (t.apfHalted) {
      const exit = await apfHalt(t);
      if (exit) return exit;
      continue;
    }
    // vcpu_enter_guest: KVM_REQ_APF_READY is handled before the pending-signal check
    if (t.apfDone.length > 0) await apfCompletions(t);
    // vcpu_enter_guest: a pending (and, inside KVM_RUN, unblocked) signal → kvm_handle_signal_exit
    if (t.pending.length > 0) return signalExit(t, "pre-entry-check");
    const acc = t.accesses.at(t.cursor);
    if (t.accesses.computeUs > 0) {
      // the guest computes before each access: accumulated, slept in batches, counted in guest execution time
      if (acc && t.computedThrough <= t.cursor) {
        t.computeDebtUs += t.accesses.computeUs * t.accesses.weight(t.cursor);
        t.computedThrough = t.cursor + 1;
      }
      if (t.computeDebtUs >= COMPUTE_BATCH_US || (!acc && t.computeDebtUs > 0)) {
        await guestCompute(t);
        continue;
      }
    }
    if (!acc) {
      const exit = await guestIdle(t);
      if (exit) return exit;
      continue;
    }
    if (acc.site === "tdp" && t.mapped.has(acc.gfn)) {
      // the SPTE is there: the guest's access needs no exit
      t.cursor++;
      t.pagesTouched++;
      if (++touchedSinceYield % TOUCHES_PER_YIELD === 0) await new Promise((r) => setImmediate(r));
      continue;
    }
    const r = await fault(t, acc);
    if (!r) return CLOSED;
    if (r.mmioSpte) t.stat.pf_mmio_spte_created++;
    if (r.apf?.kind === "halt") {
      // KVM_REQ_APF_HALT: apf.halted = true; the top of the loop blocks, then the access is retried
      t.apfHalted = { gfn: acc.gfn, sinceMs: t.ports.now() };
      continue;
    }
    const exit = faultExit(t, acc, r);
    if (exit) return exit;
  }
}

/** The guest runs (no exit) for its accumulated compute time, at most COMPUTE_SLICE_US at once. */
async function guestCompute(t: VcpuTask): Promise<void> {
  const us = Math.min(t.computeDebtUs, COMPUTE_SLICE_US);
  t.computeDebtUs -= us;
  t.computeUs += us;
  await new Promise<void>((r) => clock().setTimeout(r, us / 1000));
}

/**
 * The guest has nothing to run. With guest tasks waiting for "page ready" it idles in HLT until a
 * completion or a signal; when its workload is done it halts for good (in-kernel LAPIC:
 * `kvm_vcpu_block`, TASK_INTERRUPTIBLE) and only a signal or the VM going away ends the halt.
 * Returns the exit, or null to re-enter the guest.
 */
async function guestIdle(t: VcpuTask): Promise<RunExit | null> {
  if (t.deferred.size > 0) {
    await block(t);
    if (t.apfDone.length === 0 && t.pending.length > 0) return haltWakeup(t);
    return null;
  }
  if (t.doneAtMs === null) {
    t.doneAtMs = t.ports.now();
    t.stat.halt_exits++;
    t.stat.exits++;
  }
  t.setState("done");
  while (t.pending.length === 0 && !t.closed) await t.wait();
  if (t.closed) return CLOSED;
  return haltWakeup(t);
}

/**
 * `vcpu_block` with `apf.halted` set (KVM_REQ_APF_HALT): an artificial halt in `kvm_vcpu_block`,
 * TASK_INTERRUPTIBLE, outside the SRCU read section, until a completion or a signal. A completion
 * makes the vCPU runnable and clears `apf.halted` (its `kvm_vcpu_kick` counts `halt_wakeup` when it
 * woke the sleeping vCPU). A signal leaves the vCPU not runnable: `apf.halted` stays set, KVM_RUN
 * returns -EINTR, and the vCPU blocks again when userspace re-enters. Returns the exit, or null to
 * go on (the completions are processed next, then the access is retried).
 */
async function apfHalt(t: VcpuTask): Promise<RunExit | null> {
  const h = t.apfHalted!;
  const since = t.ports.now();
  t.inFault = { site: "tdp", gfn: h.gfn, sinceMs: since, waitState: "TASK_INTERRUPTIBLE" };
  t.setState("halted"); // kvm_vcpu_running() is false while apf.halted
  await block(t);
  t.inFault = null;
  t.setState("running");
  t.blocktimeMs += t.ports.now() - since;
  if (t.fatal) return { kind: "fatal", via: "halt-wakeup" };
  if (t.apfDone.length === 0) return t.pending.length > 0 ? signalExit(t, "halt-wakeup") : null;
  t.apfHalted = null;
  if (!t.deferred.has(h.gfn)) t.deferred.set(h.gfn, h.sinceMs);
  return null;
}

/** A guest exit to KVM for `acc`: `kvm_mmu_page_fault` (or the emulator, or a map) via the mmu, timed. */
async function fault(t: VcpuTask, acc: Access): Promise<FaultReply | null> {
  t.stat.exits++;
  if (acc.site === "tdp") t.stat.pf_taken++;
  const start = t.ports.now();
  t.inFault = { site: acc.site, gfn: acc.gfn, sinceMs: start };
  let r: FaultReply;
  try {
    r = await t.ports.fault(t.id, acc.gfn, acc.write, acc.site, acc.user);
  } catch (err) {
    if (t.closed) return null;
    throw err;
  } finally {
    t.inFault = null;
  }
  const end = t.ports.now();
  const dt = end - start;
  const stalled = t.faultStalled || (t.ports.testbedStalled?.(start, end) ?? false);
  t.faultStalled = false;
  t.spinCpuMs += r.spinMs;
  if (r.sleeps > 0) {
    t.slowUs.push(dt * 1000);
    t.blocktimeMs += dt;
    if (stalled) t.testbedStalled.slow++;
  } else {
    t.fastUs.push(dt * 1000);
    if (stalled) t.testbedStalled.fast++;
  }
  return r;
}

/**
 * What the fault's answer means for the guest (all but the APF halt): a PV async PF lets the guest
 * run another task, an emulated or kernel-mapped access completes, SIGBUS for a poisoned page, and
 * the RET_PF_* / -errno of `kvm_mmu_page_fault`. Returns the KVM_RUN exit, or null to re-enter.
 */
function faultExit(t: VcpuTask, acc: Access, r: FaultReply): RunExit | null {
  if (r.apf?.kind === "not-present") {
    // PV async PF: the guest gets "page not present" and schedules another task
    t.deferred.set(acc.gfn, t.ports.now());
    t.cursor++;
    return null;
  }
  if (acc.site !== "tdp" && r.ret !== "ERRNO") {
    // emulation completed the access, or KVM mapped the page for itself (vmcs12, pfn cache)
    if (acc.site === "emulated") t.stat.insn_emulation++;
    t.cursor++;
    t.pagesTouched++;
    if (r.exit !== "KVM_EXIT_MMIO") return null;
    t.countExit("KVM_EXIT_MMIO");
    return MMIO;
  }
  if (r.hwpoison) {
    // kvm_send_hwpoison_signal: SIGBUS BUS_MCEERR_AR is pending and the fault returns RET_PF_RETRY, so
    // the next entry exits (kvm_handle_signal_exit: KVM_EXIT_INTR, -EINTR); on the way out QEMU's
    // SIGBUS handler (kvm_arch_on_sigbus_vcpu) injects an MCE, kvm_cpu_exec returns and the thread
    // goes through qemu_wait_io_event (parks if cpu->stop); the guest's memory-failure handling drops the page
    t.hwpoisonSigbus++;
    t.cursor++;
    return signalExit(t, "hwpoison");
  }
  return pageFaultExit(t, acc, r);
}

/** `kvm_mmu_page_fault`'s return for a TDP fault (or an error of any site): RET_PF_* or -errno. */
function pageFaultExit(t: VcpuTask, acc: Access, r: FaultReply): RunExit | null {
  switch (r.ret) {
    case "RET_PF_FIXED":
      t.stat.pf_fixed++;
      if (r.path === "fast_page_fault") t.stat.pf_fast++;
      t.mapped.add(acc.gfn);
      return null;
    case "RET_PF_SPURIOUS":
      // kvm_mmu_do_page_fault counts pf_spurious; pf_fast only counts what fast_page_fault fixed
      t.stat.pf_spurious++;
      t.mapped.add(acc.gfn);
      return null;
    case "RET_PF_EMULATE":
      t.stat.pf_emulate++;
      if (r.exit !== "KVM_EXIT_MMIO") return null;
      t.cursor++; // the VMM completes the MMIO access
      t.countExit("KVM_EXIT_MMIO");
      return MMIO;
    case "ERRNO":
      if (r.exit === "KVM_EXIT_MEMORY_FAULT" && r.memoryFault) {
        // kvm_prepare_memory_fault_exit: KVM_RUN returns -EFAULT with run->memory_fault filled in
        t.countExit("KVM_EXIT_MEMORY_FAULT");
        return { kind: "MEMORY_FAULT", gfn: r.memoryFault.gpa / PAGE_SIZE };
      }
      if (r.errno === "EINTR" && acc.site === "tdp") return signalExit(t, "gup-eintr");
      // -EFAULT from a uaccess, -EINVAL from kvm_vcpu_map: KVM_RUN fails; with a fatal signal the task dies
      if (r.fatal) return { kind: "fatal", via: "fault-error" };
      throw new Error(`KVM_RUN failed with -${r.errno ?? "EFAULT"} at ${acc.site} on gfn ${acc.gfn}`);
    default: // RET_PF_RETRY: let the CPU fault again
      return null;
  }
}

/** `kvm_vcpu_block`: sleep until an async-PF completion, a signal, death, or the VM goes away. */
async function block(t: VcpuTask): Promise<void> {
  const blocked = () => t.apfDone.length === 0 && t.pending.length === 0 && !t.closed && !t.fatal;
  const sleeps = blocked();
  while (blocked()) await t.wait();
  // kvm_vcpu_wake_up counts halt_wakeup when a completion's kvm_vcpu_kick woke the sleeping vCPU
  // (a signal wakes it through signal_wake_up, which counts nothing)
  if (sleeps && t.apfDone.length > 0) t.stat.halt_wakeup++;
}

/** A halted vCPU woken by a signal leaves KVM_RUN with KVM_EXIT_INTR (via `halt-wakeup`). */
function haltWakeup(t: VcpuTask): RunExit {
  // no halt_wakeup: kvm_vcpu_wake_up counts it, and a signal wakes the task through signal_wake_up instead
  return signalExit(t, "halt-wakeup");
}

/** `kvm_handle_signal_exit`: exit_reason = KVM_EXIT_INTR, ++signal_exits; KVM_RUN returns -EINTR. */
function signalExit(t: VcpuTask, via: ExitVia): RunExit {
  t.stat.signal_exits++;
  t.countExit("KVM_EXIT_INTR");
  return { kind: "EINTR", via };
}

/** `kvm_check_async_pf_completion`: replay each completed fault (prefetch), "page ready" to the guest. */
async function apfCompletions(t: VcpuTask): Promise<void> {
  const done = t.apfDone;
  t.apfDone = [];
  for (const d of done) {
    const r = await t.ports.apfReady(t.id, d.gfn, d.token);
    if (r.ret === "RET_PF_FIXED") t.stat.pf_fixed++; // kvm_arch_async_page_ready counts it
    if (r.ret === "RET_PF_FIXED" || r.ret === "RET_PF_SPURIOUS") t.mapped.add(d.gfn);
    const since = t.deferred.get(d.gfn);
    if (since === undefined) continue;
    t.deferred.delete(d.gfn);
    t.asyncUs.push((t.ports.now() - since) * 1000);
    if (t.mapped.has(d.gfn) && t.accesses.at(t.cursor)?.gfn !== d.gfn) t.pagesTouched++; // the waiting guest task resumes
  }
}
