/**
 * Who is alive, from the api's side: every service instance heartbeats (`fl.hb.<service>`) with the
 * VMs it holds. A run's owner is lost when its heartbeats stop for longer than the liveness bound
 * (dead, wedged, unreachable) or when they no longer list the run's VM (it restarted, or tore the VM
 * down). While the api's own connection is down nobody can be judged; after it comes back every
 * instance gets a fresh bound.
 */
import { HEARTBEAT_MS, HeartbeatMsg, type Bus, type BusSubscription, type Logger, type TestbedMonitor } from "@faultline/shared";

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
  /** the api's own connection state and outages, as its testbed monitor sees them */
  readonly #monitor: TestbedMonitor;
  readonly #stopGrace: () => void;
  #graceFrom = 0;

  constructor(bus: Bus, log: Logger, boundMs: number, monitor: TestbedMonitor) {
    this.boundMs = boundMs;
    this.#monitor = monitor;
    this.#sub = bus.listen(log, "fl.hb.*", HeartbeatMsg, (m) => {
      const now = performance.now();
      this.#beats.set(m.instance, { service: m.service, seen: now, vms: new Set(m.vms) });
      // forget instances silent for a minute (restarted services get new ids)
      if (this.#beats.size > 64) for (const [k, b] of this.#beats) if (now - b.seen > 60_000) this.#beats.delete(k);
    });
    this.#stopGrace = monitor.onReconnect(() => this.grace());
  }

  get connected(): boolean {
    return this.#monitor.connected;
  }

  /** Nobody is judged on silence before now (the api was stalled, or just reconnected). */
  grace(): void {
    this.#graceFrom = performance.now();
  }

  /** Why `owner` counts as lost for `vm`, or null while it is alive (or while we cannot tell). */
  lost(owner: Owner, vm: string): string | null {
    if (!this.connected) return null;
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
    this.#stopGrace();
  }
}
