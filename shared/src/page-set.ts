/**
 * A set of guest frame numbers kept as sorted, disjoint, non-adjacent half-open ranges
 * [start, end), in a B+ tree keyed by `start`. Memory grows with the number of ranges, not pages:
 * a 256 GiB memslot populated write-protected is one range. `has`, `add` and `delete` are
 * O(log ranges); `addRange` and `deleteRange` are O(log ranges + ranges they cover).
 *
 * It has the `Set<number>` surface the fault path uses (has/add/delete/size/iteration), so a
 * per-page structure can switch to it without changing its callers.
 */
import { createRequire } from "node:module";
import type BTreeModule from "sorted-btree";

// sorted-btree is CommonJS with the class as `exports.default`: load it the same way under Node and Vitest
const { default: BTree } = createRequire(import.meta.url)("sorted-btree") as typeof BTreeModule;
type Tree = BTreeModule.default<number, number>;

/** A half-open gfn range [start, end). */
export type GfnRange = readonly [start: number, end: number];

const cmp = (a: number, b: number): number => a - b;

export class PageSet implements Iterable<number> {
  /** start → end (exclusive) */
  readonly #tree: Tree = new BTree<number, number>(undefined, cmp);
  #size = 0;

  constructor(gfns?: Iterable<number>) {
    if (gfns) for (const g of gfns) this.add(g);
  }

  /** A set holding every page of the given ranges (they may overlap or touch). */
  static fromRanges(ranges: Iterable<GfnRange>): PageSet {
    const s = new PageSet();
    for (const [a, b] of ranges) s.addRange(a, b);
    return s;
  }

  /** Pages in the set. */
  get size(): number {
    return this.#size;
  }

  /** Disjoint ranges that hold the pages (the memory the set takes is proportional to this). */
  get rangeCount(): number {
    return this.#tree.size;
  }

  has(gfn: number): boolean {
    const p = this.#tree.getPairOrNextLower(gfn);
    return p !== undefined && gfn < p[1];
  }

  add(gfn: number): this {
    this.addRange(gfn, gfn + 1);
    return this;
  }

  /** Removes one page; true if it was there. */
  delete(gfn: number): boolean {
    return this.deleteRange(gfn, gfn + 1) > 0;
  }

  /** Adds every page of [start, end); returns how many were not there before. */
  addRange(start: number, end: number): number {
    if (!(end > start)) return 0;
    let lo = start;
    let hi = end;
    // a range that starts before `start` and reaches it (overlapping or adjacent) is merged
    const before = this.#tree.getPairOrNextLower(start);
    if (before && before[1] >= start) {
      if (before[1] >= end) return 0; // already covered
      lo = before[0];
    }
    // every range starting in [lo, end] is swallowed (touching at `end` merges too)
    let covered = 0;
    const swallowed: number[] = [];
    this.#tree.forRange(lo, hi, true, (a, b) => {
      swallowed.push(a);
      covered += b - a;
      if (b > hi) hi = b;
    });
    for (const a of swallowed) this.#tree.delete(a);
    this.#tree.set(lo, hi);
    const added = hi - lo - covered;
    this.#size += added;
    return added;
  }

  /** Removes every page of [start, end); returns how many were there. */
  deleteRange(start: number, end: number): number {
    if (!(end > start) || this.#size === 0) return 0;
    let removed = 0;
    const before = this.#tree.getPairOrNextLower(start);
    if (before && before[0] < start && before[1] > start) {
      // a range straddling `start`: keep its head, and its tail past `end`
      const [a, b] = before;
      this.#tree.set(a, start);
      if (b > end) {
        this.#tree.set(end, b);
        this.#size -= end - start;
        return end - start;
      }
      removed += b - start;
    }
    let tail: GfnRange | null = null;
    const gone: number[] = [];
    this.#tree.forRange(start, end, false, (a, b) => {
      gone.push(a);
      if (b > end) {
        tail = [end, b];
        removed += end - a;
      } else removed += b - a;
    });
    for (const a of gone) this.#tree.delete(a);
    if (tail) this.#tree.set(tail[0], tail[1]);
    this.#size -= removed;
    return removed;
  }

  clear(): void {
    this.#tree.clear();
    this.#size = 0;
  }

  /** The ranges, ascending. */
  *ranges(): IterableIterator<GfnRange> {
    for (const [a, b] of this.#tree.entries()) yield [a, b];
  }

  /** The parts of the set's ranges that fall inside [start, end), ascending. */
  *rangesWithin(start: number, end: number): IterableIterator<GfnRange> {
    if (end <= start) return;
    const before = this.#tree.getPairOrNextLower(start);
    if (before && before[0] < start && before[1] > start) yield [start, Math.min(before[1], end)];
    for (const [a, b] of this.#tree.entries(start)) {
      if (a >= end) return;
      yield [a, Math.min(b, end)];
    }
  }

  /** The pages, ascending. */
  *[Symbol.iterator](): IterableIterator<number> {
    for (const [a, b] of this.#tree.entries()) for (let g = a; g < b; g++) yield g;
  }

  /** The pages, ascending (as `Set.prototype.values`). */
  values(): IterableIterator<number> {
    return this[Symbol.iterator]();
  }
}
