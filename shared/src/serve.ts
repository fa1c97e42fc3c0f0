/**
 * Serving requests and events: validated handlers that answer errors micro-style
 * (`Nats-Service-Error`, `Nats-Service-Error-Code` headers) and keep serving. An idempotent request
 * (its body led by `"rid"`, see request.ts) runs once: a duplicate joins the one in progress or gets
 * the first outcome. Chunked uploads are assembled here; big replies become blobs (chunks.ts).
 */
import { headers, type MsgHdrs, type NatsConnection, type Msg, type Subscription } from "@nats-io/transport-node";
import type { Static, TSchema } from "@sinclair/typebox";
import type { Logger } from "pino";
import { CancelledError, ClosedConnectionError, FaultlineError, NotFoundError, ValidationError, httpStatusOf } from "./errors.ts";
import { assertValid } from "./schemas/validate.ts";
import { CHUNK_HEADER, ChunkAssembler, offerBlob } from "./chunks.ts";
import { ERROR_CODE_HEADER, ERROR_HEADER, FL_CODE_HEADER } from "./wire.ts";
import { RID_PREFIX } from "./request.ts";

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

