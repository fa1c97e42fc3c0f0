/**
 * A small client of the control API, used by the CLI (and the tests) over real HTTP. Every call is
 * bounded (AbortSignal.timeout); a failed call is a typed error naming the method and URL; waitRun
 * gives up once the API has been unreachable for a bound instead of polling forever.
 */
import { FaultlineError, type Result } from "@faultline/shared";

export type RunStatus = "starting" | "running" | "completed" | "failed" | "aborted" | "cancelled";
export const TERMINAL_STATUSES: readonly RunStatus[] = ["completed", "failed", "aborted", "cancelled"];
export const isTerminal = (s: string): boolean => (TERMINAL_STATUSES as readonly string[]).includes(s);

export interface RunView {
  id: string;
  status: RunStatus;
  scenario: string;
  elapsedMs: number | null;
  durationMs: number;
  /** the live view: blockedIn says where a blocked, spinning or halted vCPU waits (absent from older APIs) */
  vcpus: Array<{ state: string; pagesTouched: number; blockedIn?: { site: string; gfn: number; waitState: string; sinceMs: number } | null }>;
  error: { code: string; message: string; service?: string } | null;
  endedAt?: string | null;
  result: Result | null;
}

/** The API answered with an error status; `body` is its error document. */
export class ApiError extends FaultlineError {
  readonly #status: number;
  readonly url: string;
  readonly body: { code?: string; message?: string; path?: string };
  constructor(method: string, url: string, status: number, body: { code?: string; message?: string; path?: string }) {
    super(body.code ?? "FL_ERR_HTTP", `${method} ${url}: HTTP ${status}${body.message ? `: ${body.message}` : ""}`);
    this.name = "ApiError";
    this.#status = status;
    this.url = url;
    this.body = body;
  }
  /** the HTTP status the API answered with */
  override get status(): number {
    return this.#status;
  }
}

/** No answer from the API: connection failed (FL_ERR_API_UNREACHABLE) or timed out (FL_ERR_API_TIMEOUT). */
export class ApiRequestError extends FaultlineError {
  readonly url: string;
  constructor(code: "FL_ERR_API_UNREACHABLE" | "FL_ERR_API_TIMEOUT", url: string, message: string, cause?: unknown) {
    super(code, message, cause);
    this.name = "ApiRequestError";
    this.url = url;
  }
}

export interface ApiClientOptions {
  /** per HTTP call; @default 10000 */
  timeoutMs?: number;
  /** waitRun throws after the API has failed to answer for this long in a row; @default 15000 */
  unreachableMs?: number;
}

export interface WaitOptions {
  /** stops the wait (rejects with the signal's reason) */
  signal?: AbortSignal;
}

function why(err: unknown): string {
  const c = (err as { cause?: { code?: string; message?: string } }).cause;
  return c?.code ?? c?.message ?? (err as Error).message ?? String(err);
}

export class ApiClient {
  readonly base: string;
  readonly timeoutMs: number;
  readonly unreachableMs: number;
  constructor(base: string, o: ApiClientOptions = {}) {
    this.base = base;
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.unreachableMs = o.unreachableMs ?? 15_000;
  }

  async call<T>(method: string, path: string, body?: unknown, contentType = "application/json", signal?: AbortSignal): Promise<T> {
    const url = this.base + path;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const init: RequestInit = { method, signal: signal ? AbortSignal.any([timeout, signal]) : timeout };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      init.headers = { "content-type": contentType };
    }
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, init);
      text = await res.text();
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) throw new ApiRequestError("FL_ERR_API_TIMEOUT", url, `${method} ${url}: no response within ${this.timeoutMs} ms`, err);
      throw new ApiRequestError("FL_ERR_API_UNREACHABLE", url, `${method} ${url}: ${why(err)}`, err);
    }
    let json: T & { code?: string; message?: string };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new ApiError(method, url, res.status, { code: "FL_ERR_HTTP", message: `not JSON: ${text.slice(0, 200)}` });
    }
    if (!res.ok) throw new ApiError(method, url, res.status, json);
    return json;
  }

  createRun(scenario: unknown): Promise<RunView> {
    return this.call("POST", "/v1/runs", scenario);
  }

  getRun(id: string, signal?: AbortSignal): Promise<RunView> {
    return this.call("GET", `/v1/runs/${id}`, undefined, undefined, signal);
  }

  /**
   * Polls until the run has ended (completed, failed, aborted, cancelled); `onTick` sees every
   * intermediate view. Throws an ApiRequestError once the API has not answered for `unreachableMs`.
   */
  async waitRun(id: string, onTick?: (r: RunView) => void, pollMs = 100, o: WaitOptions = {}): Promise<RunView> {
    let failingSince: number | null = null;
    for (;;) {
      try {
        const r = await this.getRun(id, o.signal);
        failingSince = null;
        onTick?.(r);
        if (isTerminal(r.status)) return r;
      } catch (err) {
        // unreachable, or a server-side failure (the run store or NATS briefly away): transient, within the bound
        const transient = err instanceof ApiRequestError || (err instanceof ApiError && err.status >= 500);
        if (!transient) throw err;
        failingSince ??= Date.now();
        if (Date.now() - failingSince >= this.unreachableMs) {
          throw new ApiRequestError("FL_ERR_API_UNREACHABLE", (err as ApiRequestError | ApiError).url, `API unreachable for ${this.unreachableMs} ms while waiting for run ${id} (last: ${(err as Error).message})`, err);
        }
      }
      await new Promise<void>((res, rej) => {
        const onAbort = () => {
          clearTimeout(t);
          rej(o.signal!.reason);
        };
        const t = setTimeout(() => {
          o.signal?.removeEventListener("abort", onAbort);
          res();
        }, pollMs);
        o.signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
  }
}
