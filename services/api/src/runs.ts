/**
 * Scenario runs: the lifecycle (lifecycle.ts) driven per run, the lease renewed while it lives, its
 * owners watched (liveness.ts), the end (durationMs, all vCPUs done, a lost service, a cancel), the
 * result assembled from whatever reports came back, and every run persisted in the run store
 * (JetStream when the server has it) so a restarted api still serves it.
 */
import {
  BusyError, FAULTLINE_MAX_ACCESSES, NotFoundError, PauseReply, SendReply, ServiceLostError, StallReply, StateError, TestbedMonitor, VcpuStateMsg, VcpuWaitMsg, epochMs, parseSize, subjects, workloadAccesses,
  type Bus, type BusSubscription, type Incident, type Logger, type MemslotOp, type Result, type Scenario, type SignalName, type VcpuSelector,
} from "@faultline/shared";
import { Type } from "@sinclair/typebox";
import { randomBytes } from "node:crypto";
import { CORE, collectReports, renewLease, setupVm, startVm, teardownVm, type Owners } from "./lifecycle.ts";
import { LiveVcpus, type LiveVcpu } from "./live.ts";
import { Liveness } from "./liveness.ts";
import { assembleResult, verdict } from "./result.ts";
import { RunRecorder } from "./recorder.ts";
import type { RunRecord, RunStore } from "./store.ts";

const MemslotReply = Type.Object({ zapped: Type.Integer() });
const DropReply = Type.Object({ dropped: Type.Integer() });

export type RunStatus = RunRecord["status"];
const ENDED: ReadonlySet<RunStatus> = new Set(["completed", "failed", "aborted", "cancelled"]);

export interface Run {
  id: string;
  status: RunStatus;
  scenario: Scenario;
  createdAt: string;
  t0: number | null;
  endedAt: string | null;
  /** the live vCPU view (live.ts); a run read back from the store may lack `blockedIn` */
  vcpus: Array<Omit<LiveVcpu, "blockedIn"> & Partial<Pick<LiveVcpu, "blockedIn">>>;
  result: Result | null;
  error: { code: string; message: string; service?: string } | null;
  done: Promise<void>;
}

interface Live extends Run {
  owners: Owners;
  deleted?: boolean;
  /** the ended run is in the store (until then it stays in memory) */
  recorded?: boolean;
  cancelled: boolean;
  incidents: Incident[];
  live: LiveVcpus;
}

export interface RunManagerOptions {
  /** this api's instance id (answers `fl.svc.api.i.<instance>.ping`) */
  instance: string;
  rpcTimeoutMs: number;
  livenessMs: number;
  leaseMs: number;
  store: RunStore;
  /** accesses (vCPUs × pages) of all the runs this api drives at once. @default FAULTLINE_MAX_ACCESSES */
  maxActiveAccesses?: number;
}

export class RunManager {
  /** runs this api instance drives, and recently ended ones (results are read from the store after that) */
  readonly #live = new Map<string, Live>();
  readonly #bus: Bus;
  readonly #log: Logger;
  readonly #o: RunManagerOptions;
  readonly #liveness: Liveness;
  /** the api's own noise (loop stalls, NATS outages) goes into the results too */
  readonly #monitor: TestbedMonitor;
  readonly store: RunStore;
  readonly #recorder: RunRecorder;

  constructor(bus: Bus, log: Logger, o: RunManagerOptions) {
    this.#bus = bus;
    this.#log = log;
    this.#o = o;
    this.store = o.store;
    this.#monitor = new TestbedMonitor("api", o.instance, log).start(bus);
    this.#liveness = new Liveness(bus, log, o.livenessMs, this.#monitor);
    this.#recorder = new RunRecorder(bus, log, o.store, o.instance);
  }

  /** An api that restarts cannot drive the runs its predecessor started: they end `aborted`, naming the api. */
  recover(): Promise<number> {
    return this.#recorder.recover((id) => this.#live.has(id));
  }

