/**
 * The referee end to end: this machine's kernel (test/kernel/uffd-referee.c) and the model (the
 * services behind `api`) on the same experiments, compared pair by pair.
 */
import { loadavg } from "node:os";
import type { ApiClient } from "../../cli/src/index.ts";
import { KERNEL_KINDS, kernelMeasure, runKernelReferee, type KernelKind, type KernelReport, type Measure } from "./referee-kernel.ts";
import { END_MS, measureAllModel, SIGNAL_AT_MS, STALL_MS } from "./referee-model.ts";
import { renderTable, rows, type Row } from "./referee-table.ts";

export interface Referee {
  report: KernelReport;
  rows: Row[];
  table: string;
}

export function kernelMeasures(report: KernelReport): Record<KernelKind, Measure> {
  return Object.fromEntries(KERNEL_KINDS.map((k) => [k, kernelMeasure(report.kinds[k])])) as Record<KernelKind, Measure>;
}

function header(report: KernelReport): string {
  const date = new Date().toISOString().slice(0, 10);
  return (
    `Measured ${date} on kernel ${report.kernel} (load average ${loadavg()[0]!.toFixed(1)}): the kernel's window is ` +
    `${report.windowMs} ms from SIGUSR1 to UFFDIO_COPY; the model's is ${END_MS - SIGNAL_AT_MS} ms from SIGUSR1 ` +
    `(at ${SIGNAL_AT_MS} ms) to the end of the run, inside a ${STALL_MS} ms stall. Each cell is kernel / model.`
  );
}

/** The kernel first, then the model, never both at once (they would share the CPUs). */
export async function referee(api: ApiClient): Promise<Referee> {
  const report = await runKernelReferee();
  const model = await measureAllModel(api);
  const rs = rows(kernelMeasures(report), model);
  return { report, rows: rs, table: renderTable(rs, header(report)) };
}
