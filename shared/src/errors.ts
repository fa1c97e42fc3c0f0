/**
 * Typed errors with stable codes (FL_ERR_<AREA>_<WHAT>), in the style of undici's errors.js:
 * a base class with `code`, one subclass per failure, and a `Symbol.for` brand so `instanceof`
 * survives duplicated copies of this package. Each instance carries the names of its whole class
 * chain, so `instanceof` a subclass holds only for that subclass and its descendants.
 *
 * ERROR_CATALOGUE is the one place a code gets its HTTP status: the API's error handler, the NATS
 * error headers and the README's "Errors" table all read it.
 */
const kBrand = Symbol.for("faultline.error.classes");

export interface CatalogueEntry {
  /** HTTP status the API answers with */
  readonly status: number;
  /** what the code means, for humans (the README table) */
  readonly title: string;
}

/** The errno values the KVM ioctls modelled here return (`__kvm_set_memory_region`). */
export const KVM_ERRNOS = ["EINVAL", "EEXIST"] as const;
export type KvmErrno = (typeof KVM_ERRNOS)[number];
const KVM_PREFIX = "FL_ERR_KVM_";

export const ERROR_CATALOGUE = {
  FL_ERR_INVALID: { status: 400, title: "a document, request body or message failed validation; `path` names the field" },
  FL_ERR_TOO_LARGE: { status: 413, title: "the request body is larger than the API accepts" },
  FL_ERR_MEDIA_TYPE: { status: 415, title: "the request's content-type is not JSON or YAML" },
  FL_ERR_BUDGET: { status: 400, title: "the scenario asks for more than the run budget allows" },
  FL_ERR_KVM_EINVAL: { status: 400, title: "the modelled KVM ioctl would fail with -EINVAL (e.g. a misaligned memslot, deleting a slot that does not exist, changing KVM_MEM_READONLY); `errno` is set" },
  FL_ERR_KVM_EEXIST: { status: 409, title: "the modelled KVM ioctl would fail with -EEXIST (a new or moved memslot overlaps another); `errno` is set" },
  FL_ERR_NOT_FOUND: { status: 404, title: "no such run (or VM)" },
  FL_ERR_STATE: { status: 409, title: "the run is not in a state that allows this (e.g. a control on a run that is not running)" },
  FL_ERR_CONFLICT: { status: 409, title: "the request conflicts with the current state of the resource" },
  FL_ERR_CANCELLED: { status: 409, title: "the run was cancelled" },
  FL_ERR_INTERNAL: { status: 500, title: "a bug: an unexpected failure inside Faultline" },
  FL_ERR_REMOTE: { status: 502, title: "a service answered with an error Faultline does not know" },
  FL_ERR_NO_RESPONDERS: { status: 503, title: "no service listens on the NATS subject (is it running?)" },
  FL_ERR_SERVICE_LOST: { status: 503, title: "a service holding the run's VM stopped heartbeating (dead, wedged or unreachable); the run ends `aborted` and `error.service` names it" },
  FL_ERR_CLOSED: { status: 503, title: "the NATS connection of the caller is closed" },
  FL_ERR_BUSY: { status: 429, title: "the runs in progress already hold the stack's budget of accesses; retry when one ends" },
  FL_ERR_TESTBED: { status: 503, title: "a request the model needed ran out of time after its retries: the run ends `aborted`, `error.service` names the service it went to" },
  FL_ERR_PAYLOAD: { status: 400, title: "a chunked NATS payload was malformed or incomplete" },
  FL_ERR_STACK_START: { status: 503, title: "the local stack could not start (a service died or was not ready in time)" },
  FL_ERR_NATS_UNREACHABLE: { status: 503, title: "the NATS server given with --nats cannot be reached" },
  FL_ERR_SERVICE_DIED: { status: 503, title: "the CLI: a service of the local stack died during `faultline run` or `demo`" },
  FL_ERR_INTERRUPTED: { status: 503, title: "the CLI: start-up or run interrupted by SIGINT/SIGTERM" },
  FL_ERR_API_UNREACHABLE: { status: 503, title: "the CLI: the control API cannot be reached" },
  FL_ERR_API_TIMEOUT: { status: 504, title: "the CLI: the control API did not answer in time" },
  FL_ERR_HTTP: { status: 502, title: "the CLI: the control API answered with an error that carries no code" },
  FL_ERR_STORE: { status: 503, title: "the run store is unavailable" },
  FL_ERR_NATS_SERVER: { status: 503, title: "nats-server could not be found or started" },
  FL_ERR_TIMEOUT: { status: 504, title: "a service did not answer in time" },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The HTTP status of a code; 500 for a code the catalogue does not know. */
export function httpStatusOf(code: string): number {
  return (ERROR_CATALOGUE as Record<string, CatalogueEntry>)[code]?.status ?? 500;
}

/** `FL_ERR_KVM_EEXIST` → `EEXIST`; undefined for codes that carry no errno. */
export function errnoOf(code: string): KvmErrno | undefined {
  if (!code.startsWith(KVM_PREFIX)) return undefined;
  const e = code.slice(KVM_PREFIX.length);
  return (KVM_ERRNOS as readonly string[]).includes(e) ? (e as KvmErrno) : undefined;
}

/** The JSON a service sends in an error reply (`{ error: ... }`) and the API's body carries. */
export interface ErrorJson {
  code: string;
  message: string;
  path?: string;
  errno?: string;
}

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
  /** The HTTP status, from ERROR_CATALOGUE. */
  get status(): number {
    return httpStatusOf(this.code);
  }
  /** `path` and `errno` are included when the error has them. */
  toJSON(): ErrorJson {
    const self = this as { path?: unknown; errno?: unknown };
    return {
      code: this.code,
      message: this.message,
      ...(typeof self.path === "string" ? { path: self.path } : {}),
      ...(typeof self.errno === "string" ? { errno: self.errno } : {}),
    };
  }
}

