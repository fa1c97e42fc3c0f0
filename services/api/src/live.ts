/**
 * The run's live vCPU view while it runs, and the join the result uses at the end: the vcpu service
 * says what each vCPU does (running, paused, halted, done, killed) and which fault it has in flight
 * (site, gfn); the pager says which vCPU tasks sleep in `handle_userfault`, on which page and in
 * which state. A vCPU with a fault in flight that the pager has asleep is `blocked` (TASK_KILLABLE or
 * TASK_INTERRUPTIBLE), or `spinning` when the sleep is a kernel-mode access's busy loop (SPINNING);
 * one in the async-PF artificial halt is `halted`, sleeping in `kvm_vcpu_block` (site `apf-halt`).
 */
import type { InFault, VcpuStateMsg, VcpuStateName, VcpuWaitMsg, WaitState } from "@faultline/shared";

export interface BlockedIn {
  site: string;
  gfn: number;
  waitState: WaitState;
  sinceMs: number;
}

/** One vCPU as `GET /v1/runs/:id` shows it. */
export interface LiveVcpu {
  state: VcpuStateName;
  pagesTouched: number;
  blockedIn: BlockedIn | null;
}

/** A pager sleeper: the page, the wait state, since when. */
export interface Sleeper {
  gfn: number;
  waitState: WaitState;
  sinceMs: number;
}

/** The fault in flight as the vcpu service reports it (a report's `inFault` or a state message's). */
export type FaultInFlight = Pick<InFault, "gfn" | "sinceMs" | "waitState"> & { site: string };

/**
 * The state and wait of a vCPU from the vcpu service's view (`state`, `inFault`) and the pager's
 * (`sleeper`, if it has the task asleep). Used live and for the result, so both say the same.
 */
export function joinVcpu(state: VcpuStateName, inFault: FaultInFlight | null | undefined, sleeper: Sleeper | undefined): Pick<LiveVcpu, "state" | "blockedIn"> {
  let blockedIn: BlockedIn | null = inFault && sleeper ? { site: inFault.site, gfn: sleeper.gfn, waitState: sleeper.waitState, sinceMs: sleeper.sinceMs } : null;
  // the async-PF artificial halt: the vCPU sleeps in kvm_vcpu_block, not in the uffd
  if (inFault?.waitState) blockedIn = { site: "apf-halt", gfn: inFault.gfn, waitState: inFault.waitState, sinceMs: inFault.sinceMs };
  if (!blockedIn || state !== "running") return { state, blockedIn };
  if (blockedIn.site === "apf-halt") return { state: "halted", blockedIn };
  return { state: blockedIn.waitState === "SPINNING" ? "spinning" : "blocked", blockedIn };
}

interface Sources {
  state: VcpuStateName;
  pagesTouched: number;
  inFault: FaultInFlight | null;
  sleeper: Sleeper | undefined;
}

/** The live vCPU view of one run, fed by `vcpu.state` and `pager.wait` messages. */
export class LiveVcpus {
  readonly #src: Sources[];
  /** the view, recomputed on each message (what the run record and GET show) */
  readonly view: LiveVcpu[];

  constructor(vcpus: number) {
    this.#src = Array.from({ length: vcpus }, () => ({ state: "running" as const, pagesTouched: 0, inFault: null, sleeper: undefined }));
    this.view = this.#src.map(() => ({ state: "running", pagesTouched: 0, blockedIn: null }));
  }

  onState(m: Pick<VcpuStateMsg, "vcpu" | "state" | "pagesTouched" | "inFault">): void {
    const s = this.#src[m.vcpu];
    if (!s) return;
    s.state = m.state;
    s.pagesTouched = m.pagesTouched;
    if (m.inFault !== undefined) s.inFault = m.inFault;
    this.#update(m.vcpu);
  }

  onWait(m: Pick<VcpuWaitMsg, "vcpu" | "gfn" | "waitState" | "atMs">): void {
    const s = this.#src[m.vcpu];
    if (!s) return;
    s.sleeper = m.waitState === null ? undefined : { gfn: m.gfn, waitState: m.waitState, sinceMs: m.atMs };
    this.#update(m.vcpu);
  }

  /** The run ended: the view becomes what the result says (it has the services' final reports). */
  settle(vcpus: ReadonlyArray<Pick<LiveVcpu, "state" | "pagesTouched" | "blockedIn">>): void {
    vcpus.forEach((v, i) => {
      if (this.view[i]) this.view[i] = { state: v.state, pagesTouched: v.pagesTouched, blockedIn: v.blockedIn };
    });
  }

  #update(i: number): void {
    const s = this.#src[i]!;
    // a sleeper on another page than the fault in flight is a message from before this fault
    const sleeper = s.sleeper && s.inFault && s.sleeper.gfn === s.inFault.gfn ? s.sleeper : undefined;
    this.view[i] = { pagesTouched: s.pagesTouched, ...joinVcpu(s.state, s.inFault, sleeper) };
  }
}
