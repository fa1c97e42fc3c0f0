/**
 * The demand-paging rate as `demand_paging_test` (tools/testing/selftests/kvm) computes it: the
 * guest execution time runs from `memstress_start_vcpu_threads()` until the last vCPU thread has
 * finished its pages (`memstress_join_vcpu_threads()`); per-vCPU rate = `vcpu_args[0].pages` / that
 * time; overall rate = per-vCPU rate × nr_vcpus.
 *
 * Faultline can pause the VM (`pause_all_vcpus`), which the selftest never does, so paused time is
 * taken out:
 *   - the total loses every instant at which each vCPU that has not finished yet is parked (the whole
 *     guest stood still); a vCPU parked while another still runs is guest time like any other;
 *   - a vCPU's own execution time (start → its last page) loses the time it was parked before then.
 * A vCPU blocked in a slow fault is not paused: that wait is the demand-paging time being measured.
 */
import type { DemandPaging, VcpuStateName } from "@faultline/shared";

/** [from, to) in scenario ms; `to` null while the vCPU is still parked */
export type PausedInterval = readonly [number, number | null];

export interface VcpuPaging {
  /** pages in the vCPU's region (the workload's accesses) */
  pages: number;
  pagesTouched: number;
  /** when the vCPU finished its pages (scenario ms), null while it runs */
  doneAtMs: number | null;
  paused: readonly PausedInterval[];
}

/** When each vCPU was parked: fed with every state change of the vCPU (`paused` opens an interval, anything else closes it). */
export class PauseLog {
  readonly #open = new Map<number, number>();
  readonly #closed = new Map<number, PausedInterval[]>();

  note(vcpu: number, state: VcpuStateName, atMs: number): void {
    const from = this.#open.get(vcpu);
    if (state === "paused") {
      if (from === undefined) this.#open.set(vcpu, atMs);
      return;
    }
    if (from === undefined) return;
    this.#open.delete(vcpu);
    const list = this.#closed.get(vcpu) ?? [];
    list.push([from, atMs]);
    this.#closed.set(vcpu, list);
  }

  of(vcpu: number): PausedInterval[] {
    const open = this.#open.get(vcpu);
    return [...(this.#closed.get(vcpu) ?? []), ...(open === undefined ? [] : [[open, null] as const])];
  }
}

/** The demand-paging figures at `nowMs` (scenario ms; the vCPUs started at 0). */
export function demandPaging(vcpus: readonly VcpuPaging[], nowMs: number): DemandPaging {
  const n = vcpus.length;
  const allDone = n > 0 && vcpus.every((v) => v.doneAtMs !== null);
  const endMs = allDone ? Math.max(...vcpus.map((v) => v.doneAtMs!)) : nowMs;
  const pausedMs = vmPausedMs(vcpus, endMs);
  const totalMs = Math.max(1e-6, endMs - pausedMs);
  // vcpu_args[0].pages once every vCPU finished; before that, what the vCPUs touched on average
  const pagesPerVcpu = allDone ? vcpus[0]!.pages : vcpus.reduce((s, v) => s + v.pagesTouched, 0) / Math.max(1, n);
  const perVcpuRate = pagesPerVcpu / (totalMs / 1000);
  return {
    allDone,
    totalGuestExecutionS: round(totalMs / 1000, 3),
    perVcpuRate: round(perVcpuRate, 3),
    overallRate: round(perVcpuRate * n, 3),
    totalGuestExecutionNs: Math.round(totalMs * 1e6),
    pagesPerVcpu: round(pagesPerVcpu, 3),
    vcpuExecutionNs: vcpus.map((v) => (v.doneAtMs === null ? null : Math.round((v.doneAtMs - overlap(v.paused, 0, v.doneAtMs)) * 1e6))),
    pausedS: round(pausedMs / 1000, 6),
  };
}

/** Time in [0, endMs] during which every vCPU not finished yet was parked. */
function vmPausedMs(vcpus: readonly VcpuPaging[], endMs: number): number {
  const cuts = new Set<number>([0, endMs]);
  for (const v of vcpus) {
    if (v.doneAtMs !== null) cuts.add(v.doneAtMs);
    for (const [from, to] of v.paused) {
      cuts.add(from);
      if (to !== null) cuts.add(to);
    }
  }
  const points = [...cuts].filter((x) => x >= 0 && x <= endMs).sort((a, b) => a - b);
  let ms = 0;
  for (let i = 0; i + 1 < points.length; i++) {
    const a = points[i]!;
    const b = points[i + 1]!;
    const mid = (a + b) / 2; // no cut inside (a, b): what holds at mid holds on the whole segment
    const running = vcpus.filter((v) => v.doneAtMs === null || v.doneAtMs > mid);
    if (running.length > 0 && running.every((v) => v.paused.some(([from, to]) => from <= mid && mid < (to ?? Infinity)))) ms += b - a;
  }
  return ms;
}

/** How much of [a, b] the intervals cover (a vCPU's intervals do not overlap each other). */
function overlap(intervals: readonly PausedInterval[], a: number, b: number): number {
  let ms = 0;
  for (const [from, to] of intervals) ms += Math.max(0, Math.min(b, to ?? b) - Math.max(a, from));
  return ms;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