/** A document (scenario, HTTP body, NATS message) failed validation; `path` is a JSON pointer. */
export class ValidationError extends FaultlineError {
  readonly path: string;
  constructor(what: string, path: string, message: string, code = "FL_ERR_INVALID") {
    super(code, `invalid ${what}: ${path || "/"}: ${message}`);
    this.name = "ValidationError";
    this.path = path;
  }
}

/**
 * What a KVM ioctl would return, as a validation failure: `errno` is the negative return's name
 * (`__kvm_set_memory_region` returns -EINVAL for a misaligned region, -EEXIST for an overlap).
 * The code is FL_ERR_KVM_<errno>, so the code alone rebuilds the errno and the HTTP status.
 */
export class KvmErrnoError extends ValidationError {
  readonly errno: KvmErrno;
  constructor(errno: KvmErrno, what: string, path: string, message: string) {
    super(what, path, `${message} (-${errno})`, `${KVM_PREFIX}${errno}`);
    this.name = "KvmErrnoError";
    this.errno = errno;
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

/**
 * The peer answered with an error (micro-style `Nats-Service-Error` headers). Its status is the
 * catalogue's for the remote code, so a service's FL_ERR_NOT_FOUND stays a 404; a remote failure
 * that is not the caller's (FL_ERR_INTERNAL, or a code this catalogue does not know) is a 502.
 */
export class RemoteError extends FaultlineError {
  readonly subject: string;
  readonly path: string | undefined;
  /** the errno a KVM-errno code carries (FL_ERR_KVM_EEXIST → EEXIST) */
  readonly errno: KvmErrno | undefined;
  /** the peer's message, without the subject */
  readonly remoteMessage: string;
  constructor(subject: string, code: string, message: string, path?: string) {
    super(code, `${subject}: ${message}`);
    this.name = "RemoteError";
    this.subject = subject;
    this.path = path;
    this.errno = errnoOf(code);
    this.remoteMessage = message;
  }
  override get status(): number {
    const known = Object.hasOwn(ERROR_CATALOGUE, this.code);
    const s = httpStatusOf(this.code);
    return known && s !== 500 ? s : 502;
  }
}

/** The local NATS connection is closed: nothing more can be sent. */
export class ClosedConnectionError extends FaultlineError {
  constructor(subject: string, cause?: unknown) {
    super("FL_ERR_CLOSED", `NATS connection closed (request on ${subject})`, cause);
    this.name = "ClosedConnectionError";
  }
}

/** The stack is running as much as its budget allows: try again when a run ends. */
export class BusyError extends FaultlineError {
  constructor(message: string) {
    super("FL_ERR_BUSY", message);
    this.name = "BusyError";
  }
}

/** A request given up because what it was for is gone (the VM was torn down). */
export class CancelledError extends FaultlineError {
  constructor(subject: string) {
    super("FL_ERR_CANCELLED", `request on ${subject} cancelled: the VM was torn down`);
    this.name = "CancelledError";
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
