/**
 * Guest workloads, as memstress in demand_paging_test: each vCPU touches every page of its own
 * partition once (`pagesPerVcpu` pages, partitioned, not overlapped), in order or in a seeded
 * random order; each access is a write with probability `writeRatio`.
 */
import { SITES, guestGfns, prng, shuffle, type Scenario, type Site } from "@faultline/shared";

export interface Access {
  gfn: number;
  write: boolean;
  /** where this access meets KVM (model.md §3) */
  site: Site;
}

/** A site drawer: the scenario's one site, or a seeded draw from its mix. */
function siteDrawer(s: Scenario, rnd: () => number): () => Site {
  const spec = s.workload.site;
  if (typeof spec === "string") return () => spec;
  const entries = SITES.flatMap((k) => (spec[k] ? [[k, spec[k]] as const] : []));
  const total = entries.reduce((n, [, w]) => n + w, 0);
  return () => {
    let x = rnd() * total;
    for (const [k, w] of entries) if ((x -= w) < 0) return k;
    return entries.at(-1)![0];
  };
}

/** The first `n` gfns of the memslots, in slot order. */
function guestPages(s: Scenario, n: number): number[] {
  const out: number[] = [];
  for (const g of guestGfns(s.vm.memslots)) {
    if (out.length >= n) break;
    out.push(g);
  }
  return out;
}

export function buildWorkload(s: Scenario, vcpu: number): Access[] {
  const per = s.workload.pagesPerVcpu;
  const gfns = guestPages(s, s.vm.vcpus * per).slice(vcpu * per, (vcpu + 1) * per);
  const rnd = prng(s.seed * 7919 + vcpu);
  if (s.workload.pattern === "random") shuffle(gfns, rnd);
  const site = siteDrawer(s, prng(s.seed * 104729 + vcpu));
  return gfns.map((gfn) => ({ gfn, write: rnd() < s.workload.writeRatio, site: site() }));
}
