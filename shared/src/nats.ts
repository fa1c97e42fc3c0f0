/**
 * The NATS layer every service uses: connect, request/reply that survives a reconnect, validated
 * handlers that answer errors micro-style (`Nats-Service-Error`, `Nats-Service-Error-Code` headers)
 * and keep serving, and a liveness responder.
 *
 * Requests are idempotent: each carries `"rid": "<stream> <seq> <low>"` in its body and is re-sent (same id)
 * after an attempt timeout, a no-responders answer or a reconnect. The serving side runs a request
 * once: a duplicate joins the one in progress or gets the first outcome. `<low>` is the requester's
 * lowest sequence still in flight, so the server forgets outcomes the requester can no longer ask for
 * (memory bounded by what is in flight, not by the run's length).
 *
 * Payloads larger than the server's `max_payload` are chunked both ways (chunks.ts), so neither a big
 * scenario nor a big report is ever a user-visible `MAX_PAYLOAD` error.
 */
import { connect, headers, errors, type MsgHdrs, type NatsConnection, type Msg, type Subscription } from "@nats-io/transport-node";
import type { Static, TSchema } from "@sinclair/typebox";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { CancelledError, ClosedConnectionError, FaultlineError, NoRespondersError, NotFoundError, RemoteError, RequestTimeoutError, ValidationError, httpStatusOf } from "./errors.ts";
import { assertValid } from "./schemas/validate.ts";
import { PingReply } from "./schemas/messages.ts";
import { subjects, type ServiceName } from "./subjects.ts";
import { CHUNK_HEADER, ChunkAssembler, chunkLimit, fetchBlob, isBlobReply, offerBlob, uploadChunks } from "./chunks.ts";

export const ERROR_HEADER = "Nats-Service-Error";
export const ERROR_CODE_HEADER = "Nats-Service-Error-Code";
export const FL_CODE_HEADER = "Faultline-Error-Code";
export const TRACE_HEADER = "Faultline-Trace";

/** Transport events (retries, give-ups), for the testbed's incident record. */
export const transportEvents = new EventEmitter<{ retry: [RetryEvent]; giveUp: [GiveUpEvent] }>();
export interface RetryEvent {
  subject: string;
  attempt: number;
  reason: "timeout" | "no-responders" | "disconnected";
}
/** a request that ran out of time, after `attempts` attempts */
export interface GiveUpEvent {
  subject: string;
  attempts: number;
  code: string;
  timeoutMs: number;
}

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

/** One requester's sequence of idempotent requests (a vCPU's faults, the api's controls, ...). */
export class ReqStream {
  readonly name: string;
  #seq = 0;
  readonly #inflight = new Set<number>();
  constructor(name: string) {
    this.name = name.replace(/\s/g, "_");
  }
  begin(): number {
    const s = ++this.#seq;
    this.#inflight.add(s);
    return s;
  }
  end(seq: number): void {
    this.#inflight.delete(seq);
  }
  /** lowest sequence the requester may still re-send */
  low(): number {
    let low = this.#seq + 1;
    for (const s of this.#inflight) if (s < low) low = s;
    return low;
  }
}

const defaultStreams = new WeakMap<NatsConnection, ReqStream>();
function defaultStream(nc: NatsConnection): ReqStream {
  let s = defaultStreams.get(nc);
  if (!s) defaultStreams.set(nc, (s = new ReqStream(`${nc.info?.client_id ?? "c"}.${process.pid}.${Math.random().toString(36).slice(2, 8)}`)));
  return s;
}

export interface RequestOptions {
  /** overall deadline across attempts */
  timeoutMs: number;
  /** one attempt's timeout; a request blocked longer is re-sent (and joined on the server). @default min(timeoutMs, 2000) */
  attemptMs?: number;
  trace?: string;
  /** @default a per-connection stream */
  stream?: ReqStream;
  /** retry on timeouts and no-responders until the deadline. @default true */
  retry?: boolean;
  /** stop retrying (the VM was torn down): the request then fails with FL_ERR_CANCELLED */
  signal?: AbortSignal;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Who waits for the connection's next reconnect: requests in flight are then re-sent at once. */
class Reconnects {
  readonly waiters = new Set<() => void>();
  constructor(nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status()) if (s.type === "reconnect") for (const w of [...this.waiters]) w();
    })().catch(() => undefined);
  }
}
const reconnects = new WeakMap<NatsConnection, Reconnects>();
const RECONNECTED = Symbol("reconnected");
function reconnectsOf(nc: NatsConnection): Reconnects {
  let r = reconnects.get(nc);
  if (!r) reconnects.set(nc, (r = new Reconnects(nc)));
  return r;
}

/** JSON request/reply; validates the reply; retries; maps no-responders, timeouts and remote errors to typed errors. */
export async function request<R extends TSchema>(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  replySchema: R,
  o: RequestOptions,
): Promise<Static<R>> {
  const stream = o.stream ?? defaultStream(nc);
  const seq = stream.begin();
  try {
    const data = await requestRaw(nc, subject, JSON.stringify(body), o, stream, seq);
    return assertValid(`reply on ${subject}`, replySchema, data);
  } finally {
    stream.end(seq);
  }
}

