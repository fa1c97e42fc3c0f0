/**
 * Live controls checked as strictly as scenarios: the body against its schema (unknown fields are
 * an error, not dropped), then against the run's scenario, before anything is sent. A memslot op's
 * fields and alignment are checked here (`checkMemslotOpShape`); what depends on the current layout
 * (overlaps, missing slots) is checked by the MMU, which holds the layout, under `slots_lock`, and
 * comes back as a KvmErrnoError whose path the API rebases onto the body.
 */
import {
  RemoteError, ValidationError, checkMemslotOpShape, type MemslotOp, type SignalName, type VcpuSelector,
} from "@faultline/shared";
import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import type { FastifyRouteSchemaDef, FastifyValidationResult } from "fastify/types/schema.js";
import type { RunManager } from "./runs.ts";

const checkers = new WeakMap<TSchema, TypeCheck<TSchema>>();

/**
 * A route `validatorCompiler`: TypeBox's checker, no coercion and no silent removal of unknown
 * fields (Fastify's Ajv defaults); the first failure names `/<part><field>`, e.g. `/body/colour`.
 */
export const strictValidator = <T>({ schema, httpPart }: FastifyRouteSchemaDef<T>): FastifyValidationResult => {
  const s = schema as unknown as TSchema;
  let c = checkers.get(s);
  if (!c) checkers.set(s, (c = TypeCompiler.Compile(s)));
  const check = c;
  return (data: unknown) => {
    if (check.Check(data)) return { value: data };
    const first = check.Errors(data).First();
    return { error: new ValidationError("request", `/${httpPart ?? "body"}${first?.path ?? ""}`, first?.message ?? "does not match the schema") };
  };
};

/** Every vCPU a selector names exists (the check scenarios get for `signals[].vcpus`). */
export function checkVcpus(sel: VcpuSelector, vcpus: number, path: string): void {
  const ids = sel === "all" ? [] : Array.isArray(sel) ? sel : [sel];
  const bad = ids.find((id) => id >= vcpus);
  if (bad !== undefined) throw new ValidationError("request", path, `vCPU ${bad} does not exist (vm.vcpus = ${vcpus})`);
}

/**
 * `POST /v1/runs/:id/signals`: tgkill to vCPU threads (`vcpus`, all of them when omitted) or kill(pid)
 * to the VMM (`process: true`), not both (400). Unknown run 404, a vCPU the VM lacks 400, a run not running 409.
 */
export async function sendSignal(runs: RunManager, id: string, body: { signal: SignalName; vcpus?: VcpuSelector | undefined; process?: true | undefined }) {
  const run = await runs.peek(id);
  if (body.process && body.vcpus !== undefined) {
    throw new ValidationError("request", "/body/process", "a signal goes to vCPU threads (vcpus) or to the VMM process (process: true), not both");
  }
  if (body.process) return runs.signal(id, { process: true }, body.signal);
  const vcpus = body.vcpus ?? "all";
  checkVcpus(vcpus, run.scenario.vm.vcpus, "/body/vcpus");
  return runs.signal(id, { vcpus }, body.signal);
}

/**
 * `POST /v1/runs/:id/memslots`: unknown run 404; missing or misplaced fields 400; what
 * `__kvm_set_memory_region` refuses 400 (-EINVAL) or 409 (-EEXIST) with `errno`; a run not running 409.
 */
export async function memslotOp(runs: RunManager, id: string, body: Omit<MemslotOp, "atMs">) {
  await runs.peek(id);
  checkMemslotOpShape(body, "request", "/body");
  try {
    return await runs.memslot(id, { ...body, atMs: 0 });
  } catch (err) {
    // the MMU names fields of its message's `op`, which is this body
    if (err instanceof RemoteError && err.status < 500 && err.path?.startsWith("/op")) {
      const path = `/body${err.path.slice("/op".length)}`;
      const at = err.remoteMessage.indexOf(`${err.path}: `);
      const why = at < 0 ? err.remoteMessage : err.remoteMessage.slice(at + err.path.length + 2);
      throw new RemoteError(err.subject, err.code, `invalid request: ${path}: ${why}`, path);
    }
    throw err;
  }
}
