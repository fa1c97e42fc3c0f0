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
 */
import { SITES, guestRanges, prng, type FaultReq, type Scenario, type Site } from "@faultline/shared";

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

  constructor(s: Scenario, vcpu: number) {
    const per = s.workload.pagesPerVcpu;
    this.length = per;
    this.#steps = this.#build(s, vcpu);
    if (per <= BUILD_AT_ONCE) this.#finish();
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
    // allocated by the first slice, not at setup: zero-filling 256 x 64k accesses takes a while
    const gfns = (this.#gfns = new Float64Array(n));
    const flags = (this.#flags = new Uint8Array(n));
    // this vCPU's partition: pages [vcpu * n, (vcpu + 1) * n) of the memslots in slot order
    let skip = vcpu * n;
    let k = 0;
    for (const [a, b] of guestRanges(s.vm.memslots)) {
      if (k >= n) break;
      if (skip >= b - a) {
        skip -= b - a;
        continue;
      }
      for (let g = a + skip; g < b && k < n; g++) {
        gfns[k++] = g;
        if (k % BUILD_SLICE === 0) yield;
      }
      skip = 0;
    }
    if (k < n) throw new Error(`the memslots hold no page for access ${k} of vCPU ${vcpu}`);
    const rnd = prng(s.seed * 7919 + vcpu);
    if (s.workload.pattern === "random") {
      // Fisher–Yates, as shuffle() in shared/random.ts, in place on the typed array
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        const t = gfns[i]!;
        gfns[i] = gfns[j]!;
        gfns[j] = t;
        if (i % BUILD_SLICE === 0) yield;
      }
    }
    const site = siteDrawer(s, prng(s.seed * 104729 + vcpu));
    const ratio = s.workload.writeRatio;
    // its own stream, so adding the CPL draw changed no other draw of a seed
    const cpl = prng(s.seed * 15_485_863 + vcpu);
    const userShare = s.workload.userModeShare;
    for (let i = 0; i < n; i++) {
      flags[i] = (rnd() < ratio ? WRITE : 0) | (cpl() < userShare ? USER : 0) | (site() << SITE_SHIFT);
      if ((i + 1) % BUILD_SLICE === 0) yield;
    }
  }
}

export function buildWorkload(s: Scenario, vcpu: number): Workload {
  return new Workload(s, vcpu);
}
