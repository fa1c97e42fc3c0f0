/**
 * Payloads larger than the server's `max_payload` (1 MiB by default), both ways:
 * - a big request body is uploaded as numbered chunks to the same subject (`Faultline-Chunk: <id> <i> <n>`);
 *   the serving side acknowledges each and handles the request when the last one arrives;
 * - a big reply is kept by the responder as a blob and answered with a pointer (`Faultline-Blob`);
 *   the requester fetches its pieces from the responder's blob subject.
 * Used by `request`/`serve` (nats.ts), so no caller ever sees a MAX_PAYLOAD error.
 */
import { headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import { FaultlineError } from "./errors.ts";

export const CHUNK_HEADER = "Faultline-Chunk";
export const BLOB_HEADER = "Faultline-Blob";
/** room for headers and the envelope */
const HEADROOM = 64 * 1024;
const BLOB_TTL_MS = 120_000;

/** the server's max_payload, remembered: `nc.info` is undefined while the connection is down */
const maxPayload = new WeakMap<NatsConnection, number>();

export function chunkLimit(nc: NatsConnection): number {
  const now = nc.info?.max_payload;
  if (now) maxPayload.set(nc, now);
  const max = now ?? maxPayload.get(nc) ?? 1024 * 1024;
  return Math.max(16 * 1024, max - HEADROOM);
}

class PayloadError extends FaultlineError {
  constructor(message: string) {
    super("FL_ERR_PAYLOAD", message);
    this.name = "PayloadError";
  }
}

/** Sends `bytes` as chunks; resolves with the reply to the last one (the handler's reply). */
export async function uploadChunks(nc: NatsConnection, subject: string, bytes: Uint8Array, h: MsgHdrs, perMs: number): Promise<Msg> {
  const size = chunkLimit(nc);
  const n = Math.ceil(bytes.length / size);
  const id = randomBytes(6).toString("hex");
  for (let i = 0; i < n; i++) {
    const ch = headers();
    for (const [k, v] of h) ch.set(k, v[0] ?? "");
    ch.set(CHUNK_HEADER, `${id} ${i} ${n}`);
    const piece = bytes.subarray(i * size, Math.min(bytes.length, (i + 1) * size));
    const m = await nc.request(subject, piece, { timeout: perMs, headers: ch });
    if (i === n - 1) return m;
  }
  throw new PayloadError("empty upload");
}

/** The serving side of uploads: pieces by upload id, expired after a while. */
export class ChunkAssembler {
  readonly #parts = new Map<string, { pieces: Array<Uint8Array | undefined>; at: number }>();

  /** Returns the whole body when `msg` completes an upload; otherwise acknowledges the piece and returns null. */
  add(msg: Msg): string | null {
    const [id, i, n] = (msg.headers?.get(CHUNK_HEADER) ?? "").split(" ");
    const idx = Number(i);
    const total = Number(n);
    if (!id || !Number.isInteger(idx) || !Number.isInteger(total) || total < 1 || total > 4096 || idx < 0 || idx >= total) {
      if (msg.reply) msg.respond(JSON.stringify({ error: { code: "FL_ERR_PAYLOAD", message: "bad chunk header" } }), { headers: errorHeaders("bad chunk header") });
      return null;
    }
    const now = performance.now();
    for (const [k, v] of this.#parts) if (now - v.at > BLOB_TTL_MS) this.#parts.delete(k);
    let p = this.#parts.get(id);
    if (!p) this.#parts.set(id, (p = { pieces: new Array<Uint8Array | undefined>(total), at: now }));
    p.pieces[idx] = msg.data.slice();
    if (idx < total - 1) {
      if (msg.reply) msg.respond(JSON.stringify({ chunk: idx }));
      return null;
    }
    this.#parts.delete(id);
    if (p.pieces.some((x) => x === undefined)) {
      if (msg.reply) msg.respond(JSON.stringify({ error: { code: "FL_ERR_PAYLOAD", message: "chunk missing" } }), { headers: errorHeaders("chunk missing") });
      return null;
    }
    return Buffer.concat(p.pieces as Uint8Array[]).toString("utf8");
  }
}

function errorHeaders(message: string): MsgHdrs {
  const h = headers();
  h.set("Nats-Service-Error", message);
  h.set("Nats-Service-Error-Code", "400");
  h.set("Faultline-Error-Code", "FL_ERR_PAYLOAD");
  return h;
}

interface Blob {
  pieces: Uint8Array[];
  at: number;
}

class BlobHost {
  readonly subject: string;
  readonly blobs = new Map<string, Blob>();
  readonly sub: Subscription;
  constructor(nc: NatsConnection) {
    this.subject = `fl.blob.${randomBytes(8).toString("hex")}`;
    const sweep = setInterval(() => {
      const now = performance.now();
      for (const [k, v] of this.blobs) if (now - v.at > BLOB_TTL_MS) this.blobs.delete(k);
    }, BLOB_TTL_MS / 4);
    sweep.unref();
    void nc.closed().then(() => clearInterval(sweep));
    this.sub = nc.subscribe(this.subject, {
      callback: (_e, m) => {
        let q: { id?: string; i?: number } = {};
        try {
          q = m.json();
        } catch {
          /* answered below */
        }
        const b = q.id ? this.blobs.get(q.id) : undefined;
        const piece = b && typeof q.i === "number" ? b.pieces[q.i] : undefined;
        if (!piece) return void (m.reply && m.respond(new Uint8Array(0), { headers: errorHeaders("no such blob piece") }));
        // kept until its time is up (not deleted after the last piece): a piece may be asked for again
        m.respond(piece);
      },
    });
  }
}
const hosts = new WeakMap<NatsConnection, BlobHost>();

/** The reply to send: `data` itself, or a pointer to it kept as a blob when it is too large for one message. */
export function offerBlob(nc: NatsConnection, data: string): { data: string; headers?: MsgHdrs } {
  const limit = chunkLimit(nc);
  if (data.length <= limit / 4 || Buffer.byteLength(data) <= limit) return { data };
  let host = hosts.get(nc);
  if (!host) hosts.set(nc, (host = new BlobHost(nc)));
  const now = performance.now();
  for (const [k, v] of host.blobs) if (now - v.at > BLOB_TTL_MS) host.blobs.delete(k);
  const bytes = Buffer.from(data, "utf8");
  const pieces: Uint8Array[] = [];
  for (let o = 0; o < bytes.length; o += limit) pieces.push(bytes.subarray(o, Math.min(bytes.length, o + limit)));
  const id = randomBytes(6).toString("hex");
  host.blobs.set(id, { pieces, at: now });
  const h = headers();
  h.set(BLOB_HEADER, "1");
  return { data: JSON.stringify({ subject: host.subject, id, n: pieces.length, bytes: bytes.length }), headers: h };
}

export function isBlobReply(msg: Msg): boolean {
  return msg.headers?.get(BLOB_HEADER) === "1";
}

/** Fetches a blob reply's pieces (each re-asked until the deadline) and returns the whole text. */
export async function fetchBlob(nc: NatsConnection, msg: Msg, timeoutMs: number): Promise<string> {
  const ptr = msg.json<{ subject: string; id: string; n: number; bytes: number }>();
  const deadline = performance.now() + timeoutMs;
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < ptr.n; i++) {
    let m: Msg | null = null;
    while (!m) {
      const left = deadline - performance.now();
      if (left <= 0) throw new PayloadError(`blob ${ptr.id}: piece ${i} of ${ptr.n} not received within ${Math.round(timeoutMs)} ms`);
      try {
        m = await nc.request(ptr.subject, JSON.stringify({ id: ptr.id, i }), { timeout: Math.max(1, Math.min(left, 2000)) });
      } catch (err) {
        if (nc.isClosed()) throw new PayloadError(`blob ${ptr.id}: connection closed (${(err as Error).message})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    if (m.headers?.get("Nats-Service-Error")) throw new PayloadError(`blob ${ptr.id} piece ${i}: ${m.headers.get("Nats-Service-Error")}`);
    pieces.push(m.data.slice());
  }
  const all = Buffer.concat(pieces);
  if (all.length !== ptr.bytes) throw new PayloadError(`blob ${ptr.id}: got ${all.length} of ${ptr.bytes} bytes`);
  return all.toString("utf8");
}
