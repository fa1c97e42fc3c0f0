/**
 * The VM's memslots and `KVM_SET_USER_MEMORY_REGION` while vCPUs run (virt/kvm/kvm_main.c
 * `kvm_set_memslot`): a delete or move first marks the old slot KVM_MEMSLOT_INVALID (faults on it
 * get RET_PF_RETRY) and zaps its SPTEs (`kvm_arch_flush_shadow_memslot`), then, once SRCU readers
 * are done (`synchronize_srcu_expedited`, modelled as MEMSLOT_UPDATE_MS), installs the new set.
 */
import { PAGE_SIZE, parseSize, type Memslot, type MemslotOp } from "@faultline/shared";

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

  constructor(memslots: readonly Memslot[]) {
    this.#slots = memslots.map((m) => ({
      id: m.slot, baseGfn: m.gpa / PAGE_SIZE, npages: parseSize(m.size) / PAGE_SIZE, readonly: m.readonly ?? false, invalid: false,
    }));
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
   * Applies a change. `zap` is called with the gfn range [start, end) whose SPTEs must go (and bumps
   * the invalidation sequence); `wait` models the SRCU grace period.
   */
  async apply(op: MemslotOp, zap: (start: number, end: number) => void | Promise<void>, wait: (ms: number) => Promise<void>): Promise<void> {
    const i = this.#slots.findIndex((s) => s.id === op.slot);
    const old = this.#slots[i];
    if (op.op === "add") {
      if (old) throw new Error(`memslot ${op.slot} exists`);
      this.#slots.push({ id: op.slot, baseGfn: op.gpa! / PAGE_SIZE, npages: parseSize(op.size!) / PAGE_SIZE, readonly: op.readonly ?? false, invalid: false });
      return;
    }
    if (!old) throw new Error(`memslot ${op.slot} does not exist`);
    const [start, end] = [old.baseGfn, old.baseGfn + old.npages];
    if (op.op === "flags") {
      // a flags-only change: no INVALID window; zap so the new protection takes effect
      old.readonly = op.readonly ?? old.readonly;
      await zap(start, end);
      return;
    }
    old.invalid = true;
    await zap(start, end);
    await wait(MEMSLOT_UPDATE_MS);
    if (op.op === "delete") this.#slots.splice(this.#slots.indexOf(old), 1);
    else {
      old.baseGfn = op.gpa! / PAGE_SIZE;
      old.invalid = false;
    }
  }
}
