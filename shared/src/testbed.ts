/**
 * The testbed's own noise, measured so that it is never passed off as a modelled latency:
 * - each process samples its event-loop delay (`perf_hooks.monitorEventLoopDelay`) per VM it holds;
 * - a stall detector (a 20 ms tick that notices when it fires late) records windows in which the
 *   process could not run (GC pauses, CPU starvation, SIGSTOP), and tells every service about them
 *   (`fl.testbed.stall`), so a vCPU can mark the fault latencies that overlapped one;
 * - NATS disconnects and reconnects, request retries and lease events are incidents, with their times.
 */
import { Type } from "@sinclair/typebox";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { loadavg } from "node:os";
import type { Logger } from "pino";
import { epochMs } from "./clock.ts";
import { transportEvents, type GiveUpEvent, type RetryEvent } from "./wire.ts";
import { vmOf } from "./subjects.ts";
import type { Bus, BusSubscription } from "./bus.ts";

/** A tick this much later than planned is a testbed stall. */
export const STALL_THRESHOLD_MS = 100;
const TICK_MS = 20;
const MAX_INCIDENTS = 500;
const LOOP_RESOLUTION_MS = 10;

export type IncidentKind = "nats-disconnect" | "nats-reconnect" | "loop-stall" | "retry" | "request-failed" | "lease-lapsed" | "start-late" | "service-lost" | "cancelled";

export interface Incident {
  /** epoch ms (converted to run time by the api) */
  at: number;
  service: string;
  instance: string;
  kind: IncidentKind;
  detail: string;
  durationMs?: number;
}

export interface StallWindow {
  service: string;
  instance: string;
  /** epoch ms */
  from: number;
  to: number;
  cause: "loop-stall" | "nats-disconnect";
}

