/**
 * `workload.trace.file`: the CLI reads the lackey trace (relative to the scenario file) and puts
 * its page sequence (`trace.runs`) in the scenario instead, so the run request stays small.
 */
import { parseLackey, ValidationError } from "@faultline/shared";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";

/** Replaces `workload.trace.file` in a scenario document (not validated yet) by `trace.runs`. */
export async function resolveTraceFile(doc: unknown, scenarioFile: string): Promise<unknown> {
  const w = (doc as { workload?: { trace?: Record<string, unknown> } } | null)?.workload;
  const t = w?.trace;
  if (!t || typeof t.file !== "string" || t.runs !== undefined) return doc;
  const path = resolve(dirname(scenarioFile), t.file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ValidationError("scenario", "/workload/trace/file", `cannot read ${path}: ${(err as Error).message}`);
  }
  const parsed = parseLackey(text, { instructions: t.instructions === true, path: "/workload/trace/file" });
  if (parsed.runs.length === 0) throw new ValidationError("scenario", "/workload/trace/file", `${path} holds no lackey access line`);
  const { file: _file, ...rest } = t;
  return { ...(doc as object), workload: { ...w, trace: { ...rest, runs: parsed.runs } } };
}
