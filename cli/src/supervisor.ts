/**
 * Keeps a set of named child processes running, the way an Erlang supervisor with a `one_for_one`
 * strategy does: a child that exits without being asked to is started again after an exponential
 * back-off; if one child dies `maxDeaths` times within `windowMs`, the supervisor gives up, stops
 * every child and resolves `gaveUp` with one line that names the child and how it died.
 */
import type { ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { stopChild } from "./nats-server.ts";

export interface SupervisorPolicy {
  /** first restart delay; doubles with each consecutive restart. @default 250 */
  initialDelayMs: number;
  /** @default 8000 */
  maxDelayMs: number;
  /** a child that stayed up this long starts again from `initialDelayMs`. @default 30000 */
  resetAfterMs: number;
  /** give up when one child dies this many times within `windowMs`. @default 5 */
  maxDeaths: number;
  /** @default 60000 */
  windowMs: number;
  /** SIGTERM → SIGKILL grace when stopping. @default 3000 */
  stopGraceMs: number;
}

export const DEFAULT_POLICY: SupervisorPolicy = { initialDelayMs: 250, maxDelayMs: 8000, resetAfterMs: 30_000, maxDeaths: 5, windowMs: 60_000, stopGraceMs: 3000 };

export interface RestartInfo {
  name: string;
  /** `SIGKILL`, `exit code 1`, … */
  exit: string;
  /** consecutive restarts of this child, from 1 */
  attempt: number;
  delayMs: number;
}

export interface GiveUp {
  name: string;
  exit: string;
  deaths: number;
  windowMs: number;
  /** `service mmu died (SIGKILL) 5 times in 60 s; giving up` */
  message: string;
}

interface Entry {
  start: () => ChildProcess;
  child: ChildProcess;
  startedAt: number;
  consecutive: number;
  deaths: number[];
  timer: NodeJS.Timeout | null;
  /** how the child died before arm() */
  unarmedExit: string | null;
}

export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ?? `exit code ${code}`;
}

export interface SupervisorOptions {
  /** where restart lines go; @default stderr, prefixed `faultline: ` */
  log?: (line: string) => void;
  /**
   * false: until arm(), a death is only reported (`startupExit`), neither restarted nor logged; a
   * service that cannot start will not start on a retry either. @default true
   */
  armed?: boolean;
}

/**
 * Events: `spawn` (name, child) for every start including the first; `restart` (RestartInfo) when a
 * restart is scheduled; `gaveUp` (GiveUp); `startupExit` (name, exit) for a death before arm().
 */
export class Supervisor extends EventEmitter {
  readonly policy: SupervisorPolicy;
  readonly gaveUp: Promise<GiveUp>;
  readonly #entries = new Map<string, Entry>();
  readonly #log: (line: string) => void;
  #resolveGaveUp!: (g: GiveUp) => void;
  #stopping: Promise<void> | null = null;
  #armed: boolean;

  constructor(policy: Partial<SupervisorPolicy> = {}, o: SupervisorOptions = {}) {
    super();
    this.policy = { ...DEFAULT_POLICY, ...policy };
    this.#log = o.log ?? ((l) => process.stderr.write(`faultline: ${l}\n`));
    this.#armed = o.armed ?? true;
    this.gaveUp = new Promise((r) => (this.#resolveGaveUp = r));
  }

  /** From now on deaths are restarted under the policy (a death reported before is handled now). */
  arm(): void {
    this.#armed = true;
    for (const [name, e] of this.#entries) {
      if (e.unarmedExit !== null && !this.#stopping) this.#died(name, e, e.unarmedExit);
    }
  }

  /** Starts `start()` now and keeps it running under the policy; returns the first child. */
  add(name: string, start: () => ChildProcess): ChildProcess {
    if (this.#entries.has(name)) throw new Error(`supervisor: ${name} added twice`);
    const e: Entry = { start, child: null as unknown as ChildProcess, startedAt: 0, consecutive: 0, deaths: [], timer: null, unarmedExit: null };
    this.#entries.set(name, e);
    this.#spawn(name, e);
    return e.child;
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }

  /** The current child of `name` (a new object after each restart; possibly exited, awaiting restart). */
  child(name: string): ChildProcess | undefined {
    return this.#entries.get(name)?.child;
  }

  /** The pid of `name`'s running child, or undefined while it is down. */
  pid(name: string): number | undefined {
    const c = this.child(name);
    return c && c.exitCode === null && c.signalCode === null ? c.pid : undefined;
  }

  get stopping(): boolean {
    return this.#stopping !== null;
  }

  /** Cancels pending restarts and stops every child (SIGTERM, SIGKILL after the grace); idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const e of this.#entries.values()) if (e.timer) clearTimeout(e.timer);
      await Promise.all([...this.#entries.values()].map((e) => stopChild(e.child, this.policy.stopGraceMs)));
    })();
    return this.#stopping;
  }

  #spawn(name: string, e: Entry): void {
    e.timer = null;
    const child = e.start();
    e.child = child;
    e.startedAt = Date.now();
    let seen = false;
    const died = (exit: string) => {
      if (seen) return;
      seen = true;
      if (!this.#stopping && e.child === child) this.#died(name, e, exit);
    };
    child.once("exit", (code, signal) => died(describeExit(code, signal)));
    // an "error" of a child that runs (a failed kill, a pipe error) is not its death: only a failed spawn is
    child.on("error", (err) => {
      if (child.pid === undefined) died(`spawn error: ${err.message}`);
    });
    this.emit("spawn", name, child);
  }

  #died(name: string, e: Entry, exit: string): void {
    if (!this.#armed) {
      e.unarmedExit = exit;
      this.emit("startupExit", name, exit);
      return;
    }
    e.unarmedExit = null;
    const now = Date.now();
    if (now - e.startedAt >= this.policy.resetAfterMs) e.consecutive = 0;
    e.deaths = [...e.deaths.filter((t) => now - t < this.policy.windowMs), now];
    if (e.deaths.length >= this.policy.maxDeaths) {
      const g: GiveUp = {
        name,
        exit,
        deaths: e.deaths.length,
        windowMs: this.policy.windowMs,
        message: `service ${name} died (${exit})${e.deaths.length > 1 ? ` ${e.deaths.length} times in ${fmtWindow(this.policy.windowMs)}` : ""}; giving up`,
      };
      this.emit("gaveUp", g);
      void this.stop().then(() => this.#resolveGaveUp(g));
      return;
    }
    const delayMs = Math.min(this.policy.initialDelayMs * 2 ** e.consecutive, this.policy.maxDelayMs);
    e.consecutive += 1;
    const info: RestartInfo = { name, exit, attempt: e.consecutive, delayMs };
    this.#log(`service ${name} exited (${exit}); restart ${info.attempt} in ${delayMs} ms`);
    this.emit("restart", info);
    e.timer = setTimeout(() => this.#spawn(name, e), delayMs);
  }
}

function fmtWindow(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
