/**
 * Maps errors to HTTP: one body shape `{ statusCode, code, error, message, path?, errno? }` for every
 * failure, the status always from the error catalogue (ERROR_CATALOGUE in @faultline/shared).
 */
import { FaultlineError, RemoteError, httpStatusOf } from "@faultline/shared";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { STATUS_CODES } from "node:http";
import { Type } from "@sinclair/typebox";

export const ErrorSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: "FL_ERR_*: see the README's Errors table" }),
    error: Type.String(),
    message: Type.String(),
    path: Type.Optional(Type.String({ description: "JSON pointer of the failing field" })),
    errno: Type.Optional(Type.String({ description: "the errno the modelled KVM ioctl would return (EINVAL, EEXIST, ...)" })),
  },
  { $id: "Error" },
);

export interface Classified {
  status: number;
  code: string;
  message: string;
  path?: string;
  errno?: string;
}

/** Fastify's own 4xx (bad JSON, wrong content type, too large, no route) → catalogue codes. */
const FASTIFY_CODES: Record<number, string> = { 404: "FL_ERR_NOT_FOUND", 413: "FL_ERR_TOO_LARGE", 415: "FL_ERR_MEDIA_TYPE" };

export function classify(err: unknown): Classified {
  if (err instanceof RemoteError) {
    // a service's verdict on the caller's input (4xx) is passed on as is; its own failure is the gateway's
    const status = err.status;
    return {
      status, code: err.code, message: status < 500 ? err.remoteMessage : err.message,
      ...(err.path !== undefined ? { path: err.path } : {}), ...(err.errno ? { errno: err.errno } : {}),
    };
  }
  if (err instanceof FaultlineError) return { status: err.status, code: err.code, ...withoutCode(err.toJSON()) };
  const fe = err as FastifyError & { validationContext?: string };
  if (fe.validation) {
    const first = fe.validation[0];
    const params = (first?.params ?? {}) as { missingProperty?: string; additionalProperty?: string };
    const field = params.missingProperty ?? params.additionalProperty;
    const path = `/${fe.validationContext ?? "body"}${first?.instancePath ?? ""}${field ? `/${field}` : ""}`;
    return { status: 400, code: "FL_ERR_INVALID", message: `invalid request: ${path}: ${first?.message ?? fe.message}`, path };
  }
  if (typeof fe.statusCode === "number" && fe.statusCode < 500) {
    const code = FASTIFY_CODES[fe.statusCode] ?? "FL_ERR_INVALID";
    return { status: httpStatusOf(code), code, message: fe.message, ...(code === "FL_ERR_INVALID" ? { path: "/body" } : {}) };
  }
  return { status: 500, code: "FL_ERR_INTERNAL", message: fe.message ?? String(err) };
}

function withoutCode(j: { code: string; message: string; path?: string; errno?: string }): Omit<Classified, "status" | "code"> {
  const { code: _code, ...rest } = j;
  return rest;
}

export function errorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): void {
  const { status, ...c } = classify(err);
  if (status >= 500) req.log.error({ err }, "request failed");
  else req.log.info({ code: c.code, path: c.path, errno: c.errno }, c.message);
  void reply.status(status).send({ statusCode: status, error: STATUS_CODES[status] ?? "Error", ...c });
}
