/** A small client of the control API, used by the CLI (and the tests) over real HTTP. */
import type { Result } from "@faultline/shared";

export interface RunView {
  id: string;
  status: "starting" | "running" | "completed" | "failed";
  scenario: string;
  elapsedMs: number | null;
  durationMs: number;
  vcpus: Array<{ state: string; pagesTouched: number }>;
  error: { code: string; message: string } | null;
  result: Result | null;
}

export class ApiError extends Error {
  readonly status: number;
  readonly body: { code?: string; message?: string; path?: string };
  constructor(status: number, body: { code?: string; message?: string; path?: string }) {
    super(body.message ?? `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

export class ApiClient {
  readonly base: string;
  constructor(base: string) {
    this.base = base;
  }

  async call<T>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      init.headers = { "content-type": contentType };
    }
    const res = await fetch(this.base + path, init);
    const json = (await res.json()) as T & { code?: string; message?: string };
    if (!res.ok) throw new ApiError(res.status, json);
    return json;
  }

  createRun(scenario: unknown): Promise<RunView> {
    return this.call("POST", "/v1/runs", scenario);
  }

  getRun(id: string): Promise<RunView> {
    return this.call("GET", `/v1/runs/${id}`);
  }

  /** Polls until the run has ended; `onTick` sees every intermediate view. */
  async waitRun(id: string, onTick?: (r: RunView) => void, pollMs = 100): Promise<RunView> {
    for (;;) {
      const r = await this.getRun(id);
      onTick?.(r);
      if (r.status === "completed" || r.status === "failed") return r;
      await new Promise((res) => setTimeout(res, pollMs));
    }
  }
}
