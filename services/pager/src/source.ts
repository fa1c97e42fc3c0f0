/**
 * The remote page source (the migration source / snapshot file) and its model: a per-page delay drawn
 * from `pager.latency` (seeded per gfn and attempt), an optional link of `pager.bandwidthMBps` on which
 * 4 KiB pages queue behind each other, lost fetches re-sent after `pager.loss.retryMs`, and stall
 * windows during which it answers nothing ("postcopy paused"). A request made during a stall, or whose
 * answer falls due during one, is re-sent when the stall ends and then takes a full delay again.
 *
 * Time is the model clock (`clock()`, a test's ManualClock or real time). Waits of 2 ms and more use
 * timers; shorter ones are polled on the next turn (`clock().soon`), because Node's
 * timers have 1 ms granularity and would turn a 200 µs page-in into >= 1 ms.
 */
import { PAGE_SIZE, attemptSeed, clock, epochMs, prng, sampler, type LatencySpec, type Sampler } from "@faultline/shared";

export interface SourceModel {
  latency: LatencySpec;
  /** the scenario's seed: every draw (delay, loss) derives from it, the gfn and the attempt */
  seed?: number;
  /** the link's rate in 10^6 bytes/s; absent: not modelled */
  bandwidthMBps?: number;
  /** a fetch is lost with this probability and re-sent after retryMs */
  loss?: { probability: number; retryMs: number };
}

interface Due {
  gfn: number;
  attempt: number;
  resolve: () => void;
}

interface Timed {
  at: number;
  run: () => void;
}

export class PageSource {
  readonly #draw: Sampler;
  readonly #seed: number;
  /** ms one page occupies the link, 0 when not modelled */
  readonly #pageMs: number;
  readonly #loss: { probability: number; retryMs: number } | undefined;
  /** when the link is free of the pages already queued on it (epoch ms) */
  #linkFreeAt = 0;
  #stalled = false;
  #deferred: Due[] = [];
  #due: Timed[] = [];
  #polling = false;
  #closed = false;
  /** pages answered */
  answered = 0;
  /** fetches lost and re-sent (pager.loss) */
  lostFetches = 0;

  /** a scheduled stall window covers the run's clock now (its timers may not have fired yet on a loaded machine) */
  readonly #inWindow: () => boolean;

  /** `model`: a fixed delay in µs, or the scenario's source model. */
  constructor(model: number | SourceModel, inWindow: () => boolean = () => false) {
    const m: SourceModel = typeof model === "number" ? { latency: { dist: "fixed", us: model } } : model;
    this.#draw = sampler(m.latency);
    this.#seed = m.seed ?? 0;
    this.#pageMs = m.bandwidthMBps ? PAGE_SIZE / (m.bandwidthMBps * 1000) : 0;
    this.#loss = m.loss && m.loss.probability > 0 ? m.loss : undefined;
    this.#inWindow = inWindow;
  }

  get stalled(): boolean {
    return this.#stalled;
  }

  /** Resolves when the page's contents arrive. */
  fetch(gfn: number): Promise<void> {
    return new Promise((resolve) => this.#schedule({ gfn, attempt: 0, resolve }));
  }

  stall(): void {
    this.#stalled = true;
  }

  /** The stall ends (also a scheduled window's end, whose start timer may not have fired): re-send what waited. */
  unstall(): void {
    this.#stalled = false;
    const again = this.#deferred;
    this.#deferred = [];
    for (const d of again) this.#schedule(d);
  }

  close(): void {
    this.#closed = true;
    this.#due = [];
    this.#deferred = [];
  }

  /** One send of the request: lost (re-sent after retryMs), or answered after its delay and its turn on the link. */
  #schedule(d: Due): void {
    if (this.#closed) return;
    if (this.#stalled || this.#inWindow()) return void this.#deferred.push(d);
    const rnd = prng(attemptSeed(this.#seed, d.gfn, d.attempt++));
    if (this.#loss && rnd() < this.#loss.probability) {
      this.lostFetches++;
      return this.#after(this.#loss.retryMs, () => this.#schedule(d));
    }
    const now = epochMs();
    let at = now + this.#draw(rnd) / 1000;
    if (this.#pageMs > 0) {
      // the link carries one page at a time, in request order: this one goes once it is ready and the link is free
      at = Math.max(at, this.#linkFreeAt) + this.#pageMs;
      this.#linkFreeAt = at;
    }
    this.#after(at - now, () => this.#deliver(d));
  }

  #deliver(d: Due): void {
    if (this.#closed) return;
    if (this.#stalled || this.#inWindow()) return void this.#deferred.push(d);
    this.answered++;
    d.resolve();
  }

  #after(ms: number, run: () => void): void {
    if (ms >= 2) {
      clock().setTimeout(() => {
        if (!this.#closed) run();
      }, ms);
      return;
    }
    this.#due.push({ at: epochMs() + ms, run });
    this.#poll();
  }

  #poll(): void {
    if (this.#polling) return;
    this.#polling = true;
    const tick = () => {
      const now = epochMs();
      const ready = this.#due.filter((d) => d.at <= now);
      if (ready.length) this.#due = this.#due.filter((d) => d.at > now);
      for (const d of ready) d.run();
      if (this.#due.length && !this.#closed) clock().soon(tick);
      else this.#polling = false;
    };
    clock().soon(tick);
  }
}
