/**
 * The checks of `KVM_SET_USER_MEMORY_REGION` (virt/kvm/kvm_main.c `__kvm_set_memory_region`), one
 * copy for the three places that apply memslot ops: scenario parsing (which simulates the layout
 * through `vm.memslotOps` in time order), the API (before it sends a live op) and the MMU (which
 * holds the real layout). A field the op needs but lacks is a ValidationError; what the ioctl
 * itself would refuse is a KvmErrnoError with KVM's errno:
 *  - a size or gpa not page aligned, or a region that wraps or is too large  → -EINVAL
 *  - deleting (memory_size 0) a slot that does not exist                     → -EINVAL
 *  - changing an existing slot's size or KVM_MEM_READONLY                    → -EINVAL
 *  - creating or moving a slot onto another (`kvm_check_memslot_overlap`)    → -EEXIST
 * `path` arguments are JSON pointers to the op; the errors name `<path>/<field>`.
 */
import { KvmErrnoError, ValidationError } from "./errors.ts";
import { PAGE_SIZE } from "./kernel.ts";
import { parseSize } from "./scenario.ts";
import type { Memslot, MemslotOp } from "./schemas/scenario.ts";

import { KVM_MEM_MAX_NR_PAGES, MAX_GPA } from "./budget.ts";

/** One memslot as KVM keeps it: `base_gfn`, `npages`, KVM_MEM_READONLY. */
export interface SlotLayout {
  id: number;
  baseGfn: number;
  npages: number;
  readonly: boolean;
}

/**
 * What the ioctl does (`enum kvm_mr_change`), or nothing when the region is unchanged. No
 * KVM_MR_FLAGS_ONLY: KVM_MEM_READONLY, the only flag modelled, cannot change on an existing slot.
 */
export type MemslotChange =
  | { change: "KVM_MR_CREATE"; slot: SlotLayout }
  | { change: "KVM_MR_DELETE"; id: number }
  | { change: "KVM_MR_MOVE"; id: number; baseGfn: number }
  | { change: "none"; id: number };

/** An op as it arrives: sizes may still be strings such as `2MiB`; `atMs` is not needed here. */
export type MemslotOpInput = Omit<MemslotOp, "atMs"> & { atMs?: number };

const NEEDS: Record<MemslotOp["op"], { need: Array<"gpa" | "size" | "readonly">; allow: Array<"gpa" | "size" | "readonly"> }> = {
  // in the order the ioctl checks them: memory_size, then guest_phys_addr
  add: { need: ["size", "gpa"], allow: ["readonly"] },
  delete: { need: [], allow: [] },
  // the ioctl always carries size and flags; when given they must match the slot's (checked against the layout)
  move: { need: ["gpa"], allow: ["size", "readonly"] },
  flags: { need: ["readonly"], allow: ["size"] },
};

/**
 * The checks that need no layout: the fields the op needs, and the ioctl's general sanity checks.
 * Returns the size in bytes (undefined when the op has none).
 */
export function checkMemslotOpShape(op: MemslotOpInput, what: string, path: string): number | undefined {
  const rule = NEEDS[op.op];
  for (const f of rule.need) {
    if (op[f] === undefined) throw new ValidationError(what, `${path}/${f}`, `${op.op} needs ${f}`);
  }
  for (const f of ["size", "gpa", "readonly"] as const) {
    if (op[f] !== undefined && !rule.need.includes(f) && !rule.allow.includes(f)) {
      throw new ValidationError(what, `${path}/${f}`, `${op.op} takes no ${f}`);
    }
  }
  let bytes: number | undefined;
  if (op.size !== undefined) {
    try {
      bytes = parseSize(op.size);
    } catch {
      throw new ValidationError(what, `${path}/size`, `bad size ${String(op.size)}`);
    }
    if (bytes % PAGE_SIZE !== 0) throw einval(what, `${path}/size`, `memory_size ${bytes} is not a multiple of ${PAGE_SIZE}`);
    if (bytes === 0) throw new ValidationError(what, `${path}/size`, "must be positive (a size of 0 is a delete: use op delete)");
    if (bytes / PAGE_SIZE > KVM_MEM_MAX_NR_PAGES) throw einval(what, `${path}/size`, `${bytes / PAGE_SIZE} pages is more than KVM_MEM_MAX_NR_PAGES`);
  }
  if (op.gpa !== undefined) {
    if (op.gpa % PAGE_SIZE !== 0) throw einval(what, `${path}/gpa`, `guest_phys_addr ${op.gpa} is not page aligned`);
    if (!Number.isSafeInteger(op.gpa + (bytes ?? 0))) throw einval(what, `${path}/gpa`, "guest_phys_addr + memory_size wraps");
    // x86: base_gfn + npages - 1 > kvm_mmu_max_gfn() → -EINVAL (the same bound initial memslots get)
    if (op.gpa + (bytes ?? 0) > MAX_GPA) throw einval(what, `${path}/gpa`, `guest_phys_addr + memory_size is beyond the guest's physical address space (${MAX_GPA})`);
  }
  return bytes;
}

