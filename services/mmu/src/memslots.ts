/**
 * The VM's memslots and `KVM_SET_USER_MEMORY_REGION` while vCPUs run (virt/kvm/kvm_main.c
 * `kvm_set_memslot`): a delete or move first marks the old slot KVM_MEMSLOT_INVALID (faults on it
 * get RET_PF_RETRY) and zaps its SPTEs (`kvm_arch_flush_shadow_memslot`), then, once SRCU readers
 * are done (`synchronize_srcu_expedited`, modelled as MEMSLOT_UPDATE_MS), installs the new set.
 */
import { checkMemslotOp, layoutOf, type Memslot, type MemslotOpInput } from "@faultline/shared";

/** Modelled time between marking a slot invalid and installing the new memslots. */
export const MEMSLOT_UPDATE_MS = 2;

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
   * nothing changes), then applies it. `path` points at the op in its message (`MemslotReq.op`). `zap` is called with the gfn range [start, end) whose SPTEs must go
   * (and bumps the invalidation sequence); `wait` models the SRCU grace period.
   */
  apply(op: MemslotOpInput, zap: (start: number, end: number) => void | Promise<void>, wait: (ms: number) => Promise<void>, path = "/op"): Promise<void> {
    const run = this.#tail ? this.#tail.then(() => this.#apply(op, zap, wait, path)) : this.#apply(op, zap, wait, path);
    const tail = run.catch(() => undefined);
    this.#tail = tail;
    void tail.then(() => {
      if (this.#tail === tail) this.#tail = null;
    });
    return run;
  }

  async #apply(op: MemslotOpInput, zap: (start: number, end: number) => void | Promise<void>, wait: (ms: number) => Promise<void>, path: string): Promise<void> {
    const c = checkMemslotOp(this.#slots, op, "memslot op", path);
    if (c.change === "none") return;
    if (c.change === "KVM_MR_CREATE") {
      this.#slots.push({ ...c.slot, invalid: false });
      return;
    }
    // KVM_MR_DELETE / KVM_MR_MOVE: kvm_invalidate_memslot, then kvm_arch_flush_shadow_memslot
    const old = this.#slots.find((s) => s.id === c.id)!;
    old.invalid = true;
    await zap(old.baseGfn, old.baseGfn + old.npages);
    await wait(MEMSLOT_UPDATE_MS);
    if (c.change === "KVM_MR_DELETE") this.#slots.splice(this.#slots.indexOf(old), 1);
    else {
      old.baseGfn = c.baseGfn;
      old.invalid = false;
    }
  }
}