const TE = new TextEncoder();

/**
 * The idempotency key travels in the body (`"rid": "<stream> <seq> <low>"`), not in a header: a
 * message without headers costs nothing to parse on the serving side. Non-object bodies go without.
 */
const RID_PREFIX = '{"rid":"';
function withRid(payload: string, rid: string): string {
  if (!payload.startsWith("{")) return payload;
  return payload === "{}" ? `{"rid":"${rid}"}` : `{"rid":"${rid}",${payload.slice(1)}`;
}

async function requestRaw(nc: NatsConnection, subject: string, payload: string, o: RequestOptions, stream: ReqStream, seq: number): Promise<unknown> {
  const deadline = performance.now() + o.timeoutMs;
  const retry = o.retry ?? true;
  let attempt = 0;
  let last: FaultlineError | null = null;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) {
      const err = last ?? new RequestTimeoutError(subject, o.timeoutMs);
      transportEvents.emit("giveUp", { subject, attempts: attempt + 1, code: err.code, timeoutMs: o.timeoutMs });
      throw err;
    }
    if (o.signal?.aborted) throw new CancelledError(subject);
    if (nc.isClosed()) throw new ClosedConnectionError(subject);
    let h: MsgHdrs | undefined;
    if (o.trace) (h = headers()).set(TRACE_HEADER, o.trace);
    const bytes = TE.encode(withRid(payload, `${stream.name} ${seq} ${stream.low()}`));
    const per = Math.max(1, Math.min(left, o.attemptMs ?? 2000));
    let msg: Msg;
    try {
      const sent = bytes.length > chunkLimit(nc)
        ? uploadChunks(nc, subject, bytes, h ?? headers(), per)
        : nc.request(subject, bytes, h ? { timeout: per, headers: h } : { timeout: per });
      // a reply sent while we were disconnected is lost: after a reconnect, re-send at once (the server joins it)
      const rc = reconnectsOf(nc);
      let wake!: () => void;
      const back = new Promise<typeof RECONNECTED>((r) => (wake = () => r(RECONNECTED)));
      rc.waiters.add(wake);
      let got: Msg | typeof RECONNECTED;
      try {
        got = await Promise.race([sent, back]);
      } finally {
        rc.waiters.delete(wake);
      }
      if (got === RECONNECTED) {
        sent.catch(() => undefined);
        attempt++;
        transportEvents.emit("retry", { subject, attempt, reason: "disconnected" });
        continue;
      }
      msg = got;
    } catch (err) {
      const noResp = (err instanceof errors.RequestError && err.isNoResponders()) || err instanceof errors.NoRespondersError;
      if (noResp) last = new NoRespondersError(subject, err);
      else if (err instanceof errors.TimeoutError) last = new RequestTimeoutError(subject, Math.round(performance.now() - (deadline - o.timeoutMs)), err);
      else if (err instanceof FaultlineError) last = err;
      else if (nc.isClosed() || err instanceof errors.DrainingConnectionError || err instanceof errors.ClosedConnectionError) throw new ClosedConnectionError(subject, err);
      else last = new RequestTimeoutError(subject, o.timeoutMs, err);
      if (!retry) {
        transportEvents.emit("giveUp", { subject, attempts: 1, code: last.code, timeoutMs: o.timeoutMs });
        throw last;
      }
      attempt++;
      transportEvents.emit("retry", { subject, attempt, reason: noResp ? "no-responders" : nc.isClosed() ? "disconnected" : "timeout" });
      // back off on no-responders (a service restarting, a subscription not yet re-registered)
      if (noResp) await sleep(Math.min(500, 25 * 2 ** Math.min(attempt, 5), Math.max(0, deadline - performance.now())));
      continue;
    }
    if (msg.headers) {
      const remote = msg.headers.get(ERROR_HEADER);
      if (remote) {
        const data = safeJson(msg) as { error?: { path?: string } } | undefined;
        throw new RemoteError(subject, msg.headers.get(FL_CODE_HEADER) || "FL_ERR_REMOTE", remote, data?.error?.path);
      }
      if (isBlobReply(msg)) return JSON.parse(await fetchBlob(nc, msg, Math.max(1000, deadline - performance.now())));
    }
    return safeJson(msg);
  }
}

