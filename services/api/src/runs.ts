/**
 * Scenario runs: create the VM in every service (each gets the scenario and a shared `t0`), follow
 * the vCPUs' state events, end at `durationMs` (or earlier once nothing more can happen), collect
 * the reports, assemble the result, tear the VM down. Live controls act on a running VM.
 */
import {
  MmuReport, NotFoundError, Ok, PagerReport, PauseReply, SendReply, SignalsReport, StallReply, StateError, VcpuReport,
  VcpuStateMsg, epochMs, listen, parseSize, request, subjects,
  type Logger, type MemslotOp, type Result, type Scenario, type SignalName, type VcpuSelector, type VcpuStateName,
} from "@faultline/shared";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import { assembleResult } from "./result.ts";
import { Type } from "@sinclair/typebox";

const MemslotReply = Type.Object({ zapped: Type.Integer() });
const DropReply = Type.Object({ dropped: Type.Integer() });

export type RunStatus = "starting" | "running" | "completed" | "failed";
const CORE = ["vcpu", "mmu", "pager", "signals"] as const;
/** Lead time between setup and scenario time 0, so every service has scheduled its timers. */
const LEAD_MS = 150;

export interface Run {
  id: string;
  status: RunStatus;
  scenario: Scenario;
  createdAt: string;
  t0: number | null;
  vcpus: Array<{ state: VcpuStateName; pagesTouched: number }>;
  result: Result | null;
  error: { code: string; message: string } | null;
  done: Promise<void>;
}

export class RunManager {
  readonly #runs = new Map<string, Run>();
  readonly #nc: NatsConnection;
  readonly #log: Logger;
  readonly #timeoutMs: number;

  constructor(nc: NatsConnection, log: Logger, rpcTimeoutMs: number) {
    this.#nc = nc;
    this.#log = log;
    this.#timeoutMs = rpcTimeoutMs;
  }

