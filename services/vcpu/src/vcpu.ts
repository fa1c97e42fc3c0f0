/**
 * One vCPU task: the kernel half (`KVM_RUN` → `vcpu_run` → `vcpu_enter_guest`, with the pre-entry
 * pending-signal check of `xfer_to_guest_mode_handle_work`) and the QEMU half (`kvm_cpu_exec`:
 * on -EINTR `kvm_eat_signals`, park if `cpu->stop`, else re-enter). The guest workload runs inside.
 * Pure logic: the mmu fault, the signal dequeue and state announcements are injected ports.
 */
import { PAGE_SIZE, PageSet, type FaultReply, type KvmExitName, type SignalName, type Site, type VcpuStateName } from "@faultline/shared";
import type { Access, Workload } from "./workload.ts";

export type ExitVia = "gup-eintr" | "pre-entry-check" | "halt-wakeup" | "vm-killed" | "fault-error" | "memory-fault-wait";
export type Outcome = "KVM_EXIT_INTR" | "killed" | "delivered-in-vmm";

/** "Userspaces which attempt to resolve memory faults so that they can retry KVM_RUN are encouraged
 * to guard against repeatedly receiving the same error/annotated fault" (api.rst): give up after this many. */
export const MEMORY_FAULT_REPEATS = 3;

export interface VcpuPorts {
  fault: (vcpu: number, gfn: number, write: boolean, site: Site) => Promise<FaultReply>;
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

export interface VcpuStat {
  /** guest exits to KVM (faults, emulations, halts) */
  exits: number;
  pf_taken: number;
  pf_fast: number;
  pf_fixed: number;
  pf_spurious: number;
  pf_emulate: number;
  signal_exits: number;
  halt_exits: number;
  halt_wakeup: number;
  insn_emulation: number;
  pf_mmio_spte_created: number;
}

type RunExit =
  | { kind: "EINTR"; via: ExitVia }
  | { kind: "fatal"; via: ExitVia }
  | { kind: "MEMORY_FAULT"; gfn: number }
  | { kind: "MMIO" }
  | { kind: "closed" };

export class Vcpu {
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
  #faultStalled = false;
  #pending: SignalName[] = [];
  #fatal = false;
  #stop = false;
  #closed = false;
  #cursor = 0;
  /** gfns the guest has mapped (its view of the SPTEs): ranges, so a sequential guest keeps one */
  readonly #mapped = new PageSet();
  #changed: (() => void) | null = null;
  #lastMemoryFault: { gfn: number; resolved: boolean; repeats: number } | null = null;
  /** accesses of guest tasks waiting for "page ready" (PV async PF): gfn → when the fault was taken */
  readonly #deferred = new Map<number, number>();
  /** `vcpu->async_pf.done` as seen by this vCPU: completions not processed yet */
  #apfDone: Array<{ gfn: number; token: number }> = [];

  readonly id: number;
  readonly site: Site | "mixed";
  readonly accesses: Workload;
  readonly ports: VcpuPorts;

  constructor(id: number, site: Site | "mixed", accesses: Workload, ports: VcpuPorts) {
    this.id = id;
    this.site = site;
    this.accesses = accesses;
    this.ports = ports;
    void accesses.ready(); // a large workload goes on building in slices, between other work
  }

  /** The task's pending set changed (`signal_wake_up` or dequeue), as published by the signals service. */
  setPending(pending: SignalName[], fatal: boolean): void {
    this.#pending = pending;
    this.#fatal = fatal;
    this.#notify();
  }

  /** SPTEs zapped (memslot change, mmu notifier): the next access to these pages faults again. */
  unmap(gfns: readonly number[]): void {
    // runs of consecutive gfns (a zapped memslot is one run per chunk) go as one range each
    for (let i = 0; i < gfns.length; ) {
      let j = i + 1;
      while (j < gfns.length && gfns[j] === gfns[j - 1]! + 1) j++;
      this.#mapped.deleteRange(gfns[i]!, gfns[j - 1]! + 1);
      i = j;
    }
  }

  /** `kvm_async_pf_completed` reached this vCPU: KVM_REQ_APF_READY, and the kick wakes a halt. */
  apfCompleted(gfn: number, token: number): void {
    this.#apfDone.push({ gfn, token });
    this.#notify();
  }

