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
  /**
   * the guest enabled PV async PF (MSR_KVM_ASYNC_PF_EN): "page not present" can be injected, at CPL3
   * only (a Linux guest ≥5.8 does not set KVM_ASYNC_PF_SEND_ALWAYS; it is not modelled)
   */
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

/** What the guest was told (no KVM stat or tracepoint tells these apart: `kvm_async_pf_not_present` fires for both). */
export interface ApfDelivery {
  notPresentInjected: number;
  haltRequests: number;
  pageReadyInjected: number;
}

interface Queue {
  queued: number;
  /** outstanding gfn → `work->notpresent_injected` */
  gfns: Map<number, boolean>;
  id: number;
}

export class AsyncPf {
  readonly events: Record<ApfEvent, number> = Object.fromEntries(APF_EVENTS.map((e) => [e, 0])) as Record<ApfEvent, number>;
  readonly delivery: ApfDelivery = { notPresentInjected: 0, haltRequests: 0, pageReadyInjected: 0 };
  readonly #queues = new Map<number, Queue>();
  readonly #o: AsyncPfOptions;

  constructor(o: AsyncPfOptions) {
    this.#o = o;
  }

  /** `kvm_can_do_async_pf`: in-kernel LAPIC (always here), no pending exception (none modelled), IF=1. */
  canDo(): boolean {
    return this.#o.interruptsEnabled;
  }

  /** `kvm_can_deliver_async_pf`: PV enabled, and the guest not at CPL0 (no KVM_ASYNC_PF_SEND_ALWAYS). */
  canDeliver(user: boolean): boolean {
    return this.#o.pv && user;
  }

  /**
   * The async branch of `__kvm_mmu_faultin_pfn` after attempt 1 returned KVM_PFN_ERR_NEEDS_IO;
   * `user`: the guest was at CPL3. Returns null when the queue is full (`kvm_setup_async_pf`
   * fails): the fault goes synchronous.
   */
  trySetup(vcpu: number, gfn: number, user: boolean): ApfSetup | null {
    this.events.kvm_try_async_get_page++;
    const q = this.#queue(vcpu);
    if (q.gfns.has(gfn)) {
      this.events.kvm_async_pf_repeated_fault++;
      this.delivery.haltRequests++;
      return { kind: "halt", token: 0 };
    }
    if (q.queued >= ASYNC_PF_PER_VCPU) return null;
    const token = (++q.id << 12) | vcpu; // alloc_apf_token(): never 0
    q.queued++;
    // kvm_arch_async_page_not_present: the tracepoint fires whether or not the guest hears of it;
    // not deliverable → KVM_REQ_APF_HALT (the work item is set up and the kworker runs all the same)
    this.events.kvm_async_pf_not_present++;
    const injected = this.canDeliver(user);
    q.gfns.set(gfn, injected);
    if (injected) this.delivery.notPresentInjected++;
    else this.delivery.haltRequests++;
    void this.#o.kworkerGup(vcpu, gfn).finally(() => {
      this.events.kvm_async_pf_completed++;
      this.#o.completed(vcpu, token, gfn);
    });
    return { kind: injected ? "not-present" : "halt", token };
  }

  /**
   * `kvm_arch_async_page_present`: drop the gfn from the hash, `queued--`; "page ready" is injected
   * only for an item whose "page not present" was (`work->notpresent_injected`).
   */
  present(vcpu: number, gfn: number): void {
    const q = this.#queue(vcpu);
    const injected = q.gfns.get(gfn);
    if (q.gfns.delete(gfn)) q.queued--;
    if (injected && this.#o.pv) this.delivery.pageReadyInjected++;
    this.events.kvm_async_pf_ready++;
  }

  queued(vcpu: number): number {
    return this.#queue(vcpu).queued;
  }

  #queue(vcpu: number): Queue {
    let q = this.#queues.get(vcpu);
    if (!q) this.#queues.set(vcpu, (q = { queued: 0, gfns: new Map(), id: 0 }));
    return q;
  }
}
