/** TEMPORARY in-memory run store (replaced by the JetStream store). */
import type { Logger, Scenario } from "@faultline/shared";
import type { NatsConnection } from "@nats-io/transport-node";

export interface RunRecord {
  id: string;
  status: "starting" | "running" | "completed" | "failed" | "aborted" | "cancelled";
  scenario: Scenario;
  createdAt: string;
  t0: number | null;
  endedAt: string | null;
  error: { code: string; message: string; service?: string } | null;
  vcpus: Array<{ state: string; pagesTouched: number }>;
}
export interface RunPage {
  runs: RunRecord[];
  nextCursor: string | null;
}
export interface RunStore {
  readonly kind: "jetstream" | "memory";
  put(rec: RunRecord): Promise<void>;
  get(id: string): Promise<RunRecord | null>;
  list(q: { limit: number; cursor?: string; status?: RunRecord["status"] }): Promise<RunPage>;
  putResult(id: string, result: unknown): Promise<void>;
  getResult(id: string): Promise<unknown | null>;
  delete(id: string): Promise<boolean>;
  prune(): Promise<number>;
  close(): Promise<void>;
}

export async function openRunStore(_nc: NatsConnection, o: { maxRuns?: number; log: Logger }): Promise<RunStore> {
  const recs = new Map<string, RunRecord>();
  const results = new Map<string, unknown>();
  const max = o.maxRuns ?? 1000;
  return {
    kind: "memory",
    put: async (r) => void recs.set(r.id, structuredClone(r)),
    get: async (id) => structuredClone(recs.get(id) ?? null),
    list: async (q) => {
      const all = [...recs.values()].filter((r) => !q.status || r.status === q.status).sort((a, b) => (a.id < b.id ? 1 : -1));
      const from = q.cursor ? all.findIndex((r) => r.id < q.cursor!) : 0;
      const page = from < 0 ? [] : all.slice(from, from + q.limit);
      return { runs: page, nextCursor: from >= 0 && from + q.limit < all.length ? page.at(-1)!.id : null };
    },
    putResult: async (id, r) => void results.set(id, r),
    getResult: async (id) => results.get(id) ?? null,
    delete: async (id) => results.delete(id) && recs.delete(id),
    prune: async () => {
      const done = [...recs.values()].filter((r) => r.status !== "running" && r.status !== "starting").sort((a, b) => (a.id < b.id ? -1 : 1));
      let n = 0;
      while (done.length - n > max) {
        const r = done[n++]!;
        recs.delete(r.id);
        results.delete(r.id);
      }
      return n;
    },
    close: async () => undefined,
  };
}
