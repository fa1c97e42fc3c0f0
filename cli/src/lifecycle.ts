/**
 * A command's life with a stack: SIGINT, SIGTERM and SIGHUP stop the stack (every service, then
 * nats-server) before the CLI exits, as do normal ends and errors; a service the supervisor gives
 * up on ends the command with one line.
 */
import { FaultlineError } from "@faultline/shared";
import { constants } from "node:os";
import { startStack, StackStartError, type Stack, type StackOptions } from "./stack.ts";
import type { GiveUp } from "./supervisor.ts";

const TERMINATING = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
type TermSignal = (typeof TERMINATING)[number];

/** The command was ended by a signal. */
export class Interrupted extends FaultlineError {
  readonly signal: TermSignal;
  constructor(signal: TermSignal) {
    super("FL_ERR_INTERRUPTED", `interrupted by ${signal}`);
    this.name = "Interrupted";
    this.signal = signal;
  }
  /** the shell's convention: 128 + signal number */
  get exitCode(): number {
    return 128 + constants.signals[this.signal];
  }
}

/** The supervisor gave up on a service. */
export class ServiceGaveUp extends FaultlineError {
  readonly giveUp: GiveUp;
  constructor(g: GiveUp) {
    super("FL_ERR_SERVICE_DIED", g.message);
    this.name = "ServiceGaveUp";
    this.giveUp = g;
  }
}

/** What a command body gets besides the stack. */
export interface CommandContext {
  /** races a promise against the command's end: rejects with Interrupted or ServiceGaveUp */
  guard: <T>(p: Promise<T>) => Promise<T>;
  /** aborted when the command is ending (signal or a service given up on): stop polling */
  signal: AbortSignal;
}

/** Traps the terminating signals until disposed; `interrupted` rejects with the first one. */
export function trapSignals(): { controller: AbortController; interrupted: Promise<never>; dispose: () => void } {
  const controller = new AbortController();
  let reject!: (e: Interrupted) => void;
  const interrupted = new Promise<never>((_, r) => (reject = r));
  interrupted.catch(() => undefined);
  const handlers = TERMINATING.map((sig) => {
    // stays installed while stopping, so a second Ctrl-C does not skip the clean-up
    const h = () => {
      if (controller.signal.aborted) return;
      controller.abort(sig);
      reject(new Interrupted(sig));
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return { controller, interrupted, dispose: () => handlers.forEach(([sig, h]) => process.off(sig, h)) };
}

/**
 * Starts a stack, runs `body` with it, stops it whatever happens. Returns body's exit code, or
 * 128+signal when interrupted, or 1 (after one line on stderr) when a service could not be kept up.
 */
export async function withStack(o: StackOptions, body: (stack: Stack, ctx: CommandContext) => Promise<number>): Promise<number> {
  const trap = trapSignals();
  let stack: Stack | null = null;
  try {
    // not raced with the signal: startStack sees the abort, stops what it started, and throws
    stack = await startStack({ ...o, signal: trap.controller.signal });
    const ending = new AbortController();
    const gaveUp = stack.gaveUp.then((g) => {
      ending.abort(new ServiceGaveUp(g));
      return Promise.reject(new ServiceGaveUp(g));
    });
    gaveUp.catch(() => undefined);
    trap.interrupted.catch((e: Interrupted) => ending.abort(e));
    const guard = <T>(p: Promise<T>) => Promise.race([p, trap.interrupted, gaveUp]);
    return await body(stack, { guard, signal: ending.signal });
  } catch (err) {
    if (err instanceof Interrupted) {
      process.stderr.write(`faultline: ${err.message}; stopping\n`);
      return err.exitCode;
    }
    if (err instanceof StackStartError && err.code === "FL_ERR_INTERRUPTED" && trap.controller.signal.aborted) {
      const i = new Interrupted(trap.controller.signal.reason as TermSignal);
      process.stderr.write(`faultline: ${i.message} during start-up; stopped\n`);
      return i.exitCode;
    }
    if (err instanceof ServiceGaveUp) {
      process.stderr.write(`faultline: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await stack?.stop();
    trap.dispose();
  }
}
