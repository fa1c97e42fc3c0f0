import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { classify } from "../services/api/src/errors.ts";
import {
  ERROR_CATALOGUE, FaultlineError, KVM_ERRNOS, KvmErrnoError, NatsServerError, NoRespondersError, NotFoundError, RemoteError, RequestTimeoutError,
  StateError, ValidationError, errnoOf, httpStatusOf,
} from "@faultline/shared";
import { renderErrorTable } from "./errors-table.ts";

const root = join(import.meta.dirname, "..");

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.includes("node_modules"))
    .map((f) => join(root, dir, f));
}

/** What `request()` builds from a service's error reply: the code header, the message header, the body's path. */
function overNats(fe: FaultlineError, subject = "fl.vm.r1.mmu.memslot"): RemoteError {
  const body = JSON.parse(JSON.stringify({ error: fe.toJSON() })) as { error: { path?: string } };
  return new RemoteError(subject, fe.code, fe.message, body.error.path);
}

describe("errors catalogue", () => {
  it("errors - the README's Errors table is the one rendered from ERROR_CATALOGUE (node --import tsx test/write-errors-table.ts)", () => {
    expect(readFileSync(join(root, "README.md"), "utf8")).toContain(renderErrorTable());
  });

  it("errors - every FL_ERR_ code the code base raises is in the catalogue", () => {
    const used = new Set<string>();
    for (const f of [...sources("shared/src"), ...sources("services"), ...sources("cli/src")]) {
      for (const m of readFileSync(f, "utf8").matchAll(/"(FL_ERR_[A-Z0-9_]*[A-Z0-9])"/g)) used.add(m[1]!);
    }
    expect(used.size).toBeGreaterThan(3);
    expect([...used].filter((c) => !(c in ERROR_CATALOGUE))).toEqual([]);
    for (const e of KVM_ERRNOS) expect(ERROR_CATALOGUE).toHaveProperty(`FL_ERR_KVM_${e}`);
  });

  it("errors - each error class takes its status from the catalogue", () => {
    expect(new ValidationError("x", "/a", "bad").status).toBe(400);
    expect(new NotFoundError("run", "x").status).toBe(404);
    expect(new StateError("done").status).toBe(409);
    expect(new NoRespondersError("fl.x").status).toBe(503);
    expect(new RequestTimeoutError("fl.x", 5).status).toBe(504);
    expect(new NatsServerError("gone").status).toBe(503);
    expect(new KvmErrnoError("EEXIST", "x", "/gpa", "overlap").status).toBe(409);
    expect(new KvmErrnoError("EINVAL", "x", "/gpa", "misaligned").status).toBe(400);
    expect(httpStatusOf("FL_ERR_SOMETHING_NEW")).toBe(500);
    for (const [code, e] of Object.entries(ERROR_CATALOGUE)) expect(httpStatusOf(code)).toBe(e.status);
  });

  it("errors - toJSON carries path and errno when the error has them; a KvmErrnoError is a ValidationError", () => {
    const k = new KvmErrnoError("EEXIST", "request", "/body/gpa", "overlaps memslot 0");
    expect(k.toJSON()).toEqual({ code: "FL_ERR_KVM_EEXIST", message: "invalid request: /body/gpa: overlaps memslot 0 (-EEXIST)", path: "/body/gpa", errno: "EEXIST" });
    expect(k instanceof ValidationError).toBe(true);
    expect(new NotFoundError("run", "x").toJSON()).toEqual({ code: "FL_ERR_NOT_FOUND", message: "run x not found" });
    expect(errnoOf("FL_ERR_KVM_EINVAL")).toBe("EINVAL");
    expect(errnoOf("FL_ERR_INVALID")).toBeUndefined();
  });
});

describe("errors over HTTP", () => {
  it("errors - a service's error keeps its status across NATS: 404 stays 404, 400 stays 400, -EEXIST is 409 with its errno", () => {
    expect(classify(overNats(new NotFoundError("vm", "r1")))).toMatchObject({ status: 404, code: "FL_ERR_NOT_FOUND", message: "vm r1 not found" });
    expect(classify(overNats(new ValidationError("message", "/op/size", "bad")))).toMatchObject({ status: 400, code: "FL_ERR_INVALID", path: "/op/size" });
    expect(classify(overNats(new KvmErrnoError("EEXIST", "memslot op", "/op/gpa", "overlap")))).toMatchObject({
      status: 409, code: "FL_ERR_KVM_EEXIST", path: "/op/gpa", errno: "EEXIST",
    });
    expect(classify(overNats(new KvmErrnoError("EINVAL", "memslot op", "/op/slot", "no slot")))).toMatchObject({ status: 400, errno: "EINVAL" });
    expect(classify(overNats(new RequestTimeoutError("fl.vm.r1.pager.fill", 50)))).toMatchObject({ status: 504 });
  });

  it("errors - a service's own failure, or a code the API does not know, is a 502", () => {
    expect(classify(overNats(new FaultlineError("FL_ERR_INTERNAL", "boom")))).toMatchObject({ status: 502, code: "FL_ERR_INTERNAL" });
    expect(classify(new RemoteError("fl.x", "FL_ERR_FROM_THE_FUTURE", "?"))).toMatchObject({ status: 502 });
    expect(classify(new RemoteError("fl.x", "FL_ERR_REMOTE", "?"))).toMatchObject({ status: 502 });
  });

  it("errors - local errors: catalogue status; Fastify's own 4xx get catalogue codes; anything else is a 500", () => {
    expect(classify(new StateError("run r1 is completed, not running"))).toEqual({ status: 409, code: "FL_ERR_STATE", message: "run r1 is completed, not running" });
    expect(classify(new ValidationError("request", "/body/vcpus", "vCPU 99 does not exist"))).toMatchObject({ status: 400, path: "/body/vcpus" });
    expect(classify(Object.assign(new Error("too big"), { statusCode: 413, code: "FST_ERR_CTP_BODY_TOO_LARGE" }))).toMatchObject({ status: 413, code: "FL_ERR_TOO_LARGE" });
    expect(classify(Object.assign(new Error("bad json"), { statusCode: 400, code: "FST_ERR_CTP_INVALID_JSON_BODY" }))).toMatchObject({ status: 400, code: "FL_ERR_INVALID", path: "/body" });
    expect(classify(Object.assign(new Error("x"), { validation: [{ instancePath: "", params: { missingProperty: "signal" }, message: "required" }], validationContext: "body" })))
      .toMatchObject({ status: 400, path: "/body/signal" });
    expect(classify(new TypeError("oops"))).toMatchObject({ status: 500, code: "FL_ERR_INTERNAL" });
  });
});
