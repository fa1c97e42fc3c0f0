/**
 * Who is alive, from the api's side: every service instance heartbeats (`fl.hb.<service>`) with the
 * VMs it holds. A run's owner is lost when its heartbeats stop for longer than the liveness bound
 * (dead, wedged, unreachable) or when they no longer list the run's VM (it restarted, or tore the VM
 * down). While the api's own connection is down nobody can be judged; after it comes back every
 * instance gets a fresh bound.
 */
import { HEARTBEAT_MS, HeartbeatMsg, type Bus, type BusSubscription, type Logger } from "@faultline/shared";

interface Beat {
  service: string;
  /** api-local receipt time, performance.now() */
  seen: number;
  vms: Set<string>;
}

export interface Owner {
  service: string;
  instance: string;
  /** performance.now() when it acknowledged the VM */
  since: number;
}

export class Liveness {
  readonly #beats = new Map<string, Beat>();
  readonly #sub: BusSubscription;
  readonly boundMs: number;
  #connected = true;
  get connected(): boolean {
    return this.#connected;
  }
  /** Nobody is judged on silence before now (the api itself was stalled). */
  grace(): void {
    this.#graceFrom = performance.now();
  }
  #graceFrom = 0;
  /** the api's own connection events, for the runs' incident records */
  onConnection: (kind: "nats-disconnect" | "nats-reconnect", detail: string, downMs?: number) => void = () => undefined;

  constructor(bus: Bus, log: Logger, boundMs: number) {
    this.boundMs = boundMs;
    this.#sub = bus.listen(log, "fl.hb.*", HeartbeatMsg, (m) => {
      const now = performance.now();
      this.#beats.set(m.instance, { service: m.service, seen: now, vms: new Set(m.vms) });
      // forget instances silent for a minute (restarted services get new ids)
      if (this.#beats.size > 64) for (const [k, b] of this.#beats) if (now - b.seen > 60_000) this.#beats.delete(k);
    });
    void (async () => {
      let downAt = 0;
      for await (const s of bus.status()) {
        if (s.type === "disconnect") {
          this.#connected = false;
          downAt = performance.now();
          log.warn({ server: s.server }, "NATS disconnected: liveness judgement suspended");
          this.onConnection("nats-disconnect", `api lost ${s.server}`);
        }
        if (s.type === "reconnect") {
          this.#connected = true;
          this.#graceFrom = performance.now();
          const d = this.#graceFrom - downAt;
          log.warn({ server: s.server, downMs: Math.round(d) }, "NATS reconnected");
          this.onConnection("nats-reconnect", `api back on ${s.server} after ${Math.round(d)} ms`, d);
        }
      }
    })();
  }

  /** Why `owner` counts as lost for `vm`, or null while it is alive (or while we cannot tell). */
  lost(owner: Owner, vm: string): string | null {
    if (!this.#connected) return null;
    const now = performance.now();
    const from = Math.max(owner.since, this.#graceFrom);
    const b = this.#beats.get(owner.instance);
    const silentFor = now - Math.max(from, b?.seen ?? 0);
    if (silentFor > this.boundMs) return `no heartbeat for ${Math.round(silentFor)} ms (bound ${this.boundMs} ms)`;
    // a heartbeat sent well after it acknowledged the VM must list it
    if (b && b.seen > owner.since + 2 * HEARTBEAT_MS + 100 && !b.vms.has(vm)) return "it no longer holds the VM (restarted, or its lease lapsed)";
    return null;
  }

  close(): void {
    this.#sub.unsubscribe();
  }
}
