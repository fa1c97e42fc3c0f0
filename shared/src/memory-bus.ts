/**
 * The bus inside one process: NATS subject semantics (`*` one token, `>` one or more trailing
 * tokens), queue groups (one member of each group gets a message, every plain subscriber gets it),
 * request/reply with the typed errors of the NATS path (no responders, timeouts, remote errors with
 * the handler's code). Bodies travel as JSON text and are parsed and validated on delivery, exactly
 * as over NATS; every delivery is asynchronous (setImmediate: a handler never runs inside the call
 * that sent its message, and a request/reply ping-pong cannot starve timers).
 */
import type { Static, TSchema } from "@sinclair/typebox";
import type { Logger } from "pino";
import {
  CancelledError, ClosedConnectionError, FaultlineError, NoRespondersError, NotFoundError, RemoteError, RequestTimeoutError, ValidationError, type ErrorJson,
} from "./errors.ts";
import { assertValid } from "./schemas/validate.ts";
import type { RequestOptions } from "./request.ts";
import type { ServeOptions } from "./serve.ts";
import { transportEvents } from "./wire.ts";
import type { Bus, BusStatus, BusSubscription } from "./bus.ts";

type Answer = { data: string } | { error: ErrorJson };

interface Delivery {
  subject: string;
  data: string;
  reply?: (a: Answer) => void;
}

interface Sub {
  tokens: string[];
  queue: string;
  closed: boolean;
  deliver: (m: Delivery) => void;
}

/** NATS subject matching: `*` is one token, `>` the rest (at least one token). */
export function subjectMatches(pattern: string | readonly string[], subject: string | readonly string[]): boolean {
  const p = typeof pattern === "string" ? pattern.split(".") : pattern;
  const s = typeof subject === "string" ? subject.split(".") : subject;
  for (let i = 0; i < p.length; i++) {
    const t = p[i];
    if (t === ">") return s.length > i;
    if (i >= s.length) return false;
    if (t !== "*" && t !== s[i]) return false;
  }
  return p.length === s.length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function parseJson(subject: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(`message on ${subject}`, "", "body is not JSON");
  }
}

export class MemoryBus implements Bus {
  readonly #subs = new Set<Sub>();
  /** round-robin position per queue group */
  readonly #turns = new Map<string, number>();
  readonly #watchers = new Set<(s: BusStatus | null) => void>();
  #closed = false;

  /** Routes one message; returns how many subscriptions it went to. */
  #route(subject: string, data: string, reply?: (a: Answer) => void): number {
    const tokens = subject.split(".");
    const groups = new Map<string, Sub[]>();
    const plain: Sub[] = [];
    for (const s of this.#subs) {
      if (!subjectMatches(s.tokens, tokens)) continue;
      if (!s.queue) plain.push(s);
      else {
        const g = groups.get(s.queue);
        if (g) g.push(s);
        else groups.set(s.queue, [s]);
      }
    }
    const to = [...plain];
    for (const [q, members] of groups) {
      const turn = this.#turns.get(q) ?? 0;
      this.#turns.set(q, turn + 1);
      to.push(members[turn % members.length]!);
    }
    const m: Delivery = reply ? { subject, data, reply } : { subject, data };
    for (const s of to) setImmediate(() => s.closed || this.#closed || s.deliver(m));
    return to.length;
  }

  #subscribe(subject: string, queue: string, deliver: (m: Delivery) => void): BusSubscription {
    const s: Sub = { tokens: subject.split("."), queue, closed: false, deliver };
    if (!this.#closed) this.#subs.add(s);
    return {
      unsubscribe: () => {
        s.closed = true;
        this.#subs.delete(s);
      },
    };
  }

