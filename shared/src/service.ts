/**
 * How a Faultline service is declared and hosted. A service is one definition: its name, a per-VM
 * state class, and the per-VM endpoints it answers. The host runs the run lifecycle for it:
 *
 *   claim (queue group: one instance takes the VM, answering with its instance id)
 *   → setup on that instance's own subject (creates the VM's state, subscribes ONLY that VM's subjects,
 *     so two stacks or two instances on one NATS never process a VM twice; nothing runs yet)
 *   → start {t0} (timers and vCPU threads start from scenario time 0)
 *   → report (the state plus what the testbed itself did: loop delay, stalls, incidents)
 *   → teardown.
 *
 * Every VM is held under a lease that the api renews; a VM whose lease lapses (api gone) is torn down.
 * Every instance heartbeats (`fl.hb.<service>`) with the VMs it holds, so the api notices a dead,
 * wedged or unreachable service within its liveness bound.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Static, TSchema } from "@sinclair/typebox";
import type { Logger } from "pino";
import { connectionName, loadConfig, type Config } from "./config.ts";
import { epochMs } from "./clock.ts";
import { createLogger } from "./log.ts";
import { connectNats } from "./nats.ts";
import { NatsBus, servePing, type Bus, type BusSubscription } from "./bus.ts";
import { ClaimMsg, Empty, LeaseMsg, PingReply, ResyncMsg, SetupMsg, StartMsg } from "./schemas/messages.ts";
import type { Scenario } from "./schemas/scenario.ts";
import { subjects, type ServiceName } from "./subjects.ts";
import { TestbedMonitor, type VmTestbed } from "./testbed.ts";
import { watchParent } from "./parent-watch.ts";

/** How often an instance heartbeats and checks its leases. */
export const HEARTBEAT_MS = 250;

export interface VmContext {
  vm: string;
  trace: string;
  scenario: Scenario;
  bus: Bus;
  log: Logger;
  config: Config;
  service: ServiceName;
  instance: string;
  testbed: VmTestbed;
  monitor: TestbedMonitor;
  /** aborted when the VM is torn down: its requests stop retrying */
  signal: AbortSignal;
  /** the instances holding this VM, service → instance (known from `start`) */
  owners: Record<string, string>;
}

/** One VM's state in one service. */
export interface VmState {
  /** scenario time 0 is `t0` (epoch ms) */
  start(t0: number): void;
  report(): unknown;
  close(): void;
  /** the connection is back after a disconnect: re-publish what others may have missed */
  resync?(): void;
}

export interface Endpoint<V> {
  /** the per-VM subject */
  subject: (vm: string) => string;
  schema: TSchema;
  /** an event (publish, no reply; every subscriber sees it) rather than a request */
  event?: boolean;
  handler: (state: V, body: never, ctx: VmContext) => unknown;
}

export interface ServiceDefinition<V extends VmState> {
  name: ServiceName;
  version: string;
  description: string;
  create: (ctx: VmContext) => V;
  endpoints: Array<Endpoint<V>>;
}

/** Declares a per-VM endpoint with the body type derived from its schema. */
export function endpoint<V, S extends TSchema>(
  subject: (vm: string) => string,
  schema: S,
  handler: (state: V, body: Static<S>, ctx: VmContext) => unknown,
  o: { event?: boolean } = {},
): Endpoint<V> {
  return { subject, schema, handler: handler as Endpoint<V>["handler"], ...(o.event ? { event: true } : {}) };
}

export function defineService<V extends VmState>(def: ServiceDefinition<V>): ServiceDefinition<V> {
  return def;
}

interface Held<V> {
  started: boolean;
  state: V;
  abort: AbortController;
  ctx: VmContext;
  subs: BusSubscription[];
  leaseUntil: number;
  leaseMs: number;
}

export interface HostedService {
  vms: () => number;
  stop: () => Promise<void>;
}

