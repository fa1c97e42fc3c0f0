/**
 * Files a scenario names, read by the CLI relative to the scenario file and replaced by their
 * contents before validation (the API never reads files, and the run request stays small):
 * `pager.latency.file` becomes `samplesUs`, `workload.trace.file` (a lackey trace) becomes its page
 * sequence `trace.runs`.
 */
import { parseLackey, parseLatencySamples, ValidationError } from "@faultline/shared";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";

type Doc = { pager?: { latency?: Record<string, unknown> }; workload?: { trace?: Record<string, unknown> } } | null;

/** Resolves every file `doc` (a scenario document, not validated yet) names; returns the new document. */
export async function resolveScenarioFiles(doc: unknown, scenarioFile: string): Promise<unknown> {
  const read = async (file: string, where: string): Promise<{ path: string; text: string }> => {
    const path = resolve(dirname(scenarioFile), file);
    try {
      return { path, text: await readFile(path, "utf8") };
    } catch (err) {
      throw new ValidationError("scenario", where, `cannot read ${path}: ${(err as Error).message}`);
    }
  };
  let out = doc as Doc;
  const l = out?.pager?.latency;
  if (l && typeof l === "object" && typeof l.file === "string") {
    const { file, ...rest } = l;
    const { text } = await read(file, "/pager/latency/file");
    out = { ...out, pager: { ...out!.pager, latency: { ...rest, samplesUs: parseLatencySamples(text, file) } } };
  }
  const t = out?.workload?.trace;
  if (t && typeof t.file === "string" && t.runs === undefined) {
    const where = "/workload/trace/file";
    const { file, ...rest } = t;
    const { path, text } = await read(file, where);
    const parsed = parseLackey(text, { instructions: t.instructions === true, path: where });
    if (parsed.runs.length === 0) throw new ValidationError("scenario", where, `${path} holds no lackey access line`);
    out = { ...out, workload: { ...out!.workload, trace: { ...rest, runs: parsed.runs } } };
  }
  return out;
}
