/**
 * Where the api keeps runs: JetStream (KV bucket for records, object store for results) when the
 * NATS server has it, else this process's memory, with one warning that runs will not survive a
 * restart of the api.
 */
import type { Logger } from "@faultline/shared";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { StoreError, storeOp, type RunStore } from "./store-core.ts";
import { JetStreamRunStore } from "./store-jetstream.ts";
import { MemoryRunStore } from "./store-memory.ts";

export {
  RUN_STATUSES, RunRecordSchema, StoreError,
  type ListQuery, type RunPage, type RunRecord, type RunRecordStatus, type RunStore,
} from "./store-core.ts";
export { JetStreamRunStore } from "./store-jetstream.ts";
export { MemoryRunStore } from "./store-memory.ts";

export const DEFAULT_BUCKET = "faultline-runs";
export const DEFAULT_RESULTS = "faultline-results";
export const DEFAULT_MAX_RUNS = 1000;

export interface RunStoreOptions {
  /** KV bucket of the records; @default "faultline-runs" (results then go to "faultline-results", else to "<bucket>-results") */
  bucket?: string;
  /** finished runs kept by `prune`; @default 1000 */
  maxRuns?: number;
  log: Logger;
  /** prepended to both names (one server, several deployments or test files); @default "" */
  prefix?: string;
}

const NAME = /^[-\w]+$/;

/** Opens the JetStream store when the server runs JetStream, else the memory store. */
export async function openRunStore(nc: NatsConnection, o: RunStoreOptions): Promise<RunStore> {
  const prefix = o.prefix ?? "";
  const base = o.bucket ?? DEFAULT_BUCKET;
  const bucket = `${prefix}${base}`;
  const results = `${prefix}${base === DEFAULT_BUCKET ? DEFAULT_RESULTS : `${base}-results`}`;
  const maxRuns = o.maxRuns ?? DEFAULT_MAX_RUNS;
  if (!NAME.test(bucket) || !NAME.test(results)) throw new StoreError("open", `bucket names may hold only letters, digits, - and _: ${bucket}, ${results}`);
  if (!Number.isInteger(maxRuns) || maxRuns < 0) throw new StoreError("open", `maxRuns must be an integer >= 0, not ${maxRuns}`);
  if (!(await hasJetStream(nc))) {
    o.log.warn(
      { store: "memory" },
      "NATS server without JetStream: runs are kept in memory and will not survive an api restart (start nats-server with -js, e.g. `nats-server -js -sd /var/lib/nats`)",
    );
    return new MemoryRunStore(maxRuns);
  }
  const store = await JetStreamRunStore.open(nc, { bucket, results, maxRuns, log: o.log });
  o.log.info({ store: "jetstream", bucket, results, maxRuns }, "runs persisted in JetStream");
  return store;
}

/** The server announces JetStream in its INFO; the account may still lack it, which the API answers. */
async function hasJetStream(nc: NatsConnection): Promise<boolean> {
  if (nc.info?.jetstream !== true) return false;
  return storeOp("open", async () => {
    try {
      await jetstreamManager(nc);
      return true;
    } catch (err) {
      if ((err as Error)?.name === "JetStreamNotEnabled") return false;
      throw err;
    }
  });
}