function safeJson(msg: Msg): unknown {
  try {
    return msg.json();
  } catch {
    return undefined;
  }
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

function parseJson(subject: string, text: string | null): unknown {
  try {
    return JSON.parse(text ?? "");
  } catch {
    throw new ValidationError(`message on ${subject}`, "", "body is not JSON");
  }
}

export interface Reply {
  data: string;
  headers?: MsgHdrs;
}

function errorReply(err: unknown): Reply {
  const fe = err instanceof FaultlineError ? err : new FaultlineError("FL_ERR_INTERNAL", String((err as Error)?.message ?? err));
  const h = headers();
  h.set(ERROR_HEADER, fe.message.replace(/[\r\n]/g, " "));
  h.set(ERROR_CODE_HEADER, String(httpStatusOf(fe.code)));
  h.set(FL_CODE_HEADER, fe.code);
  return { data: JSON.stringify({ error: fe.toJSON() }), headers: h };
}

/** Outcomes of idempotent requests, per requester stream: in progress (with joiners) or done. */
class Dedup {
  readonly #streams = new Map<string, Map<number, { reply: Reply | null; joiners: Msg[] }>>();
  duplicates = 0;
  /** fresh: first sight, run it and call done; otherwise it was answered (or joined the one in progress). */
  claim(msg: Msg, header: string): { fresh: boolean; done: (r: Reply) => void } | null {
    const [name, s, l] = header.split(" ");
    const seq = Number(s);
    const low = Number(l);
    if (!name || !Number.isFinite(seq)) return null;
    let st = this.#streams.get(name);
    if (!st) this.#streams.set(name, (st = new Map()));
    const seen = st.get(seq);
    if (seen) {
      this.duplicates++;
      if (seen.reply) respond(msg, seen.reply);
      else seen.joiners.push(msg);
      return { fresh: false, done: () => undefined };
    }
    // forget what the requester will not ask for again
    for (const [k, v] of st) if (k < low && v.reply) st.delete(k);
    if (st.size > 50_000) for (const [k, v] of st) if (v.reply && st.size > 25_000) st.delete(k);
    const entry = { reply: null as Reply | null, joiners: [] as Msg[] };
    st.set(seq, entry);
    return {
      fresh: true,
      done: (r) => {
        entry.reply = r;
        for (const j of entry.joiners) respond(j, r);
        entry.joiners = [];
      },
    };
  }
}

function respond(msg: Msg, r: Reply): void {
  if (!msg.reply) return;
  try {
    msg.respond(r.data, r.headers ? { headers: r.headers } : undefined);
  } catch {
    /* connection closing: the requester retries */
  }
}

export interface ServeOptions {
  /** queue group: one member answers. @default "q" */
  queue?: string;
  /** the VM this subscription is for: a body naming another VM is rejected */
  vm?: string;
}

/**
 * Serves requests on `subject`: validates the body, runs `handler` once per idempotent request id,
 * replies with its JSON or with an error. A bad message is answered (if it has a reply subject) and
 * logged; the subscription lives on.
 */
export function serve<S extends TSchema>(
  nc: NatsConnection,
  log: Logger,
  subject: string,
  schema: S,
  handler: (body: Static<S>, msg: Msg) => unknown,
  o: ServeOptions = {},
): Subscription {
  const dedup = new Dedup();
  const chunks = new ChunkAssembler();
  const queue = o.queue ?? "q";
  return nc.subscribe(subject, {
    ...(queue ? { queue } : {}),
    callback: (err, msg) => {
      if (err) return void log.error({ err, subject }, "subscription error");
      let text: string | null;
      if (msg.headers?.get(CHUNK_HEADER)) {
        text = chunks.add(msg);
        if (text === null) return; // a chunk, acknowledged; the last one carries the request
      } else text = msg.data.length ? msg.string() : "";
      // the idempotency key leads the body (`{"rid":"<stream> <seq> <low>",...}`): cut it from the text,
      // so the parsed body is exactly what the schema describes
      let rid: string | null = null;
      if (text.startsWith(RID_PREFIX)) {
        const q = text.indexOf('"', RID_PREFIX.length);
        if (q > 0) {
          rid = text.slice(RID_PREFIX.length, q);
          text = text[q + 1] === "," ? `{${text.slice(q + 2)}` : `{${text.slice(q + 1)}`;
        }
      }
      const slot = rid === null ? null : dedup.claim(msg, rid);
      if (slot && !slot.fresh) return;
      const finish = (r: Reply) => {
        respond(msg, r);
        slot?.done(r);
      };
      const fail = (e: unknown) => {
        const level = e instanceof ClosedConnectionError || e instanceof CancelledError ? "debug" : e instanceof ValidationError || e instanceof NotFoundError ? "warn" : "error";
        log[level]({ err: e, subject: msg.subject }, "request failed");
        finish(errorReply(e));
      };
      const ok = (out: unknown) => finish(offerBlob(nc, JSON.stringify(out ?? { ok: true })));
      try {
        const body = assertValid(`message on ${msg.subject}`, schema, parseJson(msg.subject, text));
        const vm = (body as { vm?: unknown }).vm;
        if (o.vm !== undefined && vm !== undefined && vm !== o.vm) {
          throw new ValidationError(`message on ${msg.subject}`, "/vm", `the body names VM ${String(vm)} but the subject is VM ${o.vm}'s`);
        }
        const out = handler(body, msg);
        if (out instanceof Promise) out.then(ok).catch(fail);
        else ok(out);
      } catch (e) {
        fail(e);
      }
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
  o: ServeOptions = {},
): Subscription {
  // events go to every subscriber (no queue group): each interested service sees them
  return serve(nc, log, subject, schema, (b, m) => {
    handler(b, m);
    return undefined;
  }, { ...o, queue: o.queue ?? "" });
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
