/**
 * The uffd contexts' wait-queue locks, as a model (model parameters, not measurements): a fault's
 * enqueue on `fault_pending_wqh` and the `wake_up_poll` of every reader thread (each then takes the
 * lock to `read()`), and UFFDIO_COPY's `__wake_up(&ctx->fault_wqh)`, which walks every waiter of the
 * context under the lock. One context for all vCPUs (`single`, demand_paging_test -a) or one per
 * vCPU's region (`per-vcpu`). All costs zero: nothing is modelled and nothing is delayed.
 */
import { ModelledLock, type Scenario } from "@faultline/shared";

export interface UffdTopology {
  layout: Scenario["pager"]["uffd"]["layout"];
  readers: number;
  lockMs: number;
  perWaiterMs: number;
}

export class WaitQueues {
  readonly #t: UffdTopology | undefined;
  readonly #locks = new Map<number, ModelledLock>();
  /** which context each page in flight belongs to (the first task that faulted on it) */
  readonly #ctxOfPage = new Map<number, number>();

  constructor(topology?: UffdTopology) {
    this.#t = topology;
  }

  /** The context a task's faults queue on; a kworker (-1) counts as vCPU 0's region here. */
  ctxOf(vcpu: number): number {
    return this.#t?.layout === "per-vcpu" ? Math.max(0, vcpu) : 0;
  }

  notePage(gfn: number, vcpu: number): void {
    if (!this.#ctxOfPage.has(gfn)) this.#ctxOfPage.set(gfn, this.ctxOf(vcpu));
  }

  /** handle_userfault's enqueue, then every reader woken by wake_up_poll takes the lock. */
  async enqueue(vcpu: number, gfn: number): Promise<void> {
    this.notePage(gfn, vcpu);
    const t = this.#t;
    if (!t || t.lockMs <= 0) return;
    const lock = this.#lock(this.ctxOf(vcpu));
    await lock.hold(t.lockMs);
    await lock.hold(t.lockMs * t.readers);
  }

  /**
   * Runs `wake` for a filled page under its context's lock, held for the walk over the context's
   * waiters (`waitersOnCtx(ctxOf)` counts them); at once when nothing is modelled.
   */
  wake(gfn: number, waitersOnCtx: (onCtx: (vcpu: number) => boolean) => number, wake: () => void): void {
    const ctx = this.#ctxOfPage.get(gfn) ?? 0;
    this.#ctxOfPage.delete(gfn);
    const t = this.#t;
    const cost = t ? t.lockMs + t.perWaiterMs * waitersOnCtx((v) => this.ctxOf(v) === ctx) : 0;
    if (cost > 0) void this.#lock(ctx).hold(cost).then(wake);
    else wake();
  }

  /** total modelled lock hold time over all contexts, ms */
  heldMs(): number {
    let ms = 0;
    for (const l of this.#locks.values()) ms += l.heldMs;
    return ms;
  }

  #lock(ctx: number): ModelledLock {
    let l = this.#locks.get(ctx);
    if (!l) this.#locks.set(ctx, (l = new ModelledLock()));
    return l;
  }
}
