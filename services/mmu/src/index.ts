/** The mmu service: one `Mmu` per VM, fault requests from vcpu, gup requests to the pager. */
import {
  ApfReadyReq, Empty, FaultReq, GupReply, InvalidateMsg, MemslotReq, ResidentMsg, RunClock, SetupMsg, VmRegistry, listen, publish, request, serve, subjects, type ServiceContext,
} from "@faultline/shared";
import { Mmu } from "./mmu.ts";

export { Mmu, type GupPort } from "./mmu.ts";
export { AsyncPf, APF_EVENTS, ASYNC_PF_PER_VCPU, type ApfEvent } from "./async-pf.ts";

export async function startMmu({ nc, log }: ServiceContext) {
  const vms = new VmRegistry<Mmu & { close?: () => void }>();
  const subs = [
    serve(nc, log, subjects.setup("*", "mmu"), SetupMsg, (m) => {
      const s = m.scenario;
      // A gup may legitimately block for the whole run (postcopy paused): bound it by the run, not by the RPC timeout.
      const timeoutMs = s.durationMs + 30_000;
      const apf = s.kernel.asyncPf
        ? {
            pv: s.vm.guest.pvAsyncPf,
            interruptsEnabled: s.vm.guest.interruptsEnabled,
            completed: (vcpu: number, token: number, gfn: number) =>
              publish(nc, subjects.apfCompleted(m.vm), { vm: m.vm, trace: `${m.vm}.apf.${token}`, vcpu, gfn, token }),
          }
        : undefined;
      const mmu = new Mmu(
        s.kernel.profile,
        s.vm.memslots,
        (req) => request(nc, subjects.gup(m.vm), { vm: m.vm, trace: `${m.trace}.${req.vcpu}.${req.gfn}`, ...req }, GupReply, { timeoutMs }),
        apf,
      );
      if (s.pager.mode === "wp") mmu.populateWriteProtected(); // registered WP over populated memory
      mmu.onZap = (gfns) => publish(nc, subjects.zap(m.vm), { vm: m.vm, trace: `${m.vm}.zap`, gfns });
      const clock = new RunClock(m.t0);
      for (const op of s.vm.memslotOps) clock.at(op.atMs, () => void mmu.memslotOp(op).catch((err: unknown) => log.warn({ err, vm: m.vm, op }, "memslot op failed")));
      (mmu as Mmu & { close?: () => void }).close = () => clock.cancelAll();
      vms.add(m.vm, mmu);
      log.info({ vm: m.vm, trace: m.trace, profile: s.kernel.profile }, "vm created");
      return { ok: true };
    }),
    serve(nc, log, subjects.apfReady("*"), ApfReadyReq, (m) => vms.get(m.vm).apfReady(m.vcpu, m.gfn)),
    serve(nc, log, subjects.fault("*"), FaultReq, (m) => vms.get(m.vm).access(m.vcpu, m.gfn, m.write, m.site)),
    serve(nc, log, subjects.memslot("*"), MemslotReq, async (m) => ({ zapped: (await vms.get(m.vm).memslotOp(m.op)).length })),
    listen(nc, log, subjects.invalidate("*"), InvalidateMsg, (m) => vms.find(m.vm)?.invalidate(m.gfns)),
    listen(nc, log, subjects.resident("*"), ResidentMsg, (m) => {
      const mmu = vms.find(m.vm);
      for (const g of m.gfns) {
        mmu?.hostPresent.add(g);
        mmu?.hostWriteProtected.delete(g);
      }
    }),
    serve(nc, log, subjects.report("*", "mmu"), Empty, (m) => {
      const mmu = vms.get(m.vm);
      return { ...mmu.counters, sptes: mmu.spte.size, invalidateSeq: mmu.invalidateSeq, asyncPf: mmu.apf?.events ?? null };
    }),
    serve(nc, log, subjects.teardown("*", "mmu"), Empty, (m) => ({ ok: vms.delete(m.vm) })),
  ];
  return {
    vms: () => vms.size,
    stop: () => {
      for (const s of subs) s.unsubscribe();
      vms.closeAll();
    },
  };
}
