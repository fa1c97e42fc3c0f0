/**
 * Assembles the result document (model.md §7) from the services' reports. Pure: the joins that
 * need two services live here. A vCPU is `blocked` when it has a fault outstanding and the pager
 * has it asleep in `handle_userfault`; a signal still pending on a vCPU asleep in a state that
 * signal cannot wake (TASK_KILLABLE and non-fatal) is `ignored`, otherwise `pending`.
 */
import { isFatal, type MmuReport, type PagerReport, type Result, type Scenario, type SignalsReport, type VcpuReport } from "@faultline/shared";

export interface Reports {
  vcpu: VcpuReport;
  pager: PagerReport;
  signals: SignalsReport;
  mmu: MmuReport;
}

export function assembleResult(runId: string, scenario: Scenario, r: Reports): Result {
  const waiters = new Map(r.pager.waiters.map((w) => [w.vcpu, w]));
  const vcpus = r.vcpu.vcpus.map((v) => {
    const w = v.inFault ? waiters.get(v.id) : undefined;
    let blockedIn = w && v.inFault ? { site: v.inFault.site, gfn: w.gfn, waitState: w.waitState, sinceMs: w.sinceMs } : null;
    // the async-PF artificial halt: the vCPU sleeps in kvm_vcpu_block, not in the uffd
    if (v.inFault?.waitState) blockedIn = { site: "apf-halt", gfn: v.inFault.gfn, waitState: v.inFault.waitState, sinceMs: v.inFault.sinceMs };
    const signals = r.signals.records
      .filter((s) => s.vcpu === v.id)
      .map((s) => {
        let outcome: Result["vcpus"][number]["signals"][number]["outcome"] = s.outcome ?? "pending";
        if (s.outcome === null && blockedIn && blockedIn.waitState !== "TASK_INTERRUPTIBLE" && !isFatal(s.signal)) outcome = "ignored";
        return { signal: s.signal, source: s.source, sentAtMs: s.sentAtMs, outcome, via: s.via, latencyUs: s.latencyUs };
      });
    const { inFault: _inFault, ...rest } = v;
    // a task still busy-looping at the end has spun since it entered the loop
    if (blockedIn?.waitState === "SPINNING") rest.spinCpuMs = Math.round((rest.spinCpuMs + r.vcpu.nowMs - blockedIn.sinceMs) * 1000) / 1000;
    return { ...rest, state: blockedIn && v.state === "running" ? ("blocked" as const) : v.state, blockedIn, signals };
  });
  const { waiters: _w, stalls: _s, kworkersAsleep: _k, ...pager } = r.pager;
  return {
    scenario: scenario.name,
    runId,
    durationMs: Math.round(r.vcpu.nowMs),
    profile: scenario.kernel.profile,
    vcpus,
    pause: r.signals.pauses.at(-1) ?? null,
    pauses: r.signals.pauses,
    pager,
    latency: { faultSlow: r.vcpu.faultSlow, faultFast: r.vcpu.faultFast, faultAsync: r.vcpu.faultAsync, signalToExit: r.signals.signalToExit },
    asyncPf: r.mmu.asyncPf,
    mmu: {
      memslotInvalid: r.mmu.memslotInvalid, roFaults: r.mmu.roFaults, zapped: r.mmu.zapped, invalidateSeq: r.mmu.invalidateSeq, hwpoison: r.mmu.hwpoison,
      memoryFaults: r.mmu.memoryFaults, uaccess: r.mmu.uaccess, vcpuMap: r.mmu.vcpuMap, gpcRefresh: r.mmu.gpcRefresh,
    },
    demandPaging: r.vcpu.demandPaging,
  };
}