  /** Live or stored run; the result is read from the store for runs this api no longer holds. */
  async get(id: string): Promise<Run> {
    const live = this.#live.get(id);
    if (live) return live;
    const rec = await this.store.get(id);
    if (!rec) throw new NotFoundError("run", id);
    const result = ENDED.has(rec.status) ? ((await this.store.getResult(id)) as Result | null) : null;
    return { ...rec, vcpus: rec.vcpus as Run["vcpus"], result, done: Promise.resolve() };
  }

  /** Like get, without reading the result (a control only needs the scenario and the status). */
  async peek(id: string): Promise<Run> {
    const live = this.#live.get(id);
    if (live) return live;
    const rec = await this.store.get(id);
    if (!rec) throw new NotFoundError("run", id);
    return { ...rec, vcpus: rec.vcpus as Run["vcpus"], result: null, done: Promise.resolve() };
  }

  async list(q: { limit: number; cursor?: string; status?: RunStatus }): Promise<{ runs: Run[]; nextCursor: string | null }> {
    const page = await this.store.list(q);
    const runs = page.runs.map((rec) => this.#live.get(rec.id) ?? { ...rec, vcpus: rec.vcpus as Run["vcpus"], result: null, done: Promise.resolve() });
    return { runs, nextCursor: page.nextCursor };
  }

  /** Runs this api drives now. */
  active(): Run[] {
    return [...this.#live.values()].filter((r) => !ENDED.has(r.status));
  }

  start(scenario: Scenario): Run {
    // one run's budget bounds one run; this bounds what the stack holds at once (the services keep every VM's workload)
    const max = this.#o.maxActiveAccesses ?? FAULTLINE_MAX_ACCESSES;
    const accesses = (x: Scenario) => x.vm.vcpus * workloadAccesses(x);
    const active = this.active().reduce((n, r) => n + accesses(r.scenario), 0);
    if (active + accesses(scenario) > max) {
      throw new BusyError(`runs in progress hold ${active} accesses; ${accesses(scenario)} more would exceed the budget of ${max} at once (FAULTLINE_MAX_ACCESSES): wait for one to end, or DELETE it`);
    }
    const id = `r${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
    const live = new LiveVcpus(scenario.vm.vcpus);
    const run: Live = {
      id, status: "starting", scenario, createdAt: new Date().toISOString(), t0: null, endedAt: null, vcpus: live.view,
      result: null, error: null, done: Promise.resolve(), owners: {}, cancelled: false, incidents: [], live,
    };
    this.#live.set(id, run);
    void this.#persist(run);
    run.done = this.#drive(run)
      .catch((err: unknown) => {
        run.status = "failed";
        const e = err as { code?: string; message?: string };
        run.error = { code: e.code ?? "FL_ERR_INTERNAL", message: e.message ?? String(err) };
        this.#log.error({ err, run: id }, "run failed");
      })
      .finally(() => this.#finish(run));
    return run;
  }

  /** DELETE: a running run is cancelled (torn down everywhere); an ended one is deleted. */
  async remove(id: string): Promise<{ id: string; status: RunStatus | "deleted" }> {
    const live = this.#live.get(id);
    if (live && !ENDED.has(live.status)) {
      live.cancelled = true;
      await live.done;
      return { id, status: live.status };
    }
    if (live) {
      await live.done; // ended: its first record attempt is over
      live.deleted = true; // and no retry may write it back
    }
    this.#live.delete(id);
    if (!(await this.store.delete(id)) && !live) throw new NotFoundError("run", id);
    return { id, status: "deleted" };
  }

  async #drive(run: Live): Promise<void> {
    const vm = run.id;
    const s = run.scenario;
    const o = { rpcTimeoutMs: this.#o.rpcTimeoutMs, leaseMs: this.#o.leaseMs };
    this.#monitor.track(vm);
    // the live view: the vcpu service's states and faults in flight, joined with the pager's sleepers
    const subs: BusSubscription[] = [
      this.#bus.listen(this.#log, subjects.vcpuState(vm), VcpuStateMsg, (m) => run.live.onState(m)),
      this.#bus.listen(this.#log, subjects.vcpuWait(vm), VcpuWaitMsg, (m) => run.live.onWait(m)),
    ];
    const lease = setInterval(() => renewLease(this.#bus, vm, this.#o.leaseMs), Math.max(100, Math.floor(this.#o.leaseMs / 4)));
    try {
      await setupVm(this.#bus, this.#log, vm, s, o, run.owners);
      if (run.cancelled) {
        // cancelled while starting: nothing ran, nothing to report
        run.status = "cancelled";
        return;
      }
      run.t0 = await startVm(this.#bus, vm, run.owners, o);
      run.status = "running";
      void this.#persist(run);
      this.#log.info({ run: vm, scenario: s.name, owners: Object.fromEntries(Object.entries(run.owners).map(([k, v]) => [k, v.instance])) }, "run started");
      const lost = await this.#waitForEnd(run);
      // reports asked for while the api itself is cut off would all fail and blame a service: wait (bounded)
      for (let i = 0; i < 600 && !this.#liveness.connected; i++) await new Promise((r) => setTimeout(r, 50));
      const skip = new Set<string>(lost ? [lost.service] : []);
      const { reports, missing, errors } = await collectReports(this.#bus, vm, run.owners, lost || run.cancelled ? 1500 : this.#o.rpcTimeoutMs, skip);
      const nowMs = epochMs() - run.t0;
      if (!lost && !run.cancelled && missing.length) {
        // a service died between the end and its report: that is a lost service too
        const svc = missing[0]!;
        run.incidents.push(this.#incident("service-lost", `${svc} did not report: ${errors[svc]?.message ?? "no answer"}`));
        run.error = { code: "FL_ERR_SERVICE_LOST", service: svc, message: `service ${svc} did not report: ${errors[svc]?.message ?? "no answer"}` };
      }
      const own = this.#monitor.vm(vm);
      run.result = assembleResult(
        { runId: run.id, scenario: s, t0: run.t0, live: run.vcpus, incidents: [...run.incidents, ...(own?.incidents ?? [])], missing, nowMs, api: own?.summary("api", this.#monitor.instance) },
        reports,
      );
      run.live.settle(run.result.vcpus); // ended: the live view says what the result says
      const v = verdict(run.result, { lost: lost !== null, cancelled: run.cancelled, error: run.error });
      run.status = v.status;
      run.error = v.error;
      this.#log.info({ run: vm, status: run.status, durationMs: run.result.durationMs, missing }, "run ended");
    } finally {
      clearInterval(lease);
      for (const sub of subs) sub.unsubscribe();
      this.#monitor.untrack(vm);
      await teardownVm(this.#bus, this.#log, vm, run.owners, this.#o.rpcTimeoutMs);
    }
  }

  /**
   * Ends at durationMs; earlier when all vCPUs are killed, or done/killed with every planned event
   * past; at once when cancelled; with the lost service when an owner stops heartbeating.
   */
  async #waitForEnd(run: Live): Promise<ServiceLostError | null> {
    const s = run.scenario;
    const planned = [
      ...s.signals.map((p) => p.atMs),
      ...s.pager.stalls.map((p) => p.atMs + p.forMs),
      s.vmm.pauseAllAtMs ?? 0,
      s.vmm.resumeAtMs ?? 0,
      ...(s.vmm.pauses ?? []).map((p) => p.resumeAtMs ?? p.atMs),
    ];
    const lastEvent = Math.max(0, ...planned);
    let tick = performance.now();
    for (;;) {
      // the api itself could not run for a while (GC, starvation, SIGSTOP): heartbeats queued meanwhile
      // are not read yet, so nobody may be judged on this turn
      const now0 = performance.now();
      if (now0 - tick > 1000) this.#liveness.grace();
      tick = now0;
      if (run.cancelled) {
        run.incidents.push(this.#incident("cancelled", "cancelled through the API"));
        return null;
      }
      for (const owner of Object.values(run.owners)) {
        const why = this.#liveness.lost(owner, run.id);
        if (why) {
          const err = new ServiceLostError(owner.service, owner.instance, why);
          run.error = err.toJSON();
          run.incidents.push(this.#incident("service-lost", err.message));
          this.#log.error({ run: run.id, service: owner.service, instance: owner.instance, why }, "service lost: aborting the run");
          return err;
        }
      }
      const now = epochMs() - run.t0!;
      if (now >= s.durationMs) return null;
      if (s.endWhenDone && now > 0) {
        const states = run.vcpus.map((v) => v.state);
        if (states.every((x) => x === "killed")) return null;
        if (now > lastEvent + 50 && states.every((x) => x === "done" || x === "killed")) return null;
      }
      await new Promise((r) => setTimeout(r, Math.min(25, s.durationMs - now)));
    }
  }

  #incident(kind: Incident["kind"], detail: string): Incident {
    return { at: epochMs(), service: "api", instance: this.#o.instance, kind, detail };
  }

  async #finish(run: Live): Promise<void> {
    run.endedAt ??= new Date().toISOString();
    run.recorded = await this.#recorder.recordEnded(run, () => (run.recorded = true));
    await this.store.prune().catch((err: unknown) => this.#log.warn({ err }, "run store prune failed"));
    // ended and recorded: keep a few in memory for fast reads, the store has the rest
    const ended = [...this.#live.values()].filter((r) => ENDED.has(r.status) && r.recorded);
    for (const r of ended.slice(0, Math.max(0, ended.length - 20))) this.#live.delete(r.id);
  }

  #persist(run: Live): Promise<void> {
    return this.#recorder.persist(run);
  }

  #running(id: string): Live {
    const r = this.#live.get(id);
    if (!r) throw new NotFoundError("run", id);
    if (r.status !== "running") throw new StateError(`run ${id} is ${r.status}, not running`);
    return r;
  }

  /** tgkill to `vcpus`, or kill(pid) to the VMM (`process`). */
  async signal(id: string, target: { vcpus: VcpuSelector } | { process: true }, signal: SignalName) {
    const r = this.#running(id);
    return this.#bus.request(subjects.send(r.id), { vm: r.id, trace: `${r.id}.api`, ...target, signal, source: "api" }, SendReply, { timeoutMs: this.#o.rpcTimeoutMs });
  }

  async pause(id: string, action: "pause" | "resume") {
    const r = this.#running(id);
    const subject = action === "pause" ? subjects.pause(r.id) : subjects.resume(r.id);
    return this.#bus.request(subject, { vm: r.id, trace: `${r.id}.api` }, PauseReply, { timeoutMs: this.#o.rpcTimeoutMs });
  }

  async stall(id: string, action: "stall" | "unstall") {
    const r = this.#running(id);
    return this.#bus.request(subjects.stall(r.id), { vm: r.id, trace: `${r.id}.api`, action }, StallReply, { timeoutMs: this.#o.rpcTimeoutMs });
  }

  async memslot(id: string, op: MemslotOp) {
    const r = this.#running(id);
    const fixed = { ...op, ...(op.size !== undefined ? { size: parseSize(op.size) } : {}) };
    // the ioctl waits in synchronize_srcu_expedited for every vCPU inside a fault, which may be the rest of the run
    const left = r.t0 === null ? 0 : r.t0 + r.scenario.durationMs - Date.now();
    const timeoutMs = Math.max(this.#o.rpcTimeoutMs, left + this.#o.rpcTimeoutMs);
    return this.#bus.request(subjects.memslot(r.id), { vm: r.id, trace: `${r.id}.api`, op: fixed }, MemslotReply, { timeoutMs });
  }

  async drop(id: string, gfns: number[]) {
    const r = this.#running(id);
    return this.#bus.request(subjects.drop(r.id), { vm: r.id, trace: `${r.id}.api`, gfns }, DropReply, { timeoutMs: this.#o.rpcTimeoutMs });
  }

  /** The api is stopping: cancel what it drives and wait (bounded) for the runs to be recorded. */
  async shutdown(boundMs = 5000): Promise<void> {
    for (const r of this.#live.values()) if (!ENDED.has(r.status)) r.cancelled = true;
    await Promise.race([this.waitAll(), new Promise((r) => setTimeout(r, boundMs).unref())]);
  }

  /** Every run driven here has ended and had its first record attempt (a run that just ended may still be writing). */
  async waitAll(): Promise<void> {
    await Promise.all([...this.#live.values()].map((r) => r.done));
  }

  close(): void {
    this.#liveness.close();
    this.#monitor.stop();
  }
}

export { CORE };
