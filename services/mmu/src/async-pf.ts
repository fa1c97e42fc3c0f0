/**
 * x86 async page faults for one VM (docs/faults.md, "Async page faults"): the gate
 * (`kvm_can_do_async_pf`), per-vCPU queues bounded by ASYNC_PF_PER_VCPU, the outstanding-gfn hash
 * (`kvm_find_async_pf_gfn`), the kworker that does the blocking gup (`async_pf_execute`, not the
 * vCPU), and the tracepoints, which are the only way async PF is observable in KVM.
 */
export const ASYNC_PF_PER_VCPU = 64;

export const APF_EVENTS = [
  "kvm_try_async_get_page",
  "kvm_async_pf_repeated_fault",
  "kvm_async_pf_not_present",
  "kvm_async_pf_completed",
  "kvm_async_pf_ready",
] as const;
export type ApfEvent = (typeof APF_EVENTS)[number];

export interface AsyncPfOptions {
  /** the guest enabled PV async PF (MSR_KVM_ASYNC_PF_EN): "page not present" can be injected */
  pv: boolean;
  /** guest RFLAGS.IF: "If interrupts are off we cannot even use an artificial halt state" */
  interruptsEnabled: boolean;
  /** the kworker's `get_user_pages_remote(FOLL_WRITE)`: sleeps TASK_KILLABLE in uffd, as the kworker */
  kworkerGup: (vcpu: number, gfn: number) => Promise<unknown>;
  /** `kvm_async_pf_completed`: append to `async_pf.done`, KVM_REQ_APF_READY, kick the vCPU */
  completed: (vcpu: number, token: number, gfn: number) => void;
}

export interface ApfSetup {
  /** `not-present`: #PF with the token injected, the guest runs something else; `halt`: KVM_REQ_APF_HALT */
  kind: "not-present" | "halt";
  token: number;
}

interface Queue {
  queued: number;
  gfns: Set<number>;
  id: number;
}

export class AsyncPf {
  readonly events: Record<ApfEvent, number> = Object.fromEntries(APF_EVENTS.map((e) => [e, 0])) as Record<ApfEvent, number>;
  readonly #queues = new Map<number, Queue>();
  readonly #o: AsyncPfOptions;

  constructor(o: AsyncPfOptions) {
    this.#o = o;
  }

  /** `kvm_can_do_async_pf`: in-kernel LAPIC (always here), no pending exception (none modelled), IF=1. */
  canDo(): boolean {
    return this.#o.interruptsEnabled;
  }

  /**
   * The async branch of `__kvm_mmu_faultin_pfn` after attempt 1 returned KVM_PFN_ERR_NEEDS_IO.
   * Returns null when the queue is full (`kvm_setup_async_pf` fails): the fault goes synchronous.
   */
  trySetup(vcpu: number, gfn: number): ApfSetup | null {
    this.events.kvm_try_async_get_page++;
    const q = this.#queue(vcpu);
    if (q.gfns.has(gfn)) {
      this.events.kvm_async_pf_repeated_fault++;
      return { kind: "halt", token: 0 };
    }
    if (q.queued >= ASYNC_PF_PER_VCPU) return null;
    const token = (++q.id << 12) | vcpu; // alloc_apf_token(): never 0
    q.queued++;
    q.gfns.add(gfn);
    this.events.kvm_async_pf_not_present++;
    void this.#o.kworkerGup(vcpu, gfn).finally(() => {
      this.events.kvm_async_pf_completed++;
      this.#o.completed(vcpu, token, gfn);
    });
    return { kind: this.#o.pv ? "not-present" : "halt", token };
  }

  /** `kvm_arch_async_page_present`: drop the gfn from the hash, `queued--`. */
  present(vcpu: number, gfn: number): void {
    const q = this.#queue(vcpu);
    if (q.gfns.delete(gfn)) q.queued--;
    this.events.kvm_async_pf_ready++;
  }

  queued(vcpu: number): number {
    return this.#queue(vcpu).queued;
  }

  #queue(vcpu: number): Queue {
    let q = this.#queues.get(vcpu);
    if (!q) this.#queues.set(vcpu, (q = { queued: 0, gfns: new Set(), id: 0 }));
    return q;
  }
}
