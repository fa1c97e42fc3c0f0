/**
 * The run store on JetStream: records in a KV bucket (key = run id, one revision kept), results in an
 * object store (chunked, so a result of any size never meets max_payload), both on file storage.
 *
 * This api process is the only writer. It reads the bucket once when it opens and then keeps an index
 * of the (small) records in memory, updated by its own writes, so `list` and `prune` never read the
 * bucket or a result; `get` and `getResult` always read the server.
 */
import type { Logger } from "@faultline/shared";
import { StorageType, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type Bucket, type KV } from "@nats-io/kv";
import { Base64UrlPaddedCodec, Objm, type ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  RUN_ID, StoreError, checkRecord, encodeResult, pageOf, parseRecord, pruneVictims, storeOp,
  type ListQuery, type RunPage, type RunRecord, type RunStore,
} from "./store-core.ts";

export interface JetStreamStoreOptions {
  bucket: string;
  results: string;
  maxRuns: number;
  log: Logger;
}

/** Deletes in flight at once during a prune. */
const PRUNE_BATCH = 16;

/** A record longer than this keeps its scenario in the object store (a KV message must fit max_payload). */
const SCENARIO_INLINE_MAX = 256 * 1024;
const SCENARIO_REF = "$faultline.scenarioObject";
const scenarioObject = (id: string) => `${id}.scenario`;

export class JetStreamRunStore implements RunStore {
  readonly kind = "jetstream" as const;
  readonly #kv: KV;
  readonly #os: ObjectStore;
  readonly #jsm: JetStreamManager;
  readonly #results: string;
  readonly #log: Logger;
  readonly #maxRuns: number;
  readonly #index = new Map<string, RunRecord>();
  /** runs whose scenario is in the object store */
  readonly #offloaded = new Set<string>();
  #closed = false;

  private constructor(kv: KV, os: ObjectStore, jsm: JetStreamManager, o: JetStreamStoreOptions) {
    this.#kv = kv;
    this.#os = os;
    this.#jsm = jsm;
    this.#results = o.results;
    this.#log = o.log;
    this.#maxRuns = o.maxRuns;
  }

  /** Creates the bucket and the object store if missing (file storage), then loads the index. */
  static async open(nc: NatsConnection, o: JetStreamStoreOptions): Promise<JetStreamRunStore> {
    return storeOp("open", async () => {
      const kv = await new Kvm(nc).create(o.bucket, {
        history: 1,
        storage: StorageType.File,
        description: "Faultline run records (key = run id)",
      });
      const os = await new Objm(nc).create(o.results, { storage: StorageType.File, description: "Faultline run results (name = run id)" });
      const store = new JetStreamRunStore(kv, os, await jetstreamManager(nc), o);
      await store.#load();
      return store;
    });
  }

  /** Every key's last entry, in stream order; unreadable entries are skipped with a warn. */
  async #load(): Promise<void> {
    const it = await this.#kv.history();
    const entries = new Map<string, Uint8Array>();
    for await (const e of it) {
      if (e.operation !== "PUT") entries.delete(e.key);
      else entries.set(e.key, e.value);
    }
    for (const [key, value] of entries) {
      const rec = parseRecord(key, await this.#hydrate(key, value), this.#log);
      if (rec) this.#index.set(rec.id, rec);
    }
    this.#log.debug({ runs: this.#index.size }, "run store loaded");
  }

  #open(op: string): void {
    if (this.#closed) throw new StoreError(op, "the store is closed");
  }

