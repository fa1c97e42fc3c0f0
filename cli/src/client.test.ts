import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { ApiClient, ApiError, ApiRequestError, type RunView } from "./client.ts";
import { freePort } from "./stack.ts";

let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
  servers = [];
});

/** A local HTTP server; `handle` answers or, returning false, never does. */
async function serve(handle: (path: string) => { status: number; body: unknown } | false): Promise<string> {
  const s = createServer((req, res) => {
    const a = handle(req.url ?? "");
    if (!a) return;
    res.writeHead(a.status, { "content-type": "application/json" }).end(JSON.stringify(a.body));
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const addr = s.address();
  return `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
}

const view = (status: string): Partial<RunView> => ({ id: "r1", status: status as RunView["status"], vcpus: [] });

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a failure");
}

describe("client", () => {
  it("client - a call the API never answers fails after the timeout with FL_ERR_API_TIMEOUT naming the URL", async () => {
    const base = await serve(() => false);
    const e = await failure(new ApiClient(base, { timeoutMs: 200 }).getRun("r1"));
    expect(e).toBeInstanceOf(ApiRequestError);
    expect((e as ApiRequestError).code).toBe("FL_ERR_API_TIMEOUT");
    expect((e as ApiRequestError).message).toContain(`GET ${base}/v1/runs/r1`);
  });

  it("client - a closed port is FL_ERR_API_UNREACHABLE; an error status is an ApiError with the body's code", async () => {
    const port = await freePort();
    const e = await failure(new ApiClient(`http://127.0.0.1:${port}`).getRun("r1"));
    expect((e as ApiRequestError).code).toBe("FL_ERR_API_UNREACHABLE");
    expect((e as ApiRequestError).url).toBe(`http://127.0.0.1:${port}/v1/runs/r1`);
    const base = await serve(() => ({ status: 404, body: { code: "FL_ERR_NOT_FOUND", message: "run r1 not found" } }));
    const h = await failure(new ApiClient(base).getRun("r1"));
    expect(h).toBeInstanceOf(ApiError);
    expect(h).toMatchObject({ status: 404, code: "FL_ERR_NOT_FOUND" });
  });

  it("client - waitRun ends on aborted and cancelled as on completed and failed", async () => {
    for (const status of ["aborted", "cancelled", "failed", "completed"]) {
      let polls = 0;
      const base = await serve(() => ({ status: 200, body: view(++polls < 3 ? "running" : status) }));
      const r = await new ApiClient(base).waitRun("r1", undefined, 10);
      expect(r.status).toBe(status);
      expect(polls).toBe(3);
    }
  });

  it("client - waitRun throws once the API has been unreachable for the bound, not before", async () => {
    let polls = 0;
    const base = await serve(() => (++polls <= 2 ? { status: 200, body: view("running") } : false));
    const api = new ApiClient(base, { timeoutMs: 100, unreachableMs: 600 });
    const e = await failure(api.waitRun("r1", undefined, 20));
    expect((e as ApiRequestError).code).toBe("FL_ERR_API_UNREACHABLE");
    expect((e as Error).message).toMatch(/unreachable for 600 ms while waiting for run r1/);
    // it kept trying past the first failure: several unanswered polls
    expect(polls).toBeGreaterThan(3);
  });

  it("client - waitRun stops when its signal is aborted", async () => {
    const base = await serve(() => ({ status: 200, body: view("running") }));
    const ac = new AbortController();
    const p = new ApiClient(base).waitRun("r1", undefined, 20, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error("stop")), 100);
    expect(((await failure(p)) as Error).message).toBe("stop");
  });
});