/** Hosts a service definition on a bus (the process entry point on NATS, tests on a MemoryBus). */
export function hostService<V extends VmState>(def: ServiceDefinition<V>, bus: Bus, log: Logger, config: Config): HostedService {
  const instance = config.FAULTLINE_INSTANCE;
  const monitor = new TestbedMonitor(def.name, instance, log).start(bus);
  const held = new Map<string, Held<V>>();

  const teardown = (vm: string, why: string): boolean => {
    const h = held.get(vm);
    if (!h) return false;
    held.delete(vm);
    h.abort.abort();
    for (const s of h.subs) s.unsubscribe();
    try {
      h.state.close();
    } catch (err) {
      log.error({ err, vm }, "close failed");
    }
    monitor.untrack(vm);
    log.info({ vm, why }, "vm torn down");
    return true;
  };

  const setup = (m: Static<typeof SetupMsg>) => {
    if (held.has(m.vm)) return { ok: true as const, instance }; // a retried setup
    const vlog = log.child({ vm: m.vm });
    const testbed = monitor.track(m.vm);
    const abort = new AbortController();
    const ctx: VmContext = { vm: m.vm, trace: m.trace, scenario: m.scenario, bus, log: vlog, config, service: def.name, instance, testbed, monitor, signal: abort.signal, owners: {} };
    let state: V;
    try {
      state = def.create(ctx);
    } catch (err) {
      monitor.untrack(m.vm);
      throw err;
    }
    const h: Held<V> = { started: false, state, abort, ctx, subs: [], leaseUntil: performance.now() + m.leaseMs, leaseMs: m.leaseMs };
    held.set(m.vm, h);
    const vm = m.vm;
    const on = { vm };
    for (const e of def.endpoints) {
      const fn = (body: unknown) => e.handler(h.state, body as never, ctx);
      h.subs.push(e.event ? bus.listen(vlog, e.subject(vm), e.schema, fn, on) : bus.serve(vlog, e.subject(vm), e.schema, fn, on));
    }
    h.subs.push(
      bus.serve(vlog, subjects.start(vm, def.name), StartMsg, (b) => {
        const late = epochMs() - b.t0;
        if (late > 50) monitor.incident(vm, "start-late", `start reached ${def.name} ${Math.round(late)} ms after t0`, late);
        if (h.started) return { ok: true }; // a re-sent start
        h.started = true;
        Object.assign(ctx.owners, b.owners);
        h.state.start(b.t0);
        return { ok: true };
      }, on),
      bus.serve(vlog, subjects.report(vm, def.name), Empty, async () => ({ ...(await h.state.report() as object), testbed: testbed.summary(def.name, instance) }), on),
      bus.serve(vlog, subjects.teardown(vm, def.name), Empty, () => ({ ok: teardown(vm, "teardown") }), on),
      bus.listen(vlog, subjects.lease(vm), LeaseMsg, (b) => {
        h.leaseUntil = performance.now() + b.leaseMs;
        h.leaseMs = b.leaseMs;
      }, on),
      // a peer that was disconnected asks every owner to re-publish its state (a wake-up, a vCPU state)
      bus.listen(vlog, subjects.resync(vm), ResyncMsg, (b) => {
        if (b.instance !== instance && h.started) h.state.resync?.();
      }, on),
    );
    vlog.info({ trace: m.trace, leaseMs: m.leaseMs }, "vm created");
    return { ok: true as const, instance };
  };

  const subs: BusSubscription[] = [
    bus.serve(log, subjects.claim(def.name), ClaimMsg, () => ({ instance }), { queue: `fl.${def.name}` }),
    bus.serve(log, subjects.setup(def.name, instance), SetupMsg, setup, { queue: "" }),
    servePing(bus, def.name, instance, () => held.size),
  ];

  let lastBeat = performance.now();
  const beat = setInterval(() => {
    const now = performance.now();
    const gap = now - lastBeat;
    lastBeat = now;
    // this process could not run (frozen, starved) or cannot hear NATS: it cannot have heard renewals,
    // so leases restart rather than lapse for what was our own stall or outage
    if (gap > 4 * HEARTBEAT_MS || !monitor.connected) for (const h of held.values()) h.leaseUntil = Math.max(h.leaseUntil, now + h.leaseMs);
    for (const [vm, h] of held) {
      if (now > h.leaseUntil) {
        monitor.incident(vm, "lease-lapsed", `lease of ${h.leaseMs} ms not renewed`);
        log.warn({ vm, leaseMs: h.leaseMs }, "lease lapsed (api gone?): tearing the VM down");
        teardown(vm, "lease lapsed");
      }
    }
    bus.publish(subjects.heartbeat(def.name), { service: def.name, instance, vms: [...held.keys()], atMs: epochMs() });
  }, HEARTBEAT_MS);
  beat.unref();

  // after a reconnect, messages published while we were away may be lost, ours and theirs: re-publish
  // ours and ask the VM's other owners for theirs, now and again shortly after (the peers reconnect on
  // their own schedule). The leases were held meanwhile by the heartbeat tick (`!monitor.connected`).
  monitor.onReconnect(() => {
    for (const delay of [0, 1000, 3000]) {
      setTimeout(() => {
        for (const [vm, h] of held) {
          if (!h.started) continue;
          h.state.resync?.();
          bus.publish(subjects.resync(vm), { vm, trace: `${vm}.resync`, instance });
        }
      }, delay).unref();
    }
  });

  return {
    vms: () => held.size,
    stop: async () => {
      clearInterval(beat);
      for (const s of subs) s.unsubscribe();
      for (const vm of [...held.keys()]) teardown(vm, "service stopping");
      monitor.stop();
    },
  };
}