export interface LoopDelay {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** What one VM saw of the testbed in one service. */
export class VmTestbed {
  readonly incidents: Incident[] = [];
  dropped = 0;
  retries = 0;
  readonly #h: IntervalHistogram;
  readonly #loadStart = loadavg()[0] ?? 0;
  constructor() {
    this.#h = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.#h.enable();
  }
  /** minor incidents (retries) may fill only half the record: outages and stalls always find room */
  add(i: Incident, minor = false): void {
    if (this.incidents.length >= (minor ? MAX_INCIDENTS / 2 : MAX_INCIDENTS)) return void this.dropped++;
    this.incidents.push(i);
  }
  loopDelay(): LoopDelay {
    // the histogram records the interval between its timer's ticks: the delay is what exceeds the resolution
    const ms = (ns: number) => Math.max(0, Math.round(((Number.isFinite(ns) ? ns : 0) / 1e6 - LOOP_RESOLUTION_MS) * 100) / 100);
    return { p50Ms: ms(this.#h.percentile(50)), p99Ms: ms(this.#h.percentile(99)), maxMs: ms(this.#h.max) };
  }
  summary(service: string, instance: string) {
    return {
      service,
      instance,
      loopDelay: this.loopDelay(),
      loadAvg1: { start: round2(this.#loadStart), end: round2(loadavg()[0] ?? 0) },
      retries: this.retries,
      incidents: this.incidents,
      incidentsDropped: this.dropped,
    };
  }
  close(): void {
    this.#h.disable();
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** One per process: the stall detector, the connection watcher, and the VMs that want to hear of them. */
export class TestbedMonitor {
  readonly service: string;
  readonly instance: string;
  readonly #vms = new Map<string, VmTestbed>();
  /** recent stall windows of every service (own and reported), newest last */
  readonly windows: StallWindow[] = [];
  readonly #windowListeners = new Set<(w: StallWindow) => void>();
  readonly #reconnectListeners = new Set<() => void>();
  #timer: NodeJS.Timeout | null = null;
  #bus: Bus | null = null;
  #sub: BusSubscription | null = null;
  /** false between a NATS disconnect and the reconnect */
  connected = true;
  readonly #log: Logger;
  readonly #onRetry = (e: RetryEvent) => {
    const vm = this.#vms.get(vmOf(e.subject));
    if (!vm) return;
    vm.retries++;
    // a re-send after an attempt timeout is how a long block (a stalled page) is waited out: counted, not an incident
    if (e.reason === "timeout") return;
    if (e.attempt === 1 || e.attempt % 10 === 0) this.#add(vm, "retry", `${e.subject}: ${e.reason}, attempt ${e.attempt}`, undefined, true);
  };
  readonly #onGiveUp = (e: GiveUpEvent) => {
    const vm = this.#vms.get(vmOf(e.subject));
    if (vm) this.#add(vm, "request-failed", `${e.subject}: ${e.code} after ${e.attempts} attempts (deadline ${e.timeoutMs} ms)`);
  };

  constructor(service: string, instance: string, log: Logger) {
    this.service = service;
    this.instance = instance;
    this.#log = log;
  }

  /** Starts the stall detector and, with a bus, watches its connection and shares stall windows. */
  start(bus: Bus | null): this {
    this.#bus = bus;
    let last = performance.now();
    this.#timer = setInterval(() => {
      const now = performance.now();
      const late = now - last - TICK_MS;
      last = now;
      if (late >= STALL_THRESHOLD_MS) {
        const to = epochMs();
        this.#window({ service: this.service, instance: this.instance, from: to - late, to, cause: "loop-stall" }, true);
      }
    }, TICK_MS);
    this.#timer.unref();
    transportEvents.on("retry", this.#onRetry);
    transportEvents.on("giveUp", this.#onGiveUp);
    if (bus) {
      this.#sub = bus.listen(this.#log, "fl.testbed.stall", Type.Unknown(), (m) => {
        const w = m as StallWindow;
        if (w && w.instance !== this.instance && typeof w.from === "number" && typeof w.to === "number") this.#window(w, false);
      });
      void this.#watch(bus);
    }
    return this;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#sub?.unsubscribe();
    transportEvents.off("retry", this.#onRetry);
    transportEvents.off("giveUp", this.#onGiveUp);
  }

  track(vm: string): VmTestbed {
    const t = new VmTestbed();
    this.#vms.set(vm, t);
    return t;
  }

  vm(vm: string): VmTestbed | undefined {
    return this.#vms.get(vm);
  }

  untrack(vm: string): void {
    this.#vms.get(vm)?.close();
    this.#vms.delete(vm);
  }

  incident(vm: string, kind: IncidentKind, detail: string, durationMs?: number): void {
    const t = this.#vms.get(vm);
    if (t) this.#add(t, kind, detail, durationMs);
  }

  onWindow(fn: (w: StallWindow) => void): () => void {
    this.#windowListeners.add(fn);
    return () => this.#windowListeners.delete(fn);
  }

  onReconnect(fn: () => void): () => void {
    this.#reconnectListeners.add(fn);
    return () => this.#reconnectListeners.delete(fn);
  }

  /** Did a known testbed stall of one of `instances` (any, when empty) overlap [from, to] (epoch ms)? */
  overlaps(from: number, to: number, instances: readonly string[] = []): boolean {
    for (let i = this.windows.length - 1; i >= 0; i--) {
      const w = this.windows[i]!;
      if (w.from < to && from < w.to && (instances.length === 0 || instances.includes(w.instance))) return true;
    }
    return false;
  }

  #add(t: VmTestbed, kind: IncidentKind, detail: string, durationMs?: number, minor = false): void {
    t.add({ at: epochMs(), service: this.service, instance: this.instance, kind, detail, ...(durationMs !== undefined ? { durationMs: Math.round(durationMs) } : {}) }, minor);
  }

  #window(w: StallWindow, own: boolean): void {
    this.windows.push(w);
    if (this.windows.length > 1000) this.windows.splice(0, this.windows.length - 1000);
    if (own) {
      const d = w.to - w.from;
      this.#log[d >= 1000 ? "warn" : "info"]({ stallMs: Math.round(d), cause: w.cause }, "testbed stall: this process could not run");
      for (const t of this.#vms.values()) this.#add(t, w.cause, `${this.service} could not run for ${Math.round(d)} ms`, d);
      this.#bus?.publish("fl.testbed.stall", w);
    }
    for (const fn of this.#windowListeners) fn(w);
  }

  async #watch(bus: Bus): Promise<void> {
    let downAt: number | null = null;
    for await (const s of bus.status()) {
      if (s.type === "disconnect") {
        this.connected = false;
        downAt = epochMs();
        this.#log.warn({ server: s.server }, "NATS disconnected");
        for (const t of this.#vms.values()) this.#add(t, "nats-disconnect", `lost ${s.server}`);
      } else if (s.type === "reconnect") {
        this.connected = true;
        const now = epochMs();
        const d = downAt === null ? 0 : now - downAt;
        this.#log.warn({ server: s.server, downMs: Math.round(d) }, "NATS reconnected");
        for (const t of this.#vms.values()) this.#add(t, "nats-reconnect", `back on ${s.server} after ${Math.round(d)} ms`, d);
        if (downAt !== null) this.#window({ service: this.service, instance: this.instance, from: downAt, to: now, cause: "nats-disconnect" }, false);
        if (downAt !== null) bus.publish("fl.testbed.stall", { service: this.service, instance: this.instance, from: downAt, to: now, cause: "nats-disconnect" });
        downAt = null;
        for (const fn of this.#reconnectListeners) fn();
      }
    }
  }
}
