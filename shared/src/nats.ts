/**
 * The NATS layer every service uses: connect and close, fire-and-forget events, the liveness
 * responder, and the transport events the testbed records. Request/reply lives in request.ts (retried,
 * idempotent), serving in serve.ts (validated, de-duplicated).
 */
import { connect, type NatsConnection, type Msg, type Subscription } from "@nats-io/transport-node";
import type { Static } from "@sinclair/typebox";
import type { Logger } from "pino";
import { PingReply } from "./schemas/messages.ts";
import { subjects, type ServiceName } from "./subjects.ts";

export { ERROR_HEADER, ERROR_CODE_HEADER, FL_CODE_HEADER, TRACE_HEADER, transportEvents, type RetryEvent, type GiveUpEvent } from "./wire.ts";

export interface ConnectOptions {
  servers: string;
  name: string;
  /** Services wait for NATS forever (compose starts in any order); tests and the CLI fail fast. */
  waitForServer?: boolean;
}

export async function connectNats(o: ConnectOptions): Promise<NatsConnection> {
  return connect({
    servers: o.servers.split(","),
    name: o.name,
    waitOnFirstConnect: o.waitForServer ?? false,
    // a testbed keeps trying: a run aborts by its own liveness bound, not by the client giving up
    maxReconnectAttempts: o.waitForServer ? -1 : 120,
    reconnectTimeWait: 250,
    reconnectJitter: 50,
    pingInterval: 5_000,
    noAsyncTraces: true,
  });
}

/** Bounded drain, then close (a drain can hang while messages keep arriving). */
export async function closeNats(nc: NatsConnection, ms = 3000): Promise<void> {
  if (nc.isClosed()) return;
  const timer = new Promise((r) => setTimeout(r, ms).unref());
  await Promise.race([nc.drain().catch(() => undefined), timer]);
  if (!nc.isClosed()) await nc.close().catch(() => undefined);
}

/** Fire-and-forget event; dropped (never thrown) while the connection closes or drains. */
export function publish(nc: NatsConnection, subject: string, body: unknown): void {
  if (nc.isClosed() || nc.isDraining()) return;
  try {
    nc.publish(subject, JSON.stringify(body));
  } catch {
    /* closing: an event lost here is re-published by the resync after a reconnect, or moot */
  }
}

/**
 * Answers `fl.svc.<name>.ping` (any instance: the health check the API aggregates) and
 * `fl.svc.<name>.i.<instance>.ping` (this one: a launcher waiting for the processes it started).
 */
export function servePing(nc: NatsConnection, log: Logger, name: ServiceName, instance: string, vms: () => number): Subscription {
  const started = performance.now();
  const one = nc.subscribe(subjects.pingInstance(name, instance), { callback: (_e, m) => answer(m) });
  const any = nc.subscribe(subjects.ping(name), { callback: (_e, m) => answer(m) });
  void any.closed.then(() => one.unsubscribe());
  return any;
  function answer(msg: Msg): void {
    {
      const reply: Static<typeof PingReply> = {
        name,
        instance,
        version: "0.1.0",
        uptimeMs: Math.round(performance.now() - started),
        vms: vms(),
      };
      if (msg.reply) msg.respond(JSON.stringify(reply));
      else log.debug("ping without reply subject");
    }
  }
}

export { ReqStream, request, type RequestOptions } from "./request.ts";
export { serve, listen, type ServeOptions, type Reply } from "./serve.ts";
