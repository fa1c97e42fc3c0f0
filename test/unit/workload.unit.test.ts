import { describe, expect, it } from "vitest";
import { guestGfns, parseScenario, prng, shuffle, SITES, type Scenario } from "@faultline/shared";
import { BUILD_SLICE, Workload, buildWorkload } from "../../services/vcpu/src/workload.ts";

/** The one-object-per-access build the compact one replaces: every vCPU's pages from a walk over all gfns. */
function reference(s: Scenario, vcpu: number) {
  const per = s.workload.pagesPerVcpu;
  const all: number[] = [];
  for (const g of guestGfns(s.vm.memslots)) if (all.push(g) >= s.vm.vcpus * per) break;
  const gfns = all.slice(vcpu * per, (vcpu + 1) * per);
  const rnd = prng(s.seed * 7919 + vcpu);
  if (s.workload.pattern === "random") shuffle(gfns, rnd);
  const spec = s.workload.site;
  const srnd = prng(s.seed * 104729 + vcpu);
  const entries = typeof spec === "string" ? [] : SITES.flatMap((k) => (spec[k] ? [[k, spec[k]] as const] : []));
  const total = entries.reduce((n, [, w]) => n + w, 0);
  const site = () => {
    if (typeof spec === "string") return spec;
    let x = srnd() * total;
    for (const [k, w] of entries) if ((x -= w) < 0) return k;
    return entries.at(-1)![0];
  };
  const cpl = prng(s.seed * 15_485_863 + vcpu);
  return gfns.map((gfn) => ({ gfn, write: rnd() < s.workload.writeRatio, site: site(), user: cpl() < s.workload.userModeShare }));
}

const slots = [{ slot: 0, gpa: 0, size: 3 * 4096 * 1000 }, { slot: 1, gpa: 1 << 30, size: "16MiB" }, { slot: 2, gpa: 2 ** 31, size: "64MiB" }];

describe("workload", () => {
  it("workload - the compact build makes the same accesses as the per-object build (patterns, slots, site mixes)", () => {
    const cases = [
      { vm: { vcpus: 4, memslots: slots }, workload: { pagesPerVcpu: 2000, pattern: "sequential", writeRatio: 0.3 } },
      { vm: { vcpus: 3, memslots: slots }, workload: { pagesPerVcpu: 1500, pattern: "random", writeRatio: 0.5, userModeShare: 0.25, site: { tdp: 0.7, emulated: 0.2, "pfn-cache": 0.1 } } },
      { seed: 9, vm: { vcpus: 2 }, workload: { pagesPerVcpu: 5, pattern: "random", site: "nested-map" } },
    ];
    for (const c of cases) {
      const s = parseScenario(c);
      for (let v = 0; v < s.vm.vcpus; v++) expect(buildWorkload(s, v).toArray()).toEqual(reference(s, v));
    }
  });

  it("workload - each access carries the guest's CPL: userModeShare 0 is all CPL0, 1 all CPL3, the default about half; the other draws do not move", () => {
    const of = (userModeShare?: number) => buildWorkload(parseScenario({ workload: { pagesPerVcpu: 1000, writeRatio: 0.5, ...(userModeShare === undefined ? {} : { userModeShare }) } }), 0).toArray();
    expect(of(0).every((a) => !a.user)).toBe(true);
    expect(of(1).every((a) => a.user)).toBe(true);
    const half = of().filter((a) => a.user).length;
    expect(half).toBeGreaterThan(400);
    expect(half).toBeLessThan(600);
    expect(of(0).map((a) => a.write)).toEqual(of(1).map((a) => a.write));
  });

  it("workload - a vCPU's partition crosses memslot boundaries in slot order", () => {
    const s = parseScenario({ vm: { vcpus: 2, memslots: [{ slot: 0, gpa: 0, size: 3 * 4096 }, { slot: 1, gpa: 100 * 4096, size: 3 * 4096 }] }, workload: { pagesPerVcpu: 3 } });
    expect([...buildWorkload(s, 1).gfns]).toEqual([100, 101, 102]);
    const s2 = parseScenario({ vm: { vcpus: 2, memslots: [{ slot: 0, gpa: 0, size: 4 * 4096 }, { slot: 1, gpa: 100 * 4096, size: 4 * 4096 }] }, workload: { pagesPerVcpu: 3 } });
    expect([...buildWorkload(s2, 1).gfns]).toEqual([3, 100, 101]);
  });

  it("workload - a large build completes in slices with turns of the event loop between them, same result as at once", async () => {
    const s = parseScenario({ vm: { vcpus: 2, memslots: [{ slot: 0, size: "1GiB" }] }, workload: { pagesPerVcpu: 3 * BUILD_SLICE + 5, pattern: "random", writeRatio: 0.4 } });
    const w = new Workload(s, 1);
    expect(w.built).toBe(false);
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const slices: number[] = [];
    const watch = (async () => {
      while (!w.built) {
        slices.push(turns);
        await new Promise((r) => setImmediate(r));
      }
    })();
    await w.ready();
    await watch;
    clearInterval(ticker);
    expect(w.built).toBe(true);
    expect(slices.length).toBeGreaterThanOrEqual(6); // fill + shuffle + flags, each 3+ slices
    const atOnce = new Workload(s, 1);
    expect(atOnce.gfn(0)).toBe(w.gfn(0)); // a sync accessor finishes the build
    expect(atOnce.built).toBe(true);
    expect([...atOnce.gfns]).toEqual([...w.gfns]);
    expect([...atOnce.flags]).toEqual([...w.flags]);
  });

  it("workload - 9 bytes an access, whatever the vCPU count", () => {
    const s = parseScenario({ vm: { vcpus: 256, memslots: [{ slot: 0, size: "1GiB" }] }, workload: { pagesPerVcpu: 1024 } });
    const w = buildWorkload(s, 255);
    expect(w.gfns.byteLength + w.flags.byteLength).toBe(9 * 1024);
    expect(w.gfn(0)).toBe(255 * 1024);
    expect(w.at(1024)).toBeUndefined();
  });
});