/**
 * A service process: connects (waiting for NATS forever, so compose can start in any order), hosts
 * the definition, and on SIGTERM/SIGINT (or when the parent that started it is gone) stops it and
 * drains the connection.
 */
export async function runService<V extends VmState>(def: ServiceDefinition<V>): Promise<void> {
  await runProcess(def.name, async ({ bus, log, config }) => {
    // the instance id is the VM owner's address: two live processes must never share it
    const taken = await bus.request(subjects.pingInstance(def.name, config.FAULTLINE_INSTANCE), {}, PingReply, { timeoutMs: 500, retry: false }).then(() => true, () => false);
    if (taken) {
      log.fatal({ instance: config.FAULTLINE_INSTANCE }, "another live process already uses this FAULTLINE_INSTANCE; give each replica its own (or leave it unset)");
      process.exit(1);
    }
    return hostService(def, bus, log, config);
  });
}

export interface ServiceContext {
  name: ServiceName;
  /** the process's NATS connection (the api's JetStream run store needs it); everything else goes through `bus` */
  nc: NatsConnection;
  bus: Bus;
  log: Logger;
  config: Config;
}

/**
 * Ends the process at once. Not `process.exit`: on Node 20 with tsx's module hooks an exit was seen to
 * hang for good (the main thread asleep on a futex, joining the hooks worker), leaving a service that
 * neither runs nor dies, so no supervisor restarts it. A SIGKILL cannot hang; the supervisor sees it.
 */
function die(): never {
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
}

/** Process scaffolding shared by every service (and the api): config, logger, NATS, ping, clean exit. */
export async function runProcess(
  name: ServiceName,
  start: (ctx: ServiceContext) => Promise<{ stop: () => Promise<void> | void; vms: () => number }>,
  o: { ping?: boolean } = {},
): Promise<void> {
  const config = loadConfig();
  const log = createLogger(name, config);
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "uncaught exception");
    die();
  });
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
  watchParent((why) => {
    // the launcher is gone, and its end of our stdout/stderr pipes with it: nobody reads a log line now;
    // its VMs' leases lapse on the other services
    void why;
    die();
  });
  const nc = await connectNats({ servers: config.NATS_URL, name: connectionName(name, config.FAULTLINE_INSTANCE), waitForServer: true });
  const bus = new NatsBus(nc);
  let svc: Awaited<ReturnType<typeof start>>;
  try {
    svc = await start({ name, nc, bus, log, config });
  } catch (err) {
    // a start-up failure (a port taken, a bad configuration) is an exit code the launcher reports
    log.fatal({ err }, "start-up failed");
    process.exit(1);
  }
  if (o.ping) servePing(bus, name, config.FAULTLINE_INSTANCE, svc.vms);
  await nc.flush();
  log.info({ nats: nc.getServer(), instance: config.FAULTLINE_INSTANCE }, "service ready");
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    await svc.stop();
    await bus.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  void nc.closed().then((err) => {
    if (!stopping) {
      log.fatal({ err }, "NATS connection closed");
      die();
    }
  });
}
