import { describe, expect, it } from "vitest";
import { PageSet } from "./page-set.ts";
import { prng } from "./random.ts";

describe("PageSet", () => {
  it("page set - add, has, delete and size behave as a Set", () => {
    const s = new PageSet();
    expect(s.add(5)).toBe(s);
    s.add(5).add(6).add(8);
    expect(s.size).toBe(3);
    expect([s.has(4), s.has(5), s.has(6), s.has(7), s.has(8)]).toEqual([false, true, true, false, true]);
    expect(s.delete(7)).toBe(false);
    expect(s.delete(6)).toBe(true);
    expect(s.delete(6)).toBe(false);
    expect([...s]).toEqual([5, 8]);
    expect(s.size).toBe(2);
  });

  it("page set - adjacent pages coalesce into one range, a hole splits it", () => {
    const s = new PageSet([3, 1, 2, 5, 4]);
    expect([...s.ranges()]).toEqual([[1, 6]]);
    s.delete(3);
    expect([...s.ranges()]).toEqual([[1, 3], [4, 6]]);
    s.add(3);
    expect(s.rangeCount).toBe(1);
  });

  it("page set - a 256 GiB range is one range, and has/delete work inside it", () => {
    const pages = (256 * 2 ** 30) / 4096;
    const s = PageSet.fromRanges([[0, pages]]);
    expect(s.size).toBe(pages);
    expect(s.rangeCount).toBe(1);
    expect(s.has(pages - 1)).toBe(true);
    expect(s.has(pages)).toBe(false);
    expect(s.delete(12345)).toBe(true);
    expect(s.size).toBe(pages - 1);
    expect([...s.ranges()]).toEqual([[0, 12345], [12346, pages]]);
  });

  it("page set - addRange and deleteRange return the pages they changed", () => {
    const s = PageSet.fromRanges([[10, 20], [30, 40]]);
    expect(s.addRange(15, 35)).toBe(10); // 20..30
    expect([...s.ranges()]).toEqual([[10, 40]]);
    expect(s.addRange(12, 18)).toBe(0);
    expect(s.deleteRange(0, 5)).toBe(0);
    expect(s.deleteRange(12, 14)).toBe(2);
    expect(s.deleteRange(5, 100)).toBe(28);
    expect(s.size).toBe(0);
    expect(s.addRange(7, 7)).toBe(0);
  });

  it("page set - rangesWithin clips the ranges to the window", () => {
    const s = PageSet.fromRanges([[0, 10], [20, 30], [40, 50]]);
    expect([...s.rangesWithin(5, 45)]).toEqual([[5, 10], [20, 30], [40, 45]]);
    expect([...s.rangesWithin(10, 20)]).toEqual([]);
    expect([...s.rangesWithin(22, 25)]).toEqual([[22, 25]]);
  });

  it("page set - random operations agree with a plain Set (differential, seeded)", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = prng(seed);
      const span = 10 + Math.floor(rnd() * 300);
      const s = new PageSet();
      const ref = new Set<number>();
      for (let op = 0; op < 2000; op++) {
        const a = Math.floor(rnd() * span);
        const b = a + Math.floor(rnd() * 20);
        const k = rnd();
        if (k < 0.3) {
          expect(s.has(a)).toBe(ref.has(a));
          s.add(a);
          ref.add(a);
        } else if (k < 0.55) expect(s.delete(a)).toBe(ref.delete(a));
        else if (k < 0.8) {
          let n = 0;
          for (let g = a; g < b; g++) if (!ref.has(g) && ref.add(g)) n++;
          expect(s.addRange(a, b)).toBe(n);
        } else {
          let n = 0;
          for (let g = a; g < b; g++) if (ref.delete(g)) n++;
          expect(s.deleteRange(a, b)).toBe(n);
        }
        expect(s.size).toBe(ref.size);
      }
      const sorted = [...ref].sort((x, y) => x - y);
      expect([...s]).toEqual(sorted);
      for (let g = -1; g <= span + 20; g++) expect(s.has(g)).toBe(ref.has(g));
      // ranges are disjoint, non-adjacent, ascending, and cover exactly the members
      const rs = [...s.ranges()];
      rs.forEach(([a, b], i) => {
        expect(b).toBeGreaterThan(a);
        if (i > 0) expect(a).toBeGreaterThan(rs[i - 1]![1]);
      });
      expect(rs.flatMap(([a, b]) => Array.from({ length: b - a }, (_, i) => a + i))).toEqual(sorted);
    }
  });
});
