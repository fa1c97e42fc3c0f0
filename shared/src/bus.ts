/**
 * The transport seam: what the services and the api use of a message bus. `NatsBus` is the real
 * one (request.ts, serve.ts, nats.ts on a NATS connection, unchanged); `MemoryBus` (memory-bus.ts)
 * carries the same messages inside one process, for tests that need no nats-server.
 */
import type { NatsConnection, Msg } from "@nats-io/transport-node";
import type { Static, TSchema } from "@sinclair/typebox";
import type { Logger } from "pino";
import { closeNats, publish } from "./nats.ts";
import type { PingReply } from "./schemas/messages.ts";
import { subjects, type ServiceName } from "./subjects.ts";
import { request, type RequestOptions } from "./request.ts";
import { listen, serve, type ServeOptions } from "./serve.ts";

export interface BusSubscription {
  unsubscribe(): void;
}

/** A connection event: lost the server, or back on it. */
export interface BusStatus {
  type: "disconnect" | "reconnect";
  server?: string;
}

export interface Bus {
  /** JSON request/reply; validates the reply; retries; fails with the typed errors of errors.ts. */
  request<R extends TSchema>(subject: string, body: unknown, replySchema: R, o: RequestOptions): Promise<Static<R>>;
  /** Fire-and-forget event; dropped (never thrown) while the bus closes. */
  publish(subject: string, body: unknown): void;
  /** Serves requests: validates the body, runs `handler` once per request, replies with its JSON or an error. */
  serve<S extends TSchema>(log: Logger, subject: string, schema: S, handler: (body: Static<S>) => unknown, o?: ServeOptions): BusSubscription;
  /** Events (no reply; every subscriber unless a queue is given): validates, runs `handler`. */
  listen<S extends TSchema>(log: Logger, subject: string, schema: S, handler: (body: Static<S>) => void, o?: ServeOptions): BusSubscription;
  /** Answers every request on `subject` with `reply()`'s JSON, the body unread (liveness pings). */
  answer(subject: string, reply: () => unknown): BusSubscription;
  /** Connection events, for as long as the bus lives. */
  status(): AsyncIterable<BusStatus>;
  isClosed(): boolean;
  /** the server this bus is on (for the health check) */
  server(): string;
  close(): Promise<void>;
}

/** The bus on a NATS connection: the functions of request.ts, serve.ts and nats.ts, as they are. */
export class NatsBus implements Bus {
  readonly nc: NatsConnection;
  constructor(nc: NatsConnection) {
    this.nc = nc;
  }

  request<R extends TSchema>(subject: string, body: unknown, replySchema: R, o: RequestOptions): Promise<Static<R>> {
    return request(this.nc, subject, body, replySchema, o);
  }

  publish(subject: string, body: unknown): void {
    publish(this.nc, subject, body);
  }

  serve<S extends TSchema>(log: Logger, subject: string, schema: S, handler: (body: Static<S>) => unknown, o?: ServeOptions): BusSubscription {
    return serve(this.nc, log, subject, schema, handler, o);
  }

  listen<S extends TSchema>(log: Logger, subject: string, schema: S, handler: (body: Static<S>) => void, o?: ServeOptions): BusSubscription {
    return listen(this.nc, log, subject, schema, handler, o);
  }

  answer(subject: string, reply: () => unknown): BusSubscription {
    return this.nc.subscribe(subject, {
      callback: (_e, m: Msg) => {
        if (m.reply) m.respond(JSON.stringify(reply()));
      },
    });
  }

  async *status(): AsyncIterable<BusStatus> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect") yield { type: s.type, server: s.server };
    }
  }

  isClosed(): boolean {
    return this.nc.isClosed();
  }

  server(): string {
    return this.nc.getServer();
  }

  close(): Promise<void> {
    return closeNats(this.nc);
  }
}

/**
 * Answers `fl.svc.<name>.ping` (any instance: the health check the API aggregates) and
 * `fl.svc.<name>.i.<instance>.ping` (this one: a launcher waiting for the processes it started).
 */
export function servePing(bus: Bus, name: ServiceName, instance: string, vms: () => number): BusSubscription {
  const started = performance.now();
  const reply = (): Static<typeof PingReply> => ({ name, instance, version: "0.1.0", uptimeMs: Math.round(performance.now() - started), vms: vms() });
  const one = bus.answer(subjects.pingInstance(name, instance), reply);
  const any = bus.answer(subjects.ping(name), reply);
  return { unsubscribe: () => (any.unsubscribe(), one.unsubscribe()) };
}
