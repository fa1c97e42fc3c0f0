/**
 * The HTTP control API (Fastify 5, TypeBox schemas, OpenAPI at /docs). `buildApp` is separate
 * from `listen`, so tests can `inject`.
 */
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import {
  MemslotOpSchema, PingReply, ResultSchema, SERVICES, ScenarioSchema, SignalNameSchema, VcpuSelectorSchema, VcpuStateSchema, WaitStateSchema, LIVE_MIN_MS, epochMs, parseScenario, parseScenarioText,
  type Bus, type Logger,
} from "@faultline/shared";
import Fastify from "fastify";
import { ErrorSchema, errorHandler } from "./errors.ts";
import { memslotOp, sendSignal, strictValidator } from "./controls.ts";
import { RunManager, type Run } from "./runs.ts";
import type { RunStore } from "./store.ts";

export interface AppOptions {
  instance: string;
  bus: Bus;
  log: Logger;
  rpcTimeoutMs: number;
  livenessMs: number;
  leaseMs: number;
  store: RunStore;
}

const RunId = Type.Object({ id: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }) });
const STATUSES = ["starting", "running", "completed", "failed", "aborted", "cancelled"] as const;
const StatusSchema = Type.Union(STATUSES.map((s) => Type.Literal(s)), {
  description: "completed: ran to its end; aborted: a service holding the VM was lost (error.service names it; result.partial); cancelled: DELETE while running; failed: could not start",
});
/** One vCPU in the live view (live.ts): what it does now, while the run runs; once ended, what the result says. */
const LiveVcpuView = Type.Object({
  state: Type.Union([...VcpuStateSchema.anyOf], {
    description: "running; blocked (asleep in handle_userfault: blockedIn); spinning (a kernel-mode access busy-looping with a signal pending); paused (parked by pause_all_vcpus); halted (the async-PF artificial halt in kvm_vcpu_block); done; killed",
  }),
  pagesTouched: Type.Integer(),
  blockedIn: Type.Union([
    Type.Null(),
    Type.Object({
      site: Type.String({ description: "tdp, emulated, nested-map, pfn-cache; apf-halt for the async-PF halt" }),
      gfn: Type.Integer(),
      waitState: WaitStateSchema,
      sinceMs: Type.Number({ description: "ms since the scenario started" }),
    }),
  ], { description: `where a blocked, spinning or halted vCPU waits; null otherwise. Live, a wait shows once it has lasted ${LIVE_MIN_MS} ms (a fast fault never shows)` }),
});
const RunView = Type.Object({
  id: Type.String(),
  status: StatusSchema,
  scenario: Type.String(),
  createdAt: Type.String(),
  endedAt: Type.Union([Type.String(), Type.Null()]),
  elapsedMs: Type.Union([Type.Number(), Type.Null()]),
  durationMs: Type.Number(),
  vcpus: Type.Array(LiveVcpuView),
  error: Type.Union([Type.Null(), Type.Object({ code: Type.String(), message: Type.String(), service: Type.Optional(Type.String()) })]),
  result: Type.Union([Type.Null(), Type.Ref("Result")]),
});
const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
    cursor: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$", description: "nextCursor of the previous page" })),
    status: Type.Optional(StatusSchema),
  },
  { additionalProperties: false },
);
const RunList = Type.Object({ runs: Type.Array(Type.Omit(RunView, ["result"])), nextCursor: Type.Union([Type.String(), Type.Null()]) });
const errs = { 400: Type.Ref("Error"), 404: Type.Ref("Error"), 409: Type.Ref("Error"), 429: Type.Ref("Error"), 503: Type.Ref("Error"), 504: Type.Ref("Error") };

function view(r: Run) {
  const ended = r.endedAt !== null ? Date.parse(r.endedAt) : null;
  return {
    id: r.id, status: r.status, scenario: r.scenario.name, createdAt: r.createdAt, endedAt: r.endedAt,
    elapsedMs: r.t0 === null ? null : Math.round(Math.min((ended ?? epochMs()) - r.t0, r.result?.durationMs ?? Infinity)),
    durationMs: r.scenario.durationMs, vcpus: r.vcpus.map((v) => ({ ...v, blockedIn: v.blockedIn ?? null })), error: r.error, result: r.result,
  };
}