  /** One attempt: the first answer, or why there is none. */
  #attempt(subject: string, data: string, ms: number, signal?: AbortSignal): Promise<Answer | "no-responders" | "timeout" | "cancelled"> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: Answer | "no-responders" | "timeout" | "cancelled") => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        setImmediate(() => resolve(r));
      };
      const onAbort = () => finish("cancelled");
      const timer = setTimeout(() => finish("timeout"), ms);
      signal?.addEventListener("abort", onAbort);
      if (this.#route(subject, data, finish) === 0) finish("no-responders");
    });
  }

  async request<R extends TSchema>(subject: string, body: unknown, replySchema: R, o: RequestOptions): Promise<Static<R>> {
    const deadline = performance.now() + o.timeoutMs;
    const retry = o.retry ?? true;
    const data = JSON.stringify(body);
    let attempt = 0;
    let last: FaultlineError | null = null;
    const giveUp = (err: FaultlineError) => {
      transportEvents.emit("giveUp", { subject, attempts: attempt + 1, code: err.code, timeoutMs: o.timeoutMs });
      return err;
    };
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw giveUp(last ?? new RequestTimeoutError(subject, o.timeoutMs));
      if (o.signal?.aborted) throw new CancelledError(subject);
      if (this.#closed) throw new ClosedConnectionError(subject);
      // nothing is lost in one process: a retried request waits out its whole deadline in one attempt
      const got = await this.#attempt(subject, data, retry ? left : Math.max(1, Math.min(left, o.attemptMs ?? 2000)), o.signal);
      if (got === "cancelled") throw new CancelledError(subject);
      if (got === "timeout") throw giveUp(new RequestTimeoutError(subject, Math.round(performance.now() - (deadline - o.timeoutMs))));
      if (got === "no-responders") {
        last = new NoRespondersError(subject);
        if (!retry) throw giveUp(last);
        attempt++;
        transportEvents.emit("retry", { subject, attempt, reason: "no-responders" });
        await sleep(Math.min(500, 25 * 2 ** Math.min(attempt, 5), Math.max(0, deadline - performance.now())));
        continue;
      }
      if ("error" in got) throw new RemoteError(subject, got.error.code || "FL_ERR_REMOTE", got.error.message.replace(/[\r\n]/g, " "), got.error.path);
      return assertValid(`reply on ${subject}`, replySchema, parseJson(subject, got.data));
    }
  }

  publish(subject: string, body: unknown): void {
    if (this.#closed) return;
    this.#route(subject, JSON.stringify(body));
  }

  serve<S extends TSchema>(log: Logger, subject: string, schema: S, handler: (body: Static<S>) => unknown, o: ServeOptions = {}): BusSubscription {
    return this.#subscribe(subject, o.queue ?? "q", (m) => {
      const fail = (e: unknown) => {
        const level = e instanceof ClosedConnectionError || e instanceof CancelledError ? "debug" : e instanceof ValidationError || e instanceof NotFoundError ? "warn" : "error";
        log[level]({ err: e, subject: m.subject }, "request failed");
        const fe = e instanceof FaultlineError ? e : new FaultlineError("FL_ERR_INTERNAL", String((e as Error)?.message ?? e));
        m.reply?.({ error: fe.toJSON() });
      };
      const ok = (out: unknown) => m.reply?.({ data: JSON.stringify(out ?? { ok: true }) });
      try {
        const body = assertValid(`message on ${m.subject}`, schema, parseJson(m.subject, m.data));
        const vm = (body as { vm?: unknown }).vm;
        if (o.vm !== undefined && vm !== undefined && vm !== o.vm) {
          throw new ValidationError(`message on ${m.subject}`, "/vm", `the body names VM ${String(vm)} but the subject is VM ${o.vm}'s`);
        }
        const out = handler(body);
        if (out instanceof Promise) out.then(ok).catch(fail);
        else ok(out);
      } catch (e) {
        fail(e);
      }
    });
  }

  listen<S extends TSchema>(log: Logger, subject: string, schema: S, handler: (body: Static<S>) => void, o: ServeOptions = {}): BusSubscription {
    return this.serve(log, subject, schema, (b) => void handler(b), { ...o, queue: o.queue ?? "" });
  }

  answer(subject: string, reply: () => unknown): BusSubscription {
    return this.#subscribe(subject, "", (m) => m.reply?.({ data: JSON.stringify(reply()) }));
  }

  /** Tells the status watchers of a connection event (tests of the outage paths). */
  announce(s: BusStatus): void {
    for (const w of this.#watchers) w(s);
  }

  async *status(): AsyncIterable<BusStatus> {
    const q: BusStatus[] = [];
    let wake = () => undefined as void;
    const w = (s: BusStatus | null) => {
      if (s) q.push(s);
      wake();
    };
    this.#watchers.add(w);
    try {
      for (;;) {
        while (q.length) yield q.shift()!;
        if (this.#closed) return;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      this.#watchers.delete(w);
    }
  }

  isClosed(): boolean {
    return this.#closed;
  }

  server(): string {
    return "memory";
  }

  /** subscriptions alive (tests check that a stopped service left none) */
  get subscriptions(): number {
    return this.#subs.size;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#subs) s.closed = true;
    this.#subs.clear();
    for (const w of this.#watchers) w(null);
  }
}
