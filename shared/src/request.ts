/**
 * Request/reply that survives a reconnect. Requests are idempotent: each carries
 * `"rid": "<stream> <seq> <low>"` at the head of its JSON body and is re-sent (same id) after an attempt
 * timeout, a no-responders answer (with back-off) or, at once, a reconnect, until its deadline; the
 * serving side (serve.ts) runs it once. `<low>` is the requester's lowest sequence still in flight, so
 * the server forgets outcomes the requester can no longer ask for. Replies and bodies larger than the
 * server's `max_payload` are chunked (chunks.ts).
 */
import { errors, headers, type MsgHdrs, type NatsConnection, type Msg } from "@nats-io/transport-node";
import type { Static, TSchema } from "@sinclair/typebox";
import { CancelledError, ClosedConnectionError, FaultlineError, NoRespondersError, RemoteError, RequestTimeoutError } from "./errors.ts";
import { assertValid } from "./schemas/validate.ts";
import { chunkLimit, fetchBlob, isBlobReply, uploadChunks } from "./chunks.ts";
import { ERROR_HEADER, FL_CODE_HEADER, TRACE_HEADER, transportEvents } from "./wire.ts";

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
export const RID_PREFIX = '{"rid":"';
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