  async put(rec: RunRecord): Promise<void> {
    this.#open("put");
    const copy = structuredClone(checkRecord(rec));
    let json = JSON.stringify(copy);
    if (json.length > SCENARIO_INLINE_MAX) {
      // a big scenario (many drops, poison pages, signals) would not fit one KV message: it goes to the
      // object store once, and the record points at it
      const name = scenarioObject(copy.id);
      if (!this.#offloaded.has(copy.id)) {
        await storeOp(`put ${rec.id}`, () => this.#os.putBlob({ name }, new TextEncoder().encode(JSON.stringify(copy.scenario))));
        this.#offloaded.add(copy.id);
      }
      json = JSON.stringify({ ...copy, scenario: { [SCENARIO_REF]: name } });
    }
    await storeOp(`put ${rec.id}`, () => this.#kv.put(copy.id, json));
    this.#index.set(copy.id, copy);
  }

  async get(id: string): Promise<RunRecord | null> {
    this.#open("get");
    if (!RUN_ID.test(id)) return null;
    const e = await storeOp(`get ${id}`, () => this.#kv.get(id));
    if (!e || e.operation !== "PUT") return null;
    return parseRecord(id, await this.#hydrate(id, e.value), this.#log);
  }

  /** The record's text with its scenario back in place when it was kept in the object store. */
  async #hydrate(id: string, value: Uint8Array): Promise<string> {
    const text = new TextDecoder().decode(value);
    if (!text.includes(SCENARIO_REF)) return text;
    try {
      const raw = JSON.parse(text) as { scenario?: Record<string, unknown> };
      const name = raw.scenario?.[SCENARIO_REF];
      if (typeof name !== "string") return text;
      const bytes = await this.#os.getBlob(name);
      if (!bytes) return text; // parseRecord then skips it, with a warning
      raw.scenario = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
      this.#offloaded.add(id);
      return JSON.stringify(raw);
    } catch {
      return text;
    }
  }

  async list(q: ListQuery): Promise<RunPage> {
    this.#open("list");
    return pageOf(this.#index.values(), q);
  }

  async putResult(id: string, result: unknown): Promise<void> {
    this.#open("putResult");
    if (!RUN_ID.test(id)) throw new StoreError("putResult", `${JSON.stringify(id)} is not a run id`);
    const bytes = encodeResult(result);
    await storeOp(`putResult ${id}`, () => this.#os.putBlob({ name: id }, bytes));
  }

  /** null when there is none, or when it is not JSON (warned, like a corrupt record). */
  async getResult(id: string): Promise<unknown | null> {
    this.#open("getResult");
    if (!RUN_ID.test(id)) return null;
    const bytes = await storeOp(`getResult ${id}`, () => this.#os.getBlob(id));
    if (!bytes) return null;
    try {
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (err) {
      this.#log.warn({ run: id, err: (err as Error).message }, "run store: skipping an unreadable result");
      return null;
    }
  }

  async delete(id: string): Promise<boolean> {
    this.#open("delete");
    if (!RUN_ID.test(id)) return false;
    const existed = this.#index.has(id) || (await this.get(id)) !== null;
    if (!existed) return false; // a purge of a key that never was would leave a marker for ever
    await storeOp(`delete ${id}`, async () => {
      // the object store keeps a "deleted" meta entry per name: drop it too ($O.<store>.M.<name>, ADR-20)
      for (const name of this.#offloaded.has(id) ? [id, scenarioObject(id)] : [id]) {
        if ((await this.#os.delete(name)).success) {
          await this.#jsm.streams.purge(`OBJ_${this.#results}`, { filter: `$O.${this.#results}.M.${Base64UrlPaddedCodec.encode(name)}` });
        }
      }
      await this.#kv.purge(id);
    });
    this.#index.delete(id);
    this.#offloaded.delete(id);
    return existed;
  }

  /**
   * Deletes the finished runs beyond the newest `maxRuns`, then drops the purge markers the deletes
   * left in the bucket's stream (the server keeps one per purged key otherwise, for ever).
   */
  async prune(): Promise<number> {
    this.#open("prune");
    const victims = pruneVictims(this.#index.values(), this.#maxRuns);
    for (let i = 0; i < victims.length; i += PRUNE_BATCH) {
      await Promise.all(victims.slice(i, i + PRUNE_BATCH).map((id) => this.delete(id)));
    }
    if (victims.length > 0) await storeOp("prune", () => (this.#kv as Bucket).purgeDeletes(0));
    if (victims.length > 0) this.#log.info({ deleted: victims.length, kept: this.#maxRuns }, "run store pruned");
    return victims.length;
  }

  /** Stops using the store; the NATS connection belongs to the caller and stays open. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#index.clear();
  }
}
