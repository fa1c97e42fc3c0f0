/**
 * Guest workloads, as memstress in demand_paging_test: each vCPU touches every page of its own
 * partition once (`pagesPerVcpu` pages, partitioned, not overlapped), in order or in a seeded
 * random order; each access is a write with probability `writeRatio`, and made at CPL3 (guest user
 * mode) with probability `userModeShare`, else at CPL0.
 *
 * Stored compactly (9 bytes an access: a Float64Array of gfns and a Uint8Array of flags), and
 * built in time linear in the vCPU's own pages: its partition is computed from the memslot ranges,
 * the other vCPUs' pages are never materialised. A large build runs in slices of BUILD_SLICE
 * accesses, one slice per turn of the event loop for the whole process (one queue, oldest first:
 * `ready()`), so setting up 256 vCPUs never blocks the service's event loop for long.
 *
 * Beyond memstress: `zipf`, `hotset` (`accessesPerVcpu` accesses over the partition, pages may
 * repeat), `strided` (every page once, in strides) and `trace` (a program's page sequence, one
 * access per run of consecutive accesses to a page: the rest of a run hits the mapped page with no
 * exit, and counts only in the guest compute time), orders from patterns.ts; the write flag of a
 * trace access is the trace's own.
 */
import { SITES, guestRanges, prng, type FaultReq, type Scenario, type Site } from "@faultline/shared";
import { distinct, hotsetPages, stridedPages, tracePages, zipfPages } from "./patterns.ts";

/** One guest access: the page, read or write, the guest's CPL, and where it meets KVM (the FaultReq it may become). */
export type Access = Pick<FaultReq, "gfn" | "write" | "site" | "user">;

/** Accesses built per slice between two turns of the event loop (about a millisecond of work). */
export const BUILD_SLICE = 32_768;
/** Workloads up to this size are built at once, synchronously. */
const BUILD_AT_ONCE = 256;

const WRITE = 1;
/** the access is made at CPL3 */
const USER = 2;
/** the SITES index sits above the write and user bits */
const SITE_SHIFT = 2;

/** Builds waiting for slices, oldest first; one slice runs per turn of the event loop. */
const queue: Array<() => boolean> = [];
let pumping = false;

function pump(): void {
  const next = queue[0];
  if (!next) {
    pumping = false;
    return;
  }
  let done = true;
  try {
    done = next();
  } catch {
    /* the slice's own build rejects its ready(); the queue goes on */
  }
  if (done) queue.shift();
  setImmediate(pump);
}

/** Queues a build; `slice` runs one slice and returns true once the build is complete. */
function schedule(slice: () => boolean): void {
  queue.push(slice);
  if (!pumping) {
    pumping = true;
    setImmediate(pump);
  }
}

/** A site drawer: the scenario's one site, or a seeded draw from its mix; returns an index into SITES. */
function siteDrawer(s: Scenario, rnd: () => number): () => number {
  const spec = s.workload.site;
  if (typeof spec === "string") {
    const only = SITES.indexOf(spec);
    return () => only;
  }
  const entries = SITES.flatMap((k, i) => (spec[k] ? [[i, spec[k]] as const] : []));
  const total = entries.reduce((n, [, w]) => n + w, 0);
  return () => {
    let x = rnd() * total;
    for (const [i, w] of entries) if ((x -= w) < 0) return i;
    return entries.at(-1)![0];
  };
}

/** One vCPU's accesses, in the order the guest makes them. */
export class Workload implements Iterable<Access> {
  readonly length: number;
  #gfns = new Float64Array(0);
  #flags = new Uint8Array(0);
  #steps: Generator<void> | null;
  #ready: Promise<void> | null = null;
  /** set when the VM is torn down: a queued build stops taking slices */
  cancelled = false;

  /** guest compute time per access (µs), `workload.computeUs` */
  readonly computeUs: number;
  #weights: Uint32Array | null = null;
  #distinct: number;

  constructor(s: Scenario, vcpu: number) {
    const w = s.workload;
    const per = w.pagesPerVcpu;
    this.length =
      w.pattern === "trace" ? w.trace!.runs!.length / 3 : w.pattern === "zipf" || w.pattern === "hotset" ? (w.accessesPerVcpu ?? per) : per;
    this.#distinct = per;
    this.computeUs = w.computeUs;
    this.#steps = this.#build(s, vcpu);
    if (this.length <= BUILD_AT_ONCE) this.#finish();
  }

  /** true once every access is in place */
  get built(): boolean {
    return this.#steps === null;
  }