export async function buildApp(o: AppOptions) {
  const runs = new RunManager(o.bus, o.log, { instance: o.instance, rpcTimeoutMs: o.rpcTimeoutMs, livenessMs: o.livenessMs, leaseMs: o.leaseMs, store: o.store });
  await runs.recover();
  const app = Fastify({ loggerInstance: o.log, requestIdHeader: "x-request-id", bodyLimit: 4 * 1024 * 1024 }).withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler(errorHandler);
  app.addContentTypeParser(["application/yaml", "application/x-yaml", "text/yaml"], { parseAs: "string" }, (_req, body, done) => {
    try {
      done(null, parseScenarioText(String(body)));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.addSchema(ErrorSchema);
  app.addSchema(ResultSchema);
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "Faultline control API", version: "0.1.0", description: "Runs KVM slow-page-fault scenarios and controls running VMs." },
      tags: [{ name: "runs" }, { name: "controls" }, { name: "health" }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  app.post("/v1/runs", {
    schema: {
      tags: ["runs"], operationId: "createRun", summary: "Run a scenario (JSON or YAML body; see docs/scenarios.md)",
      body: ScenarioSchema, response: { 202: RunView, ...errs },
    },
    // one validator for CLI and API: defaults, schema, then the semantic checks, with the field's path
    validatorCompiler: () => (data: unknown) => {
      try {
        return { value: parseScenario(data) };
      } catch (error) {
        return { error: error as Error };
      }
    },
  }, async (req, reply) => reply.status(202).send(view(runs.start(parseScenario(req.body)))));

  app.get("/v1/runs", {
    schema: { tags: ["runs"], operationId: "listRuns", summary: "Runs, newest first, a page at a time (results via GET /v1/runs/:id)", querystring: ListQuery, response: { 200: RunList, ...errs } },
  }, async (req) => {
    const page = await runs.list(req.query);
    return { runs: page.runs.map((r) => ({ ...view(r), result: undefined })), nextCursor: page.nextCursor };
  });

  app.get("/v1/runs/:id", { schema: { tags: ["runs"], operationId: "getRun", params: RunId, response: { 200: RunView, ...errs } } }, async (req) =>
    view(await runs.get(req.params.id)));

  app.delete("/v1/runs/:id", {
    schema: {
      tags: ["runs"], operationId: "deleteRun", summary: "Cancel a running run (torn down everywhere, status cancelled) or delete an ended one",
      params: RunId, response: { 200: Type.Object({ id: Type.String(), status: Type.String() }), ...errs },
    },
  }, async (req) => runs.remove(req.params.id));

  app.post("/v1/runs/:id/signals", {
    schema: {
      tags: ["controls"], operationId: "sendSignal", summary: "Send a signal to vCPU threads (tgkill; all when vcpus is omitted) or to the VMM process (process: true)",
      params: RunId,
      body: Type.Object({
        signal: SignalNameSchema, vcpus: Type.Optional(VcpuSelectorSchema),
        process: Type.Optional(Type.Literal(true, { description: "kill(pid) to the VMM: the kernel picks the thread (complete_signal); not with vcpus" })),
      }, { additionalProperties: false }),
      response: { 200: SendView, ...errs },
    },
    validatorCompiler: strictValidator,
  }, async (req) => sendSignal(runs, req.params.id, req.body));

  for (const action of ["pause", "resume"] as const) {
    app.post(`/v1/runs/:id/${action}`, {
      schema: { tags: ["controls"], operationId: `${action}All`, summary: `${action}_all_vcpus`, params: RunId, response: { 200: Type.Object({ requestedAtMs: Type.Number() }), ...errs } },
    }, async (req) => runs.pause((req.params as { id: string }).id, action));
  }
  for (const action of ["stall", "unstall"] as const) {
    app.post(`/v1/runs/:id/pager/${action}`, {
      schema: { tags: ["controls"], operationId: `pager${action}`, summary: `${action} the page source`, params: RunId, response: { 200: Type.Object({ stalled: Type.Boolean(), atMs: Type.Number() }), ...errs } },
    }, async (req) => runs.stall((req.params as { id: string }).id, action));
  }

  app.post("/v1/runs/:id/memslots", {
    schema: {
      tags: ["controls"], operationId: "memslotOp", summary: "KVM_SET_USER_MEMORY_REGION on a running VM: add, delete, move, flags",
      description: "Answers when the ioctl returns: like the real one it waits in synchronize_srcu_expedited until every vCPU inside a fault has left it, which during a stall can be the rest of the run (docs/faults.md). result.memslotOps records each op's requested and completed time.",
      params: RunId, body: Type.Omit(MemslotOpSchema, ["atMs"]), response: { 200: Type.Object({ zapped: Type.Integer() }), ...errs },
    },
    validatorCompiler: strictValidator,
  }, async (req) => memslotOp(runs, req.params.id, req.body));

  app.post("/v1/runs/:id/pager/drop", {
    schema: {
      tags: ["controls"], operationId: "pagerDrop", summary: "MADV_DONTNEED resident pages (UFFD_EVENT_REMOVE, mmu notifier invalidation)",
      params: RunId, body: Type.Object({ gfns: Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1, maxItems: 65536 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ dropped: Type.Integer() }), ...errs },
    },
    validatorCompiler: strictValidator,
  }, async (req) => runs.drop(req.params.id, req.body.gfns));

  app.get("/healthz", { schema: { tags: ["health"], operationId: "health", response: { 200: Health, 503: Health } }, logLevel: "warn" }, async (_req, reply) => {
    const services = Object.fromEntries(await Promise.all(SERVICES.map(async (svc) => [svc, await ping(o.bus, svc)] as const)));
    const ok = Object.values(services).every((s) => s.ok);
    return reply.status(ok ? 200 : 503).send({ status: ok ? "ok" : "degraded", nats: o.bus.server(), services });
  });
  return { app, runs };
}

const SendView = Type.Object({
  sent: Type.Array(Type.Object({ vcpu: Type.Integer(), signal: Type.String(), sentAtMs: Type.Number() })),
  process: Type.Optional(Type.Object({ signal: Type.String(), sentAtMs: Type.Number(), thread: Type.Union([Type.String(), Type.Integer(), Type.Null()]), outcome: Type.String() })),
});
const SvcHealth = Type.Object({ ok: Type.Boolean(), instance: Type.Optional(Type.String()), uptimeMs: Type.Optional(Type.Number()), vms: Type.Optional(Type.Integer({ description: "VMs (runs) this instance holds" })), rttMs: Type.Optional(Type.Number()), error: Type.Optional(Type.String()) });
const Health = Type.Object({ status: Type.String(), nats: Type.String(), services: Type.Record(Type.String(), SvcHealth) });

async function ping(bus: Bus, svc: (typeof SERVICES)[number]) {
  const t = performance.now();
  try {
    const r = await bus.request(`fl.svc.${svc}.ping`, {}, PingReply, { timeoutMs: 1000, retry: false });
    return { ok: true, instance: r.instance, uptimeMs: r.uptimeMs, vms: r.vms, rttMs: Math.round((performance.now() - t) * 100) / 100 };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}
