/**
 * What both run stores share: the record shape and its schema (checked on every read back), the
 * typed store error, the opaque list cursor, newest-first paging and the retention choice.
 */
import { FaultlineError, ScenarioSchema, ValidationError, assertValid, withDefaults, type Logger, type Scenario } from "@faultline/shared";
import { Type, type Static } from "@sinclair/typebox";

export type RunRecordStatus = "starting" | "running" | "completed" | "failed" | "aborted" | "cancelled";

/** A run without its result (results live apart, so records stay small and listing stays cheap). */
export interface RunRecord {
  id: string;
  status: RunRecordStatus;
  scenario: Scenario;
  createdAt: string;
  t0: number | null;
  endedAt: string | null;
  error: { code: string; message: string; service?: string } | null;
  vcpus: Array<{ state: string; pagesTouched: number }>;
  /** the api instance that drives the run (another api does not abort a run whose driver is alive) */
  api?: string;
}

export interface RunPage {
  runs: RunRecord[];
  /** pass back as `cursor` for the next (older) page; null on the last page */
  nextCursor: string | null;
}

export interface ListQuery {
  /** page size, an integer >= 1 */
  limit: number;
  cursor?: string;
  status?: RunRecordStatus;
}

/**
 * Where runs are kept. Every method that talks to NATS throws `StoreError` (FL_ERR_STORE) on failure.
 * A failed `put` changes nothing in the store: the caller keeps its in-memory copy of the run as the
 * truth and may retry the `put` later (the record is whole each time, so a retry is idempotent).
 */
export interface RunStore {
  readonly kind: "jetstream" | "memory";
  /** upsert the record (key = run id); the result is never part of it */
  put(rec: RunRecord): Promise<void>;
  get(id: string): Promise<RunRecord | null>;
  /** newest first (run ids sort by creation time); the cursor is stable under inserts of newer runs */
  list(q: ListQuery): Promise<RunPage>;
  /** any size (stored in chunks, never one NATS message) */
  putResult(id: string, result: unknown): Promise<void>;
  getResult(id: string): Promise<unknown | null>;
  /** record and result; false if there was no record */
  delete(id: string): Promise<boolean>;
  /** keeps the newest `maxRuns` finished runs, deletes older finished ones; never starting/running ones */
  prune(): Promise<number>;
  close(): Promise<void>;
}

export const RUN_STATUSES = ["starting", "running", "completed", "failed", "aborted", "cancelled"] as const satisfies readonly RunRecordStatus[];
const UNFINISHED: ReadonlySet<RunRecordStatus> = new Set(["starting", "running"]);

export const RunRecordSchema = Type.Object({
  id: Type.String({ pattern: "^r[0-9a-z]+$" }),
  status: Type.Union(RUN_STATUSES.map((s) => Type.Literal(s))),
  scenario: ScenarioSchema,
  createdAt: Type.String({ minLength: 1 }),
  t0: Type.Union([Type.Number(), Type.Null()]),
  endedAt: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([
    Type.Object({ code: Type.String(), message: Type.String(), service: Type.Optional(Type.String()) }),
    Type.Null(),
  ]),
  vcpus: Type.Array(Type.Object({ state: Type.String(), pagesTouched: Type.Integer({ minimum: 0 }) })),
  api: Type.Optional(Type.String()),
});
// the schema and the interface must describe the same thing
const _same: RunRecord = {} as Static<typeof RunRecordSchema>;
void _same;

/** Run ids are `r<base36 ms><hex>`: lexical order is creation order, and they are safe KV keys. */
export const RUN_ID = /^r[0-9a-z]+$/;

/** A store operation failed (NATS down, JetStream error, store closed). */
export class StoreError extends FaultlineError {
  readonly op: string;
  constructor(op: string, message: string, cause?: unknown) {
    super("FL_ERR_STORE", `run store: ${op}: ${message}`, cause);
    this.name = "StoreError";
    this.op = op;
  }
}

/** Runs `fn`, turning any failure into a StoreError naming the operation. */
export async function storeOp<T>(op: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StoreError || err instanceof ValidationError) throw err;
    throw new StoreError(op, (err as Error)?.message ?? String(err), err);
  }
}

/** Validates a record on its way in (a caller bug must not reach the store). */
export function checkRecord(rec: unknown): RunRecord {
  return assertValid("run record", RunRecordSchema, rec);
}

/**
 * Parses a stored record; null (with one warn line) when it is not JSON, not a run record, or filed
 * under another key: a corrupt or foreign entry is skipped, never fatal. Scenario defaults are
 * applied first, so a record written before a scenario field (with a default) existed still reads.
 */
export function parseRecord(key: string, bytes: Uint8Array | string, log: Logger): RunRecord | null {
  try {
    const text = typeof bytes === "string" ? bytes : new TextDecoder().decode(bytes);
    const rec: RunRecord = withDefaults("run record", RunRecordSchema, JSON.parse(text));
    if (rec.id !== key) throw new Error(`record id ${rec.id} is filed under key ${key}`);
    return rec;
  } catch (err) {
    log.warn({ key, err: (err as Error).message }, "run store: skipping an unreadable entry");
    return null;
  }
}

export function encodeCursor(id: string): string {
  return Buffer.from(id, "utf8").toString("base64url");
}

export function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, "base64url").toString("utf8");
  if (!RUN_ID.test(id) || encodeCursor(id) !== cursor) throw new ValidationError("query", "/cursor", "not a cursor from this API");
  return id;
}

/** One page, newest first, of the runs older than the cursor (optionally of one status). */
export function pageOf(records: Iterable<RunRecord>, q: ListQuery): RunPage {
  if (!Number.isInteger(q.limit) || q.limit < 1) throw new ValidationError("query", "/limit", "must be an integer >= 1");
  const before = q.cursor === undefined ? null : decodeCursor(q.cursor);
  const match = [...records]
    .filter((r) => (q.status === undefined || r.status === q.status) && (before === null || r.id < before))
    .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const runs = match.slice(0, q.limit).map((r) => structuredClone(r));
  const last = runs.at(-1);
  return { runs, nextCursor: match.length > q.limit && last ? encodeCursor(last.id) : null };
}

/** The finished runs beyond the newest `maxRuns` finished ones, oldest first. */
export function pruneVictims(records: Iterable<RunRecord>, maxRuns: number): string[] {
  const finished = [...records].filter((r) => !UNFINISHED.has(r.status)).map((r) => r.id).sort();
  return finished.slice(0, Math.max(0, finished.length - maxRuns));
}

export function encodeResult(result: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(result));
}
