/**
 * Runs in the run store (JetStream when the server has it): the record on every status change, the
 * result and the record when a run ends (retried until the store takes it; the run stays in memory
 * meanwhile), and, when an api starts, the runs a previous api left behind.
 */
import { PingReply, subjects, type Bus, type Logger, type Result } from "@faultline/shared";
import type { RunRecord, RunStore } from "./store.ts";

/** What is recorded of a run. */
export interface Recordable {
  id: string;
  status: RunRecord["status"];
  scenario: RunRecord["scenario"];
  createdAt: string;
  t0: number | null;
  endedAt: string | null;
  error: RunRecord["error"];
  vcpus: RunRecord["vcpus"];
  result: Result | null;
  /** DELETEd: a pending retry must not write it back */
  deleted?: boolean;
}

export class RunRecorder {
  readonly #bus: Bus;
  readonly #log: Logger;
  readonly #store: RunStore;
  /** this api's instance: written into each record, so another api can tell whose run it is */
  readonly #instance: string;

  constructor(bus: Bus, log: Logger, store: RunStore, instance: string) {
    this.#bus = bus;
    this.#log = log;
    this.#store = store;
    this.#instance = instance;
  }

  recordOf(run: Recordable): RunRecord {
    return {
      id: run.id, status: run.status, scenario: run.scenario, createdAt: run.createdAt, t0: run.t0, endedAt: run.endedAt,
      error: run.error, vcpus: run.vcpus, api: this.#instance,
    };
  }

  /** The record as it is now (a status change); a failure is logged, the run lives on in memory. */
  async persist(run: Recordable): Promise<void> {
    try {
      await this.#store.put(this.recordOf(run));
    } catch (err) {
      this.#log.warn({ err, run: run.id }, "run store put failed (kept in memory)");
    }
  }

  /**
   * An ended run: result first, then the record (a reader never finds an ended record without its
   * result). If the store fails, retried every 5 s until it takes it (`onRecorded` then).
   */
  async recordEnded(run: Recordable, onRecorded: () => void): Promise<boolean> {
    if (await this.#record(run)) return true;
    // one attempt at a time, the next 5 s after the last one ended; none once the run is deleted
    const again = () => {
      setTimeout(() => {
        if (run.deleted) return;
        void this.#record(run).then((ok) => (ok ? onRecorded() : again()));
      }, 5000).unref();
    };
    again();
    return false;
  }

  async #record(run: Recordable): Promise<boolean> {
    try {
      if (run.result) await this.#store.putResult(run.id, run.result);
      await this.#store.put(this.recordOf(run));
      return true;
    } catch (err) {
      this.#log.error({ err, run: run.id }, "could not record the run (kept in memory, retried)");
      return false;
    }
  }

  /**
   * Runs recorded as starting or running that no live api drives (`driving` says which this api
   * drives) end `aborted`, naming the api: the services tore their VMs down when the lease lapsed.
   */
  async recover(driving: (id: string) => boolean): Promise<number> {
    let n = 0;
    for (const status of ["starting", "running"] as const) {
      let cursor: string | undefined;
      do {
        const page = await this.#store.list({ limit: 100, status, ...(cursor ? { cursor } : {}) });
        for (const rec of page.runs) {
          if (driving(rec.id)) continue;
          // another api on the same NATS and store still drives it
          if (rec.api && rec.api !== this.#instance && (await this.#apiAlive(rec.api))) continue;
          rec.status = "aborted";
          rec.endedAt = new Date().toISOString();
          rec.error = { code: "FL_ERR_SERVICE_LOST", service: "api", message: "the api restarted while the run was in progress; its VM was torn down when the lease lapsed" };
          await this.#store.put(rec);
          n++;
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    }
    if (n) this.#log.warn({ runs: n }, "runs left by a previous api marked aborted");
    return n;
  }

  #apiAlive(instance: string): Promise<boolean> {
    return this.#bus.request(subjects.pingInstance("api", instance), {}, PingReply, { timeoutMs: 1000, retry: false }).then(() => true, () => false);
  }
}
