/**
 * Typed errors with stable codes (FL_ERR_<AREA>_<WHAT>), in the style of undici's errors.js:
 * a base class with `code`, one subclass per failure, and a `Symbol.for` brand so `instanceof`
 * survives duplicated copies of this package. Each instance carries the names of its whole class
 * chain, so `instanceof` a subclass holds only for that subclass and its descendants.
 */
const kBrand = Symbol.for("faultline.error.classes");

export class FaultlineError extends Error {
  readonly code: string;
  override readonly cause?: unknown;
  constructor(code: string, message: string, cause?: unknown) {
    super(message);
    this.name = "FaultlineError";
    this.code = code;
    if (cause !== undefined) this.cause = cause;
    const classes = new Set<string>();
    for (let c: unknown = new.target; typeof c === "function" && c !== Error; c = Object.getPrototypeOf(c)) classes.add((c as { name: string }).name);
    Object.defineProperty(this, kBrand, { value: classes, enumerable: false });
  }
  static override [Symbol.hasInstance](x: unknown): boolean {
    if (typeof x !== "object" || x === null) return false;
    const classes = (x as Record<symbol, unknown>)[kBrand];
    return classes instanceof Set && classes.has(this.name);
  }
  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** A document (scenario, HTTP body, NATS message) failed validation; `path` is a JSON pointer. */
export class ValidationError extends FaultlineError {
  readonly path: string;
  constructor(what: string, path: string, message: string) {
    super("FL_ERR_INVALID", `invalid ${what}: ${path || "/"}: ${message}`);
    this.name = "ValidationError";
    this.path = path;
  }
  override toJSON(): { code: string; message: string; path: string } {
    return { code: this.code, message: this.message, path: this.path };
  }
}

/** Request/reply: nobody subscribes to the subject (service down). */
export class NoRespondersError extends FaultlineError {
  readonly subject: string;
  constructor(subject: string, cause?: unknown) {
    super("FL_ERR_NO_RESPONDERS", `no responders on ${subject}: is the service running?`, cause);
    this.name = "NoRespondersError";
    this.subject = subject;
  }
}

/** Request/reply: the peer did not answer in time (service slow or stuck). */
export class RequestTimeoutError extends FaultlineError {
  readonly subject: string;
  readonly timeoutMs: number;
  constructor(subject: string, timeoutMs: number, cause?: unknown) {
    super("FL_ERR_TIMEOUT", `no reply on ${subject} within ${timeoutMs} ms`, cause);
    this.name = "RequestTimeoutError";
    this.subject = subject;
    this.timeoutMs = timeoutMs;
  }
}

/** The peer answered with an error (micro-style `Nats-Service-Error` headers). */
export class RemoteError extends FaultlineError {
  readonly subject: string;
  readonly path: string | undefined;
  readonly errno: string | undefined;
  constructor(subject: string, code: string, message: string, path?: string, errno?: string) {
    super(code, `${subject}: ${message}`);
    this.name = "RemoteError";
    this.subject = subject;
    this.path = path;
    this.errno = errno;
  }
}

/** The local NATS connection is closed: nothing more can be sent. */
export class ClosedConnectionError extends FaultlineError {
  constructor(subject: string, cause?: unknown) {
    super("FL_ERR_CLOSED", `NATS connection closed (request on ${subject})`, cause);
    this.name = "ClosedConnectionError";
  }
}

/** A service holding a run's VM stopped answering (dead, wedged or unreachable) within the liveness bound. */
export class ServiceLostError extends FaultlineError {
  readonly service: string;
  readonly instance: string;
  constructor(service: string, instance: string, why: string) {
    super("FL_ERR_SERVICE_LOST", `service ${service} (${instance}) lost: ${why}`);
    this.name = "ServiceLostError";
    this.service = service;
    this.instance = instance;
  }
  override toJSON(): { code: string; message: string; service: string } {
    return { code: this.code, message: this.message, service: this.service };
  }
}

export class NotFoundError extends FaultlineError {
  constructor(what: string, id: string) {
    super("FL_ERR_NOT_FOUND", `${what} ${id} not found`);
    this.name = "NotFoundError";
  }
}

export class StateError extends FaultlineError {
  constructor(message: string) {
    super("FL_ERR_STATE", message);
    this.name = "StateError";
  }
}

/** nats-server could not be found or started. */
export class NatsServerError extends FaultlineError {
  constructor(message: string, cause?: unknown) {
    super("FL_ERR_NATS_SERVER", message, cause);
    this.name = "NatsServerError";
  }
}

const STATUS: Record<string, number> = {
  FL_ERR_INVALID: 400, FL_ERR_BUDGET: 400, FL_ERR_PAYLOAD: 400, FL_ERR_NOT_FOUND: 404, FL_ERR_STATE: 409, FL_ERR_CONFLICT: 409, FL_ERR_CANCELLED: 409,
  FL_ERR_NO_RESPONDERS: 503, FL_ERR_SERVICE_LOST: 503, FL_ERR_CLOSED: 503, FL_ERR_STORE: 503, FL_ERR_NATS_SERVER: 503, FL_ERR_TIMEOUT: 504,
  FL_ERR_REMOTE: 502, FL_ERR_INTERNAL: 500,
};
/** HTTP status of an error code (the same table for NATS error headers and HTTP replies). */
export function httpStatusOf(code: string): number {
  return STATUS[code] ?? 500;
}
