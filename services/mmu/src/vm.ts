/** One VM in the mmu service: its `Mmu`, gup requests to the pager, async-PF completions, memslot ops and their record. */
import {
  GupReply, KvmErrnoError, Ok, ReqStream, RunClock, subjects, type Logger, type MemslotOp, type MemslotOpResult, type VmContext, type VmState,
} from "@faultline/shared";
import { Mmu } from "./mmu.ts";

export class MmuVm implements VmState {
  readonly mmu: Mmu;
  readonly clock = new RunClock();
  /** every KVM_SET_USER_MEMORY_REGION of the run, in the order the VMM issued them */
  readonly memslotOps: MemslotOpResult[] = [];
  readonly #streams = new Map<number, ReqStream>();
  readonly #log: Logger;

  constructor(ctx: VmContext) {
    const { bus, vm, scenario: s, log } = ctx;
    this.#log = log;
    // A gup may legitimately block for the whole run (postcopy paused): bound it by the run, not by the RPC timeout.
    const timeoutMs = s.durationMs + 30_000;
    // one idempotent request stream per vCPU task (a kworker's gup rides on its vCPU's)
    const stream = (vcpu: number) => {
      let st = this.#streams.get(vcpu);
      if (!st) this.#streams.set(vcpu, (st = new ReqStream(`${ctx.instance}.${vm}.mmu.v${vcpu}`)));
      return st;
    };
    const apf = s.kernel.asyncPf
      ? {
          pv: s.vm.guest.pvAsyncPf,
          interruptsEnabled: s.vm.guest.interruptsEnabled,
          // kvm_async_pf_completed → the vCPU: a retried request, so a reconnect cannot lose a "page ready"
          completed: (vcpu: number, token: number, gfn: number) =>
            void bus.request(subjects.apfCompleted(vm), { vm, trace: `${vm}.apf.${token}`, vcpu, gfn, token }, Ok, { timeoutMs, stream: stream(vcpu), signal: ctx.signal })
              .catch((err: unknown) => log.warn({ err, vcpu, token }, "async-PF completion not delivered")),
        }
      : undefined;
    this.mmu = new Mmu(
      s.kernel.profile,
      s.vm.memslots,
      (req) => bus.request(subjects.gup(vm), { vm, trace: `${ctx.trace}.${req.vcpu}.${req.gfn}`, ...req }, GupReply, { timeoutMs, stream: stream(req.vcpu), signal: ctx.signal }),
      apf,
    );
    if (s.pager.mode === "wp") this.mmu.populateWriteProtected(); // registered WP over populated memory: ranges, not pages
    // SPTEs zapped: the vCPUs must fault on them again; a retried request, so a reconnect cannot lose it
    const zaps = new ReqStream(`${ctx.instance}.${vm}.mmu.zap`);
    this.mmu.onZap = (gfns) =>
      void bus.request(subjects.zap(vm), { vm, trace: `${vm}.zap`, gfns }, Ok, { timeoutMs, stream: zaps, signal: ctx.signal })
        .catch((err: unknown) => log.warn({ err, gfns: gfns.length }, "zap not delivered"));
    for (const op of s.vm.memslotOps) {
      this.clock.at(op.atMs, () => void this.memslotOp(op, op.atMs).catch(() => undefined));
    }
  }

  /**
   * The VMM's KVM_SET_USER_MEMORY_REGION: `plannedAtMs` for a `vm.memslotOps` entry, null for one sent
   * through the API. Recorded with the times it was issued and returned, and KVM's errno if refused;
   * rejects as the ioctl does (the API passes the error on).
   */
  async memslotOp(op: MemslotOp, plannedAtMs: number | null): Promise<number[]> {
    const rec: MemslotOpResult = { op: op.op, slot: op.slot, atMs: plannedAtMs, requestedAtMs: round3(this.clock.now()), completedAtMs: null, errno: null };
    this.memslotOps.push(rec);
    try {
      const zapped = await this.mmu.memslotOp(op);
      rec.completedAtMs = round3(this.clock.now());
      return zapped;
    } catch (err) {
      if (err instanceof KvmErrnoError) {
        rec.errno = err.errno;
        rec.completedAtMs = round3(this.clock.now());
      }
      this.#log.warn({ err, op }, "memslot op failed");
      throw err;
    }
  }

  start(t0: number): void {
    this.clock.start(t0);
  }

  /** the pager's `UFFDIO_COPY` announcements: the host-page-table mirror `hva_to_pfn_fast` reads */
  resident(gfns: readonly number[]): void {
    for (const g of gfns) {
      this.mmu.hostPresent.add(g);
      this.mmu.hostWriteProtected.delete(g);
    }
  }

  report() {
    const m = this.mmu;
    return {
      ...m.counters, sptes: m.spte.size, invalidateSeq: m.invalidateSeq, asyncPf: m.apf?.events ?? null,
      asyncPfDelivery: m.apf ? { ...m.apf.delivery } : null, memslotOps: this.memslotOps,
    };
  }

  close(): void {
    this.clock.cancelAll();
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
