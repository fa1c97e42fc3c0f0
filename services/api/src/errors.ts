/** Maps errors to HTTP: one body shape `{ statusCode, code, error, message, path? }` for every failure. */
import {
  FaultlineError, NoRespondersError, NotFoundError, RemoteError, RequestTimeoutError, StateError, ValidationError,
} from "@faultline/shared";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";

export const ErrorSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String(),
    error: Type.String(),
    message: Type.String(),
    path: Type.Optional(Type.String({ description: "JSON pointer of the failing field" })),
  },
  { $id: "Error" },
);

const NAMES: Record<number, string> = { 400: "Bad Request", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout" };

function classify(err: unknown): { status: number; code: string; message: string; path?: string } {
  if (err instanceof ValidationError) return { status: 400, code: err.code, message: err.message, path: err.path };
  const fe = err as FastifyError & { validationContext?: string };
  if (fe.validation) {
    const first = fe.validation[0];
    const path = `/${fe.validationContext ?? "body"}${first?.instancePath ?? ""}`;
    return { status: 400, code: "FL_ERR_INVALID", message: `invalid request: ${path}: ${first?.message ?? fe.message}`, path };
  }
  if (err instanceof NotFoundError) return { status: 404, code: err.code, message: err.message };
  if (err instanceof StateError) return { status: 409, code: err.code, message: err.message };
  if (err instanceof NoRespondersError) return { status: 503, code: err.code, message: err.message };
  if (err instanceof RequestTimeoutError) return { status: 504, code: err.code, message: err.message };
  if (err instanceof RemoteError) return { status: err.code === "FL_ERR_INVALID" ? 400 : 502, code: err.code, message: err.message };
  if (err instanceof FaultlineError) return { status: 500, code: err.code, message: err.message };
  if (typeof fe.statusCode === "number" && fe.statusCode < 500) return { status: fe.statusCode, code: fe.code ?? "FL_ERR_REQUEST", message: fe.message };
  return { status: 500, code: "FL_ERR_INTERNAL", message: fe.message ?? String(err) };
}

export function errorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): void {
  const c = classify(err);
  if (c.status >= 500) req.log.error({ err }, "request failed");
  else req.log.info({ code: c.code, path: c.path }, c.message);
  void reply.status(c.status).send({ statusCode: c.status, code: c.code, error: NAMES[c.status] ?? "Error", message: c.message, ...(c.path ? { path: c.path } : {}) });
}