  /** QEMU `cpu->stop`. Setting it does not get the vCPU out of KVM_RUN: that takes a kick (SIG_IPI). */
  setStop(stop: boolean): void {
    this.#stop = stop;
    this.#notify();
  }

  close(): void {
    this.#closed = true;
    this.#notify();
  }

  /** The VMM's vCPU thread (`kvm_vcpu_thread_fn` → `kvm_cpu_exec`). */
  async run(): Promise<void> {
    if (!this.accesses.built) await this.accesses.ready();
    this.#setState("running");
    while (!this.#closed) {
      if (this.#fatal) return this.#die("vm-killed");
      if (this.#stop) {
        await this.#park();
        continue;
      }
      const r = await this.#kvmRun();
      if (r.kind === "closed") return;
      if (r.kind === "fatal") return this.#die(r.via);
      if (r.kind === "MEMORY_FAULT") await this.#resolveMemoryFault(r.gfn);
      if (r.kind === "EINTR") {
        // the task returns to userspace with a fatal signal pending: it dies there
        if (this.#fatal) return this.#die(r.via);
        await this.ports.dequeue(this.id, this.ports.now(), "KVM_EXIT_INTR", r.via); // kvm_eat_signals
      }
    }
  }

  /** One `KVM_RUN` ioctl: returns to userspace on -EINTR or an exit the kernel cannot handle. */
  async #kvmRun(): Promise<RunExit> {
    let touchedSinceYield = 0;
    for (;;) {
      if (this.#closed) return { kind: "closed" };
      // vcpu_enter_guest: KVM_REQ_APF_READY is handled before the pending-signal check
      if (this.#apfDone.length > 0) await this.#apfCompletions();
      // vcpu_enter_guest: a pending (and, inside KVM_RUN, unblocked) signal → kvm_handle_signal_exit
      if (this.#pending.length > 0) return this.#signalExit("pre-entry-check");
      const acc = this.accesses.at(this.#cursor);
      if (!acc && this.#deferred.size > 0) {
        // every guest task waits for "page ready": the guest idles in HLT (kvm_vcpu_block)
        await this.#block();
        if (this.#apfDone.length === 0 && this.#pending.length > 0) return this.#haltWakeup();
        continue;
      }
      if (!acc) {
        // guest done: HLT, handled in the kernel (in-kernel LAPIC) by kvm_vcpu_block, TASK_INTERRUPTIBLE
        if (this.doneAtMs === null) {
          this.doneAtMs = this.ports.now();
          this.stat.halt_exits++;
          this.stat.exits++;
        }
        this.#setState("done");
        while (this.#pending.length === 0 && !this.#closed) await this.#wait();
        if (this.#closed) return { kind: "closed" };
        return this.#haltWakeup();
      }
      if (acc.site === "tdp" && this.#mapped.has(acc.gfn)) {
        this.#cursor++;
        this.pagesTouched++;
        if (++touchedSinceYield % 1024 === 0) await new Promise((r) => setImmediate(r));
        continue;
      }
      const r = await this.#fault(acc);
      if (!r) return { kind: "closed" };
      if (r.mmioSpte) this.stat.pf_mmio_spte_created++;
      if (r.apf?.kind === "not-present") {
        // PV async PF: the guest gets "page not present" and schedules another task
        this.#deferred.set(acc.gfn, this.ports.now());
        this.#cursor++;
        continue;
      }
      if (r.apf?.kind === "halt") {
        // KVM_REQ_APF_HALT: artificial halt in kvm_vcpu_block, TASK_INTERRUPTIBLE, until page ready or a signal
        const t = this.ports.now();
        this.inFault = { site: "tdp", gfn: acc.gfn, sinceMs: t, waitState: "TASK_INTERRUPTIBLE" };
        await this.#block();
        this.inFault = null;
        this.blocktimeMs += this.ports.now() - t;
        if (this.#fatal) return { kind: "fatal", via: "halt-wakeup" };
        if (this.#apfDone.length === 0 && this.#pending.length > 0) return this.#haltWakeup();
        if (!this.#deferred.has(acc.gfn)) this.#deferred.set(acc.gfn, t);
        continue; // completions are processed at the top; the access is then retried
      }
      if (acc.site !== "tdp" && r.ret !== "ERRNO") {
        // emulation completed the access, or KVM mapped the page for itself (vmcs12, pfn cache)
        if (acc.site === "emulated") this.stat.insn_emulation++;
        this.#cursor++;
        this.pagesTouched++;
        if (r.exit === "KVM_EXIT_MMIO") {
          this.#countExit("KVM_EXIT_MMIO");
          return { kind: "MMIO" };
        }
        continue;
      }
      if (r.hwpoison) {
        // SIGBUS BUS_MCEERR_AR is pending: the next entry exits (KVM_EXIT_INTR); QEMU's
        // kvm_arch_on_sigbus_vcpu injects an MCE; the guest's memory-failure handling drops the page
        this.hwpoisonSigbus++;
        this.#cursor++;
        this.stat.signal_exits++;
        this.#countExit("KVM_EXIT_INTR");
        continue;
      }
      switch (r.ret) {
        case "RET_PF_FIXED":
          this.stat.pf_fixed++;
          if (r.path === "fast_page_fault") this.stat.pf_fast++;
          this.#mapped.add(acc.gfn);
          break;
        case "RET_PF_SPURIOUS":
          this.stat.pf_spurious++;
          this.stat.pf_fast++;
          this.#mapped.add(acc.gfn);
          break;
        case "RET_PF_EMULATE":
          this.stat.pf_emulate++;
          if (r.exit === "KVM_EXIT_MMIO") {
            this.#cursor++; // the VMM completes the MMIO access
            this.#countExit("KVM_EXIT_MMIO");
            return { kind: "MMIO" };
          }
          break;
        case "ERRNO":
          if (r.exit === "KVM_EXIT_MEMORY_FAULT" && r.memoryFault) {
            this.#countExit("KVM_EXIT_MEMORY_FAULT");
            return { kind: "MEMORY_FAULT", gfn: r.memoryFault.gpa / PAGE_SIZE };
          }
          if (r.errno === "EINTR" && acc.site === "tdp") return this.#signalExit("gup-eintr");
          // -EFAULT from a uaccess, -EINVAL from kvm_vcpu_map: KVM_RUN fails; with a fatal signal the task dies
          if (r.fatal) return { kind: "fatal", via: "fault-error" };
          throw new Error(`KVM_RUN failed with -${r.errno ?? "EFAULT"} at ${acc.site} on gfn ${acc.gfn}`);
        default: // RET_PF_RETRY: let the CPU fault again
          break;
      }
    }
  }

  async #fault(acc: Access): Promise<FaultReply | null> {
    this.stat.exits++;
    if (acc.site === "tdp") this.stat.pf_taken++;
    const t = this.ports.now();
    this.inFault = { site: acc.site, gfn: acc.gfn, sinceMs: t };
    let r: FaultReply;
    try {
      r = await this.ports.fault(this.id, acc.gfn, acc.write, acc.site);
    } catch (err) {
      if (this.#closed) return null;
      throw err;
    } finally {
      this.inFault = null;
    }
    const end = this.ports.now();
    const dt = end - t;
    const stalled = this.#faultStalled || (this.ports.testbedStalled?.(t, end) ?? false);
    this.#faultStalled = false;
    this.spinCpuMs += r.spinMs;
    if (r.sleeps > 0) {
      this.slowUs.push(dt * 1000);
      this.blocktimeMs += dt;
      if (stalled) this.testbedStalled.slow++;
    } else {
      this.fastUs.push(dt * 1000);
      if (stalled) this.testbedStalled.fast++;
    }
    return r;
  }

  /** A testbed stall ended at `toMs` (scenario time): if this vCPU's fault was in flight before then, its sample is tainted. */
  noteTestbedStall(toMs: number): void {
    if (this.inFault && this.inFault.sinceMs < toMs) this.#faultStalled = true;
  }

  /** `kvm_vcpu_block`: sleep until an async-PF completion, a signal, death, or the VM goes away. */
  async #block(): Promise<void> {
    while (this.#apfDone.length === 0 && this.#pending.length === 0 && !this.#closed && !this.#fatal) await this.#wait();
  }

  /** A halted vCPU woken by a signal (`halt_wakeup`) leaves KVM_RUN with KVM_EXIT_INTR. */
  #haltWakeup(): RunExit {
    this.stat.halt_wakeup++;
    return this.#signalExit("halt-wakeup");
  }

  /** `kvm_handle_signal_exit`: exit_reason = KVM_EXIT_INTR, ++signal_exits; KVM_RUN returns -EINTR. */
  #signalExit(via: ExitVia): RunExit {
    this.stat.signal_exits++;
    this.#countExit("KVM_EXIT_INTR");
    return { kind: "EINTR", via };
  }

  #countExit(name: KvmExitName): void {
    this.exits[name] = (this.exits[name] ?? 0) + 1;
  }

  /** `kvm_check_async_pf_completion`: replay each completed fault (prefetch), "page ready" to the guest. */
  async #apfCompletions(): Promise<void> {
    const done = this.#apfDone;
    this.#apfDone = [];
    for (const d of done) {
      const r = await this.ports.apfReady(this.id, d.gfn, d.token);
      if (r.ret === "RET_PF_FIXED") this.stat.pf_fixed++; // kvm_arch_async_page_ready counts it
      if (r.ret === "RET_PF_FIXED" || r.ret === "RET_PF_SPURIOUS") this.#mapped.add(d.gfn);
      const since = this.#deferred.get(d.gfn);
      if (since === undefined) continue;
      this.#deferred.delete(d.gfn);
      this.asyncUs.push((this.ports.now() - since) * 1000);
      if (this.#mapped.has(d.gfn) && this.accesses.at(this.#cursor)?.gfn !== d.gfn) this.pagesTouched++; // the waiting guest task resumes
    }
  }

  /**
   * The VMM's handling of KVM_EXIT_MEMORY_FAULT (proposed designs): ask the pager for the page, then
   * re-enter. The vCPU thread waits in userspace with SIG_IPI unblocked (ppoll-style), so a kick is
   * consumed at once ("delivered-in-vmm") and a stop request parks it without FOLL_INTERRUPTIBLE; the
   * fetch goes on, and the next KVM_RUN re-faults. The same fault after a resolve is counted, and the
   * vCPU gives up after MEMORY_FAULT_REPEATS of them.
   */
  async #resolveMemoryFault(gfn: number): Promise<void> {
    const last = this.#lastMemoryFault;
    if (last?.gfn === gfn && last.resolved) {
      if (++last.repeats >= MEMORY_FAULT_REPEATS) {
        throw new Error(`KVM_EXIT_MEMORY_FAULT for gpa 0x${(gfn * 4096).toString(16)} repeated ${last.repeats} times after it was resolved`);
      }
      last.resolved = false;
    } else this.#lastMemoryFault = { gfn, resolved: false, repeats: 0 };
    const t = this.ports.now();
    const state: { done: boolean; err: unknown } = { done: false, err: null };
    this.ports.resolve(this.id, gfn).then(
      () => ((state.done = true), this.#notify()),
      (err: unknown) => ((state.done = true), (state.err = err), this.#notify()),
    );
    this.inFault = { site: "tdp", gfn, sinceMs: t };
    try {
      for (;;) {
        // SIG_IPI is unblocked here: a pending signal is delivered before anything else is looked at
        if (this.#pending.length > 0 && !this.#fatal) {
          await this.ports.dequeue(this.id, this.ports.now(), "delivered-in-vmm", "memory-fault-wait");
          continue;
        }
        if (state.done || this.#closed || this.#fatal || this.#stop) break;
        await this.#wait();
      }
    } finally {
      this.inFault = null;
    }
    if (state.err) throw state.err;
    if (!state.done) return; // stopped or dying: the loop parks or kills; the fetch goes on
    this.#lastMemoryFault!.resolved = true;
    const dt = this.ports.now() - t;
    this.slowUs.push(dt * 1000);
    this.blocktimeMs += dt;
  }

  async #park(): Promise<void> {
    const resumeTo: VcpuStateName = this.doneAtMs === null ? "running" : "done";
    this.#setState("paused");
    while (this.#stop && !this.#fatal && !this.#closed) await this.#wait();
    if (!this.#fatal && !this.#closed) this.#setState(resumeTo);
  }

  async #die(via: ExitVia): Promise<void> {
    this.#setState("killed");
    await this.ports.dequeue(this.id, this.ports.now(), "killed", via);
  }

  #setState(s: VcpuStateName): void {
    if (this.state === s) return;
    this.state = s;
    this.ports.state(this.id, s, this.pagesTouched);
  }

  #wait(): Promise<void> {
    return new Promise((r) => (this.#changed = r));
  }

  #notify(): void {
    const c = this.#changed;
    this.#changed = null;
    c?.();
  }
}
