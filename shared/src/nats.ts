/**
 * The NATS layer every service uses: connect, validated request/reply with typed errors, validated
 * handlers that answer errors micro-style (`Nats-Service-Error`, `Nats-Service-Error-Code` headers)
 * and keep serving, and a liveness responder.
 */
import { connect, headers, errors, type NatsConnection, type Msg, type Subscription } from "@nats-io/transport-node";
import type { Static, TSchema } from "@sinclair/typebox";
import type { Logger } from "pino";
import { FaultlineError, NoRespondersError, NotFoundError, RemoteError, RequestTimeoutError, ValidationError } from "./errors.ts";
import { assertValid } from "./schemas/validate.ts";
import { PingReply } from "./schemas/messages.ts";
import { subjects, type ServiceName } from "./subjects.ts";

export const ERROR_HEADER = "Nats-Service-Error";
export const ERROR_CODE_HEADER = "Nats-Service-Error-Code";
export const FL_CODE_HEADER = "Faultline-Error-Code";
export const TRACE_HEADER = "Faultline-Trace";

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
    maxReconnectAttempts: o.waitForServer ? -1 : 10,
    reconnectTimeWait: 500,
    pingInterval: 10_000,
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

export interface RequestOptions {
  timeoutMs: number;
  trace?: string;
}

/** JSON request/reply; validates the reply; maps no-responders, timeouts and remote errors to typed errors. */
export async function request<R extends TSchema>(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  replySchema: R,
  o: RequestOptions,
): Promise<Static<R>> {
  const h = headers();
  if (o.trace) h.set(TRACE_HEADER, o.trace);
  let msg: Msg;
  try {
    msg = await nc.request(subject, JSON.stringify(body), { timeout: o.timeoutMs, headers: h });
  } catch (err) {
    if (err instanceof errors.RequestError && err.isNoResponders()) throw new NoRespondersError(subject, err);
    if (err instanceof errors.NoRespondersError) throw new NoRespondersError(subject, err);
    if (err instanceof errors.TimeoutError) throw new RequestTimeoutError(subject, o.timeoutMs, err);
    throw err;
  }
  const remote = msg.headers?.get(ERROR_HEADER);
  if (remote) {
    const data = safeJson(msg) as { error?: { path?: string } } | undefined;
    throw new RemoteError(subject, msg.headers?.get(FL_CODE_HEADER) || "FL_ERR_REMOTE", remote, data?.error?.path);
  }
  return assertValid(`reply on ${subject}`, replySchema, safeJson(msg));
}

function safeJson(msg: Msg): unknown {
  try {
    return msg.json();
  } catch {
    return undefined;
  }
}

export function publish(nc: NatsConnection, subject: string, body: unknown): void {
  nc.publish(subject, JSON.stringify(body));
}

function parseBody<S extends TSchema>(subject: string, schema: S, msg: Msg): Static<S> {
  let data: unknown;
  try {
    data = msg.json();
  } catch {
    throw new ValidationError(`message on ${subject}`, "", "body is not JSON");
  }
  return assertValid(`message on ${subject}`, schema, data);
}

function respondError(msg: Msg, err: unknown): void {
  const fe = err instanceof FaultlineError ? err : new FaultlineError("FL_ERR_INTERNAL", String((err as Error)?.message ?? err));
  const h = headers();
  h.set(ERROR_HEADER, fe.message.replace(/[\r\n]/g, " "));
  h.set(ERROR_CODE_HEADER, fe instanceof ValidationError ? "400" : fe instanceof NotFoundError ? "404" : "500");
  h.set(FL_CODE_HEADER, fe.code);
  msg.respond(JSON.stringify({ error: fe.toJSON() }), { headers: h });
}

/**
 * Serves requests on `subject`: validates the body, runs `handler`, replies with its JSON or with an
 * error. A bad message is answered (if it has a reply subject) and logged; the subscription lives on.
 */
export function serve<S extends TSchema>(
  nc: NatsConnection,
  log: Logger,
  subject: string,
  schema: S,
  handler: (body: Static<S>, msg: Msg) => unknown,
): Subscription {
  return nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err) return void log.error({ err, subject }, "subscription error");
      void (async () => {
        const body = parseBody(msg.subject, schema, msg);
        const out = await handler(body, msg);
        if (msg.reply) msg.respond(JSON.stringify(out ?? { ok: true }));
      })().catch((e: unknown) => {
        const level = e instanceof ValidationError || e instanceof NotFoundError ? "warn" : "error";
        log[level]({ err: e, subject: msg.subject }, "request failed");
        if (msg.reply) respondError(msg, e);
      });
    },
  });
}

/** Listens to events (no reply): validates, runs `handler`, logs bad messages and handler failures. */
export function listen<S extends TSchema>(
  nc: NatsConnection,
  log: Logger,
  subject: string,
  schema: S,
  handler: (body: Static<S>, msg: Msg) => void,
): Subscription {
  return serve(nc, log, subject, schema, (b, m) => {
    handler(b, m);
    return undefined;
  });
}

/** Answers `fl.svc.<name>.ping` with identity and uptime (the health check the API aggregates). */
export function servePing(nc: NatsConnection, log: Logger, name: ServiceName, instance: string, vms: () => number): Subscription {
  const started = performance.now();
  return nc.subscribe(subjects.ping(name), {
    callback: (_err, msg) => {
      const reply: Static<typeof PingReply> = {
        name,
        instance,
        version: "0.1.0",
        uptimeMs: Math.round(performance.now() - started),
        vms: vms(),
      };
      if (msg.reply) msg.respond(JSON.stringify(reply));
      else log.debug("ping without reply subject");
    },
  });
}