/** Shape checks, then what the op would do to `slots`; throws what `__kvm_set_memory_region` returns. */
export function checkMemslotOp(slots: readonly SlotLayout[], op: MemslotOpInput, what: string, path: string): MemslotChange {
  const bytes = checkMemslotOpShape(op, what, path);
  const npages = bytes === undefined ? undefined : bytes / PAGE_SIZE;
  const baseGfn = op.gpa === undefined ? undefined : op.gpa / PAGE_SIZE;
  const old = slots.find((s) => s.id === op.slot);
  if (op.op === "add") {
    if (old) throw einval(what, `${path}/slot`, `memslot ${op.slot} already exists; add creates a slot (KVM_MR_CREATE): delete it first, or use move`);
    const slot = { id: op.slot, baseGfn: baseGfn!, npages: npages!, readonly: op.readonly ?? false };
    checkOverlap(slots, slot, what, `${path}/gpa`);
    return { change: "KVM_MR_CREATE", slot };
  }
  if (!old) {
    const why = op.op === "delete" ? "deleting (memory_size 0) a slot that does not exist" : `${op.op} of a slot that does not exist`;
    throw einval(what, `${path}/slot`, `memslot ${op.slot} does not exist: ${why}`);
  }
  if (op.op === "delete") return { change: "KVM_MR_DELETE", id: old.id };
  if (npages !== undefined && npages !== old.npages) {
    throw einval(what, `${path}/size`, `memslot ${old.id} has ${old.npages} pages; an existing slot's size cannot change`);
  }
  if (op.readonly !== undefined && op.readonly !== old.readonly) {
    throw einval(what, `${path}/readonly`, `memslot ${old.id} is ${old.readonly ? "" : "not "}KVM_MEM_READONLY; an existing slot's KVM_MEM_READONLY cannot change`);
  }
  if (op.op === "move" && baseGfn !== old.baseGfn) {
    checkOverlap(slots, { ...old, baseGfn: baseGfn! }, what, `${path}/gpa`);
    return { change: "KVM_MR_MOVE", id: old.id, baseGfn: baseGfn! };
  }
  // flags: KVM_MEM_READONLY is the only flag modelled, and it cannot change, so nothing changes
  return { change: "none", id: old.id };
}

/** Applies a checked change to a plain layout (the simulation; the MMU applies its own with zaps). */
export function applyMemslotChange(slots: SlotLayout[], c: MemslotChange): void {
  if (c.change === "KVM_MR_CREATE") slots.push({ ...c.slot });
  else if (c.change === "KVM_MR_DELETE") slots.splice(slots.findIndex((s) => s.id === c.id), 1);
  else if (c.change === "KVM_MR_MOVE") slots.find((s) => s.id === c.id)!.baseGfn = c.baseGfn;
}

/** The layout of scenario memslots (sizes already checked). */
export function layoutOf(memslots: readonly Memslot[]): SlotLayout[] {
  return memslots.map((m) => ({ id: m.slot, baseGfn: m.gpa / PAGE_SIZE, npages: parseSize(m.size) / PAGE_SIZE, readonly: m.readonly ?? false }));
}

/**
 * Runs `ops` through the layout in time order (ties in document order, as the MMU's clock runs
 * them, one at a time under `slots_lock`); each op's errors name `<basePath>/<index>/<field>`.
 */
export function simulateMemslotOps(memslots: readonly Memslot[], ops: readonly MemslotOpInput[], what: string, basePath: string): SlotLayout[] {
  const slots = layoutOf(memslots);
  const order = ops.map((op, i) => ({ op, i })).sort((a, b) => (a.op.atMs ?? 0) - (b.op.atMs ?? 0) || a.i - b.i);
  for (const { op, i } of order) applyMemslotChange(slots, checkMemslotOp(slots, op, what, `${basePath}/${i}`));
  return slots;
}

/** `kvm_check_memslot_overlap`: any other slot sharing a gfn → -EEXIST. */
function checkOverlap(slots: readonly SlotLayout[], s: SlotLayout, what: string, path: string): void {
  const end = s.baseGfn + s.npages;
  const other = slots.find((o) => o.id !== s.id && s.baseGfn < o.baseGfn + o.npages && o.baseGfn < end);
  if (other) {
    const range = (a: number, n: number) => `[0x${(a * PAGE_SIZE).toString(16)}, 0x${((a + n) * PAGE_SIZE).toString(16)})`;
    throw new KvmErrnoError("EEXIST", what, path, `${range(s.baseGfn, s.npages)} overlaps memslot ${other.id} ${range(other.baseGfn, other.npages)}`);
  }
}

function einval(what: string, path: string, message: string): KvmErrnoError {
  return new KvmErrnoError("EINVAL", what, path, message);
}
