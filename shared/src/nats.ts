/**
 * The NATS layer every service uses: connect and close, fire-and-forget events, and the transport
 * events the testbed records. Request/reply lives in request.ts (retried, idempotent), serving in
 * serve.ts (validated, de-duplicated); bus.ts puts them behind the transport seam.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";

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

export { ReqStream, request, type RequestOptions } from "./request.ts";
export { serve, listen, type ServeOptions, type Reply } from "./serve.ts";
