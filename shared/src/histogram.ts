/** Latency summaries: HDR histogram percentiles plus QEMU-style log2 buckets (`postcopy-latency-dist`). */
import * as hdr from "hdr-histogram-js";
import type { Latency } from "./schemas/result.ts";

export const LOG2_BUCKETS = 24;

/** A latency summary as the result keeps it (LatencySchema), less the testbed-stall count the services add. */
export type LatencySummary = Omit<Latency, "testbedStalled">;

export function summarize(samplesUs: readonly number[]): LatencySummary {
  const log2Buckets = new Array<number>(LOG2_BUCKETS).fill(0);
  if (samplesUs.length === 0) return { count: 0, p50Us: 0, p90Us: 0, p99Us: 0, maxUs: 0, log2Buckets };
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 2 ** 40, numberOfSignificantValueDigits: 3 });
  let max = 0;
  for (const s of samplesUs) {
    const v = Math.max(1, Math.round(s));
    h.recordValue(v);
    max = Math.max(max, v);
    const b = Math.min(LOG2_BUCKETS - 1, Math.floor(Math.log2(v)));
    log2Buckets[b] = (log2Buckets[b] ?? 0) + 1;
  }
  const out = {
    count: samplesUs.length,
    p50Us: h.getValueAtPercentile(50),
    p90Us: h.getValueAtPercentile(90),
    p99Us: h.getValueAtPercentile(99),
    maxUs: max,
    log2Buckets,
  };
  h.destroy();
  return out;
}
