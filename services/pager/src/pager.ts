/**
 * One VM's pager: its uffd (MISSING mode over every memslot), its page source, the scheduled stall
 * windows, and the `resident` announcements that keep the mmu's fast-path mirror current.
 */
import {
  LIVE_MIN_MS, Linger, Ok, latencySpec, ReqStream, RunClock, guestRanges, prng, subjects, type Bus, type PagerReport, type Scenario, type StallReply, type VmContext, type VmState, type WaitState,
} from "@faultline/shared";
import { PageSource } from "./source.ts";
import { Uffd } from "./uffd.ts";

export class VmPager implements VmState {
  readonly uffd: Uffd;
  readonly source: PageSource;
  readonly clock: RunClock;
  readonly #stallLog: PagerReport["stalls"] = [];

  readonly #bus: Bus;
  readonly #vm: string;
  readonly #vcpus: number;
  readonly #drops: ReqStream;
  #invalidations = 0;
  /** vCPU tasks asleep in handle_userfault long enough to be shown by live views */
  readonly #waits: Linger<number, { gfn: number; state: WaitState; sinceMs: number }>;

  constructor(ctx: Pick<VmContext, "bus" | "vm" | "scenario">) {
    const { bus, vm, scenario } = ctx;
    this.#bus = bus;
    this.#vm = vm;
    this.#vcpus = scenario.vm.vcpus;
    this.#drops = new ReqStream(`${vm}.pager.drops.${Math.random().toString(36).slice(2, 8)}`);
    this.clock = new RunClock();
    // the windows are checked by time as well as by their timers: a fetch that reaches a loaded pager
    // before its window's start timer fired is still inside the window
    const windows = scenario.pager.stalls;
    const { latency, bandwidthMBps, loss } = scenario.pager;
    this.source = new PageSource({ latency: latencySpec(latency), seed: scenario.seed, bandwidthMBps, loss }, () => {
      if (!this.clock.started || windows.length === 0) return false;
      const t = this.clock.now();
      return windows.some((w) => t >= w.atMs && t < w.atMs + w.forMs);
    });
    this.#waits = new Linger(LIVE_MIN_MS, () => this.clock.now(), (vcpu, w, ended) => {
      if (w) this.#publishWait(vcpu, w.gfn, w.state, w.sinceMs);
      else if (ended) this.#publishWait(vcpu, ended.gfn, null, this.clock.now());
    });
    this.uffd = new Uffd({
      onWait: (vcpu, gfn, state) => (state ? this.#waits.begin(vcpu, { gfn, state, sinceMs: this.clock.now() }) : this.#waits.end(vcpu)),
      fetch: (gfn) => this.source.fetch(gfn),
      onResident: (gfn) => bus.publish(subjects.resident(vm), { vm, trace: `copy-${gfn}`, gfns: [gfn] }),
      now: () => this.clock.now(),
      config: {
        mode: scenario.pager.mode,
        threadId: scenario.pager.features.includes("thread_id"),
        sigbus: scenario.pager.features.includes("sigbus"),
        isZero: zeroDraw(scenario),
        poison: new Set(scenario.pager.poison),
        wakeBatch: scenario.pager.wakeBatch,
        eventReadMs: scenario.pager.eventReadUs / 1000,
        uaccessSpin: scenario.kernel.uaccessSpin,
      },
      topology: {
        layout: scenario.pager.uffd.layout,
        readers: scenario.pager.uffd.readers,
        lockMs: scenario.pager.uffd.waitQueue.lockUs / 1000,
        perWaiterMs: scenario.pager.uffd.waitQueue.perWaiterUs / 1000,
      },
    });
    if (scenario.pager.mode === "wp") this.uffd.populateWriteProtectedRanges(guestRanges(scenario.vm.memslots));
    for (const d of scenario.pager.drops) this.clock.at(d.atMs, () => void this.drop(d.gfns));
    for (const s of scenario.pager.stalls) {
      this.clock.at(s.atMs, () => this.setStalled(true));
      this.clock.at(s.atMs + s.forMs, () => this.setStalled(false));
    }
  }

  /** Scenario time 0: the stall windows and drops are scheduled from it. */
  start(t0: number): void {
    this.clock.start(t0);
  }

  /**
   * MADV_DONTNEED: UFFD_EVENT_REMOVE (read by the handler), then the mmu notifier's start in the mmu
   * service, the pages go, the notifier's end; answers once all of it is done, as madvise returns.
   */
  async drop(gfns: readonly number[]): Promise<{ dropped: number }> {
    const id = `${this.#drops.name}.${++this.#invalidations}`;
    // each half is a retried request (joined, never run twice), so a reconnect cannot lose an invalidation
    const notify = (phase: "start" | "end", g: readonly number[]) =>
      this.#bus.request(subjects.invalidate(this.#vm), { vm: this.#vm, trace: `${this.#vm}.drop`, id, phase, gfns: [...g] }, Ok, { timeoutMs: 30_000, stream: this.#drops })
        .then(() => undefined, () => undefined);
    const dropped = await this.uffd.madvise(gfns, { start: (g) => notify("start", g), end: (g) => notify("end", g) });
    return { dropped: dropped.length };
  }

  /** After a reconnect: every vCPU's shown wait again, and "not asleep" for the others (a message may have been lost). */
  resync(): void {
    for (let vcpu = 0; vcpu < this.#vcpus; vcpu++) {
      const w = this.#waits.shown(vcpu);
      this.#publishWait(vcpu, w?.gfn ?? 0, w?.state ?? null, w?.sinceMs ?? this.clock.now());
    }
  }

  #publishWait(vcpu: number, gfn: number, waitState: WaitState | null, atMs: number): void {
    const vm = this.#vm;
    this.#bus.publish(subjects.vcpuWait(vm), { vm, trace: `${vm}.${vcpu}.wait`, vcpu, gfn, waitState, atMs });
  }

  setStalled(stalled: boolean): StallReply {
    const atMs = this.clock.now();
    if (stalled) this.source.stall();
    else this.source.unstall();
    this.#stallLog.push({ atMs, action: stalled ? "stall" : "unstall" });
    return { stalled: this.source.stalled, atMs };
  }

  report() {
    return {
      ...this.uffd.counters,
      resident: this.uffd.resident.size,
      waiters: this.uffd.waiters(),
      kworkersAsleep: this.uffd.kworkersAsleep,
      eventsByPtid: this.uffd.eventsByPtid,
      lostFetches: this.source.lostFetches,
      waitQueueLockMs: Math.round(this.uffd.lockHeldMs() * 1000) / 1000,
      stalls: this.#stallLog,
    };
  }

  close(): void {
    this.#waits.close();
    this.clock.cancelAll();
    this.uffd.release();
    this.source.close();
  }
}

/** Which pages the source reports as zero: a seeded draw per gfn at `pager.zeroRatio`. */
function zeroDraw(s: Scenario): (gfn: number) => boolean {
  const r = s.pager.zeroRatio;
  if (r <= 0) return () => false;
  return (gfn) => prng(s.seed * 31337 + gfn)() < r;
}