  list(): Run[] {
    return [...this.#runs.values()];
  }

  get(id: string): Run {
    const r = this.#runs.get(id);
    if (!r) throw new NotFoundError("run", id);
    return r;
  }

  start(scenario: Scenario): Run {
    const id = `r${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
    const run: Run = {
      id, status: "starting", scenario, createdAt: new Date().toISOString(), t0: null,
      vcpus: Array.from({ length: scenario.vm.vcpus }, () => ({ state: "running" as const, pagesTouched: 0 })),
      result: null, error: null, done: Promise.resolve(),
    };
    this.#runs.set(id, run);
    run.done = this.#drive(run).catch((err: unknown) => {
      run.status = "failed";
      const e = err as { code?: string; message?: string };
      run.error = { code: e.code ?? "FL_ERR_INTERNAL", message: e.message ?? String(err) };
      this.#log.error({ err, run: id }, "run failed");
    });
    return run;
  }

  async #drive(run: Run): Promise<void> {
    const vm = run.id;
    const s = run.scenario;
    const sub: Subscription = listen(this.#nc, this.#log, subjects.vcpuState(vm), VcpuStateMsg, (m) => {
      const v = run.vcpus[m.vcpu];
      if (v) Object.assign(v, { state: m.state, pagesTouched: m.pagesTouched });
    });
    const created: Array<(typeof CORE)[number]> = [];
    try {
      const t0 = epochMs() + LEAD_MS;
      await Promise.all(
        CORE.map(async (svc) => {
          await request(this.#nc, subjects.setup(vm, svc), { vm, trace: `${vm}.setup`, scenario: s, t0 }, Ok, { timeoutMs: this.#timeoutMs });
          created.push(svc);
        }),
      );
      run.t0 = t0;
      run.status = "running";
      this.#log.info({ run: vm, scenario: s.name }, "run started");
      await this.#waitForEnd(run, t0);
      const reports = await this.#reports(vm);
      run.result = assembleResult(run.id, s, reports);
      run.status = "completed";
      this.#log.info({ run: vm, durationMs: run.result.durationMs }, "run completed");
    } finally {
      sub.unsubscribe();
      await Promise.all(
        created.map((svc) =>
          request(this.#nc, subjects.teardown(vm, svc), { vm, trace: `${vm}.teardown` }, Ok, { timeoutMs: this.#timeoutMs }).catch((err: unknown) =>
            this.#log.warn({ err, run: vm, svc }, "teardown failed"),
          ),
        ),
      );
    }
  }

  /** Ends at durationMs; earlier when all vCPUs are killed, or done/killed with every planned event past. */
  async #waitForEnd(run: Run, t0: number): Promise<void> {
    const s = run.scenario;
    const planned = [
      ...s.signals.map((p) => p.atMs),
      ...s.pager.stalls.map((p) => p.atMs + p.forMs),
      s.vmm.pauseAllAtMs ?? 0,
      s.vmm.resumeAtMs ?? 0,
    ];
    const lastEvent = Math.max(0, ...planned);
    for (;;) {
      const now = epochMs() - t0;
      if (now >= s.durationMs) return;
      if (s.endWhenDone && now > 0) {
        const states = run.vcpus.map((v) => v.state);
        if (states.every((x) => x === "killed")) return;
        if (now > lastEvent + 50 && states.every((x) => x === "done" || x === "killed")) return;
      }
      await new Promise((r) => setTimeout(r, Math.min(25, s.durationMs - now)));
    }
  }

  async #reports(vm: string) {
    const o = { timeoutMs: this.#timeoutMs };
    const body = { vm, trace: `${vm}.report` };
    const [vcpu, pager, signals, mmu] = await Promise.all([
      request(this.#nc, subjects.report(vm, "vcpu"), body, VcpuReport, o),
      request(this.#nc, subjects.report(vm, "pager"), body, PagerReport, o),
      request(this.#nc, subjects.report(vm, "signals"), body, SignalsReport, o),
      request(this.#nc, subjects.report(vm, "mmu"), body, MmuReport, o),
    ]);
    return { vcpu, pager, signals, mmu };
  }

  #running(id: string): Run {
    const r = this.get(id);
    if (r.status !== "running") throw new StateError(`run ${id} is ${r.status}, not running`);
    return r;
  }

  async signal(id: string, vcpus: VcpuSelector, signal: SignalName) {
    const r = this.#running(id);
    return request(this.#nc, subjects.send(r.id), { vm: r.id, trace: `${r.id}.api`, vcpus, signal, source: "api" }, SendReply, {
      timeoutMs: this.#timeoutMs,
    });
  }

  async pause(id: string, action: "pause" | "resume") {
    const r = this.#running(id);
    const subject = action === "pause" ? subjects.pause(r.id) : subjects.resume(r.id);
    return request(this.#nc, subject, { vm: r.id, trace: `${r.id}.api` }, PauseReply, { timeoutMs: this.#timeoutMs });
  }

  async stall(id: string, action: "stall" | "unstall") {
    const r = this.#running(id);
    return request(this.#nc, subjects.stall(r.id), { vm: r.id, trace: `${r.id}.api`, action }, StallReply, { timeoutMs: this.#timeoutMs });
  }

  async memslot(id: string, op: MemslotOp) {
    const r = this.#running(id);
    const fixed = { ...op, ...(op.size !== undefined ? { size: parseSize(op.size) } : {}) };
    return request(this.#nc, subjects.memslot(r.id), { vm: r.id, trace: `${r.id}.api`, op: fixed }, MemslotReply, { timeoutMs: this.#timeoutMs });
  }

  async drop(id: string, gfns: number[]) {
    const r = this.#running(id);
    return request(this.#nc, subjects.drop(r.id), { vm: r.id, trace: `${r.id}.api`, gfns }, DropReply, { timeoutMs: this.#timeoutMs });
  }

  async waitAll(): Promise<void> {
    await Promise.all(this.list().map((r) => r.done));
  }
}