  /** Completes the build in slices, queued behind the builds asked for before it. */
  ready(): Promise<void> {
    if (this.#steps === null) return Promise.resolve();
    this.#ready ??= new Promise<void>((resolve, reject) =>
      schedule(() => {
        if (this.cancelled) return true; // the VM was torn down: drop the rest of the build
        try {
          if (this.#steps?.next().done) this.#steps = null;
        } catch (err) {
          this.#steps = null;
          reject(err);
          return true;
        }
        if (this.#steps === null) resolve(); // done here, or finished synchronously by an accessor
        return this.#steps === null;
      }),
    );
    return this.#ready;
  }

  /** every access's gfn */
  get gfns(): Float64Array {
    this.#finish();
    return this.#gfns;
  }

  /** every access's flags: bit 0 write, bit 1 user mode (CPL3), bits 2–7 an index into SITES */
  get flags(): Uint8Array {
    this.#finish();
    return this.#flags;
  }

  /** distinct pages the accesses touch */
  get distinctPages(): number {
    this.#finish();
    return this.#distinct;
  }

  /** guest accesses access `i` stands for (a trace's run of accesses to one page; else 1) */
  weight(i: number): number {
    this.#finish();
    return this.#weights?.[i] ?? 1;
  }

  gfn(i: number): number {
    return this.gfns[i]!;
  }

  write(i: number): boolean {
    return (this.flags[i]! & WRITE) !== 0;
  }

  /** the guest was at CPL3 for access `i` */
  user(i: number): boolean {
    return (this.flags[i]! & USER) !== 0;
  }

  site(i: number): Site {
    return SITES[this.flags[i]! >> SITE_SHIFT]!;
  }

  /** Access `i`, or undefined past the end. */
  at(i: number): Access | undefined {
    if (i < 0 || i >= this.length) return undefined;
    return { gfn: this.gfn(i), write: this.write(i), site: this.site(i), user: this.user(i) };
  }

  *[Symbol.iterator](): Iterator<Access> {
    for (let i = 0; i < this.length; i++) yield this.at(i)!;
  }

  toArray(): Access[] {
    return [...this];
  }

  /** The rest of the build, synchronously. */
  #finish(): void {
    if (this.#steps === null) return;
    while (!this.#steps.next().done);
    this.#steps = null;
  }

  /** The build as slices: yields after every BUILD_SLICE accesses of work. Same draws as one pass. */
  *#build(s: Scenario, vcpu: number): Generator<void> {
    const n = this.length;
    const w = s.workload;
    const per = w.pagesPerVcpu;
    const direct = w.pattern === "sequential" || w.pattern === "random";
    // allocated by the first slice, not at setup: zero-filling 256 x 64k accesses takes a while
    const gfns = (this.#gfns = new Float64Array(n));
    const flags = (this.#flags = new Uint8Array(n));
    // this vCPU's partition: pages [vcpu * per, (vcpu + 1) * per) of the memslots in slot order
    const part = direct ? gfns : new Float64Array(per);
    let skip = vcpu * per;
    let k = 0;
    for (const [a, b] of guestRanges(s.vm.memslots)) {
      if (k >= per) break;
      if (skip >= b - a) {
        skip -= b - a;
        continue;
      }
      for (let g = a + skip; g < b && k < per; g++) {
        part[k++] = g;
        if (k % BUILD_SLICE === 0) yield;
      }
      skip = 0;
    }
    if (k < per) throw new Error(`the memslots hold no page for access ${k} of vCPU ${vcpu}`);
    const rnd = prng(s.seed * 7919 + vcpu);
    if (w.pattern === "random") {
      // Fisher–Yates, as shuffle() in shared/random.ts, in place on the typed array
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        const t = gfns[i]!;
        gfns[i] = gfns[j]!;
        gfns[j] = t;
        if (i % BUILD_SLICE === 0) yield;
      }
    }
    let writes: Uint8Array | null = null;
    if (!direct) {
      const idx = new Uint32Array(n);
      if (w.pattern === "zipf") yield* zipfPages(idx, per, w.zipfS, rnd, BUILD_SLICE);
      else if (w.pattern === "hotset") yield* hotsetPages(idx, per, w.hotFraction, w.hotShare, rnd, BUILD_SLICE);
      else if (w.pattern === "strided") yield* stridedPages(idx, per, w.stridePages, BUILD_SLICE);
      else {
        writes = new Uint8Array(n);
        this.#weights = new Uint32Array(n);
        yield* tracePages(w.trace!.runs!, per, idx, writes, this.#weights, BUILD_SLICE);
      }
      for (let i = 0; i < n; i++) gfns[i] = part[idx[i]!]!;
      this.#distinct = distinct(idx, per);
    }
    const site = siteDrawer(s, prng(s.seed * 104729 + vcpu));
    const ratio = w.writeRatio;
    // its own stream, so adding the CPL draw changed no other draw of a seed
    const cpl = prng(s.seed * 15_485_863 + vcpu);
    const userShare = w.userModeShare;
    for (let i = 0; i < n; i++) {
      const write = writes ? writes[i] === 1 : rnd() < ratio;
      flags[i] = (write ? WRITE : 0) | (cpl() < userShare ? USER : 0) | (site() << SITE_SHIFT);
      if ((i + 1) % BUILD_SLICE === 0) yield;
    }
  }
}

export function buildWorkload(s: Scenario, vcpu: number): Workload {
  return new Workload(s, vcpu);
}
