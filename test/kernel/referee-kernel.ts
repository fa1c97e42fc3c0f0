/**
 * The kernel half of the referee: compiles test/kernel/uffd-referee.c with gcc, runs it, and turns
 * its JSON into one `Measure` per access kind (user-load, kernel-uaccess, gup, populate).
 */
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { execFile } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { FaultlineError } from "@faultline/shared";

const run = promisify(execFile);

export const SOURCE = join(import.meta.dirname, "uffd-referee.c");
export const KERNEL_KINDS = ["user-load", "kernel-uaccess", "gup", "populate"] as const;
export type KernelKind = (typeof KERNEL_KINDS)[number];

/** What both halves report for one access that waits for a missing page while a signal arrives. */
export interface Measure {
  /** the signal was taken (handler ran / KVM_EXIT_INTR) while the page was still missing */
  honouredBeforeFill: boolean;
  /** R running (spinning), S interruptible sleep, D uninterruptible or killable sleep */
  state: "R" | "S" | "D" | "?";
  /** CPU time the waiting thread used in the window / the window's length */
  cpuShare: number;
  /** UFFD_EVENT_PAGEFAULTs the handler read in the window (signal → fill or end) */
  eventsInWindow: number;
  windowMs: number;
  eventsPerSec: number;
  /** SIGKILL ended it before its page was filled */
  killedBeforeFill: boolean;
}

const KindSchema = Type.Object({
  honouredBeforeFill: Type.Boolean(),
  state: Type.String({ minLength: 1, maxLength: 1 }),
  states: Type.String(),
  cpuShare: Type.Number(),
  eventsInWindow: Type.Integer(),
  windowMs: Type.Number(),
  eventsPerSec: Type.Number(),
  completedAfterFill: Type.Boolean(),
  killedBeforeFill: Type.Boolean(),
  killToReapMs: Type.Number(),
});
const ReportSchema = Type.Object({
  kernel: Type.String(),
  windowMs: Type.Number(),
  kinds: Type.Object(Object.fromEntries(KERNEL_KINDS.map((k) => [k, KindSchema])) as Record<KernelKind, typeof KindSchema>),
});
export type KernelKindReport = Static<typeof KindSchema>;
export type KernelReport = Static<typeof ReportSchema>;

/** The program could not be built or run, or printed something else than its report. */
export class RefereeError extends FaultlineError {
  constructor(message: string, cause?: unknown) {
    super("FL_ERR_INTERNAL", `uffd-referee: ${message}`, cause);
    this.name = "RefereeError";
  }
}

/** Why the kernel half cannot run here, or null when it can (root, /dev/userfaultfd, gcc). */
export async function kernelSkipReason(): Promise<string | null> {
  if (process.getuid?.() !== 0) return "not root (vm.unprivileged_userfaultfd may forbid userfaultfd)";
  try {
    accessSync("/dev/userfaultfd", constants.R_OK);
  } catch {
    return "no /dev/userfaultfd";
  }
  try {
    await run("gcc", ["--version"]);
  } catch {
    return "no gcc on PATH";
  }
  return null;
}

/** Builds the program in a temporary directory, runs it (bounded) and parses its report. */
export async function runKernelReferee(): Promise<KernelReport> {
  const dir = mkdtempSync(join(tmpdir(), "uffd-referee-"));
  try {
    const bin = join(dir, "uffd-referee");
    await run("gcc", ["-O2", "-pthread", "-o", bin, SOURCE]).catch((e: unknown) => {
      throw new RefereeError(`gcc failed: ${(e as { stderr?: string }).stderr ?? String(e)}`, e);
    });
    const { stdout } = await run(bin, [], { timeout: 30_000, killSignal: "SIGKILL" }).catch((e: unknown) => {
      throw new RefereeError(`the program failed: ${(e as { stdout?: string }).stdout ?? String(e)}`, e);
    });
    return parseReport(stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function parseReport(stdout: string): KernelReport {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (e) {
    throw new RefereeError(`not JSON: ${stdout.slice(0, 200)}`, e);
  }
  if (typeof doc === "object" && doc && "error" in doc) throw new RefereeError(String((doc as { error: unknown }).error));
  if (!Value.Check(ReportSchema, doc)) throw new RefereeError(`unexpected report: ${stdout.slice(0, 200)}`);
  return doc;
}

export function kernelMeasure(r: KernelKindReport): Measure {
  const state = (["R", "S", "D"] as const).find((s) => s === r.state) ?? "?";
  return {
    honouredBeforeFill: r.honouredBeforeFill,
    state,
    cpuShare: r.cpuShare,
    eventsInWindow: r.eventsInWindow,
    windowMs: r.windowMs,
    eventsPerSec: r.eventsPerSec,
    killedBeforeFill: r.killedBeforeFill,
  };
}
