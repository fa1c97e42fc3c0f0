/** The live part of `faultline run`'s progress line: how many vCPUs are in each state, and where they wait. */
import type { RunView } from "./client.ts";

type LiveVcpu = RunView["vcpus"][number];

/** What the vCPUs of the runs are doing, e.g. "2 blocked (tdp TASK_KILLABLE), 1 paused" (most first). */
export function stateCounts(vcpus: readonly LiveVcpu[]): string {
  const groups = new Map<string, number>();
  for (const v of vcpus) {
    const b = v.blockedIn;
    const key = b ? `${v.state} (${b.site} ${b.waitState})` : v.state;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return [...groups].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join(", ");
}

/** Pages touched over pages to touch, summed over the vCPUs. */
export function pageCounts(vcpus: readonly LiveVcpu[], pagesPerVcpu: number): string {
  const touched = vcpus.reduce((n, v) => n + v.pagesTouched, 0);
  return `pages ${touched}/${pagesPerVcpu * vcpus.length}`;
}
