/**
 * The VM's memslots and `KVM_SET_USER_MEMORY_REGION` while vCPUs run (virt/kvm/kvm_main.c
 * `kvm_set_memslot`). Every change publishes a new memslot set with `kvm_swap_active_memslots`,
 * which waits in `synchronize_srcu_expedited(&kvm->srcu)` for the vCPUs inside a fault:
 *  - create: the new slot is published, then one grace period (`kvm_activate_memslot`);
 *  - delete / move: the old slot is published KVM_MEMSLOT_INVALID (faults on it get RET_PF_RETRY)
 *    and a grace period passes (`kvm_invalidate_memslot`); its SPTEs are zapped
 *    (`kvm_arch_flush_shadow_memslot`); the slot is removed or moved and a second grace period passes.
 * A region that does not change returns at once, without a grace period.
 */
import { checkMemslotOp, layoutOf, type Memslot, type MemslotOpInput } from "@faultline/shared";

export interface Slot {
  id: number;
  baseGfn: number;
  npages: number;
  readonly: boolean;
  /** KVM_MEMSLOT_INVALID: a delete or move is in progress */
  invalid: boolean;
}

export class Memslots {
  readonly #slots: Slot[];
  /** `slots_lock`: the end of the queue of ops in flight, null when none is */
  #tail: Promise<void> | null = null;

  constructor(memslots: readonly Memslot[]) {
    this.#slots = layoutOf(memslots).map((s) => ({ ...s, invalid: false }));
  }

  /** `__gfn_to_memslot` */
  find(gfn: number): Slot | undefined {
    return this.#slots.find((s) => gfn >= s.baseGfn && gfn < s.baseGfn + s.npages);
  }

  /** The gfn range [start, end) of each slot, in slot order. */
  ranges(): Array<readonly [number, number]> {
    return this.#slots.map((s) => [s.baseGfn, s.baseGfn + s.npages] as const);
  }

  /**
   * `kvm_set_memory_region`: takes `slots_lock` (ops run one at a time, in call order), checks the op
   * as `__kvm_set_memory_region` does (a KvmErrnoError naming `<path>/<field>` with KVM's errno;
   * nothing changes), then applies it. `path` points at the op in its message (`MemslotReq.op`). `zap`
   * is called with the gfn range [start, end) whose SPTEs must go (and bumps the invalidation
   * sequence); `synchronize` is `synchronize_srcu_expedited(&kvm->srcu)`.
   */
  apply(op: MemslotOpInput, zap: (start: number, end: number) => void | Promise<void>, synchronize: () => Promise<void>, path = "/op"): Promise<void> {
    const run = this.#tail ? this.#tail.then(() => this.#apply(op, zap, synchronize, path)) : this.#apply(op, zap, synchronize, path);
    const tail = run.catch(() => undefined);
    this.#tail = tail;
    void tail.then(() => {
      if (this.#tail === tail) this.#tail = null;
    });
    return run;
  }

  async #apply(op: MemslotOpInput, zap: (start: number, end: number) => void | Promise<void>, synchronize: () => Promise<void>, path: string): Promise<void> {
    const c = checkMemslotOp(this.#slots, op, "memslot op", path);
    if (c.change === "none") return;
    if (c.change === "KVM_MR_CREATE") {
      // kvm_create_memslot → kvm_activate_memslot → kvm_swap_active_memslots
      this.#slots.push({ ...c.slot, invalid: false });
      await synchronize();
      return;
    }
    // KVM_MR_DELETE / KVM_MR_MOVE: kvm_invalidate_memslot publishes the INVALID slot and waits ...
    const old = this.#slots.find((s) => s.id === c.id)!;
    old.invalid = true;
    await synchronize();
    // ... then kvm_arch_flush_shadow_memslot
    await zap(old.baseGfn, old.baseGfn + old.npages);
    // kvm_delete_memslot / kvm_move_memslot → kvm_activate_memslot: a second swap, a second grace period
    if (c.change === "KVM_MR_DELETE") this.#slots.splice(this.#slots.indexOf(old), 1);
    else {
      old.baseGfn = c.baseGfn;
      old.invalid = false;
    }
    await synchronize();
  }
}
