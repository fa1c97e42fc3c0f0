/** The run store without JetStream: maps in this process, gone when the api stops. */
import {
  RUN_ID, StoreError, checkRecord, encodeResult, pageOf, pruneVictims,
  type ListQuery, type RunPage, type RunRecord, type RunStore,
} from "./store-core.ts";

export class MemoryRunStore implements RunStore {
  readonly kind = "memory" as const;
  readonly #records = new Map<string, RunRecord>();
  /** kept encoded, as the JetStream store keeps them: the caller's object is not aliased */
  readonly #results = new Map<string, Uint8Array>();
  readonly #maxRuns: number;
  #closed = false;

  constructor(maxRuns: number) {
    this.#maxRuns = maxRuns;
  }

  #open(op: string): void {
    if (this.#closed) throw new StoreError(op, "the store is closed");
  }

  async put(rec: RunRecord): Promise<void> {
    this.#open("put");
    this.#records.set(rec.id, structuredClone(checkRecord(rec)));
  }

  async get(id: string): Promise<RunRecord | null> {
    this.#open("get");
    const r = this.#records.get(id);
    return r ? structuredClone(r) : null;
  }

  async list(q: ListQuery): Promise<RunPage> {
    this.#open("list");
    return pageOf(this.#records.values(), q);
  }

  async putResult(id: string, result: unknown): Promise<void> {
    this.#open("putResult");
    if (!RUN_ID.test(id)) throw new StoreError("putResult", `${JSON.stringify(id)} is not a run id`);
    this.#results.set(id, encodeResult(result));
  }

  async getResult(id: string): Promise<unknown | null> {
    this.#open("getResult");
    const b = this.#results.get(id);
    return b ? JSON.parse(new TextDecoder().decode(b)) : null;
  }

  async delete(id: string): Promise<boolean> {
    this.#open("delete");
    this.#results.delete(id);
    return this.#records.delete(id);
  }

  async prune(): Promise<number> {
    this.#open("prune");
    const victims = pruneVictims(this.#records.values(), this.#maxRuns);
    for (const id of victims) await this.delete(id);
    return victims.length;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
