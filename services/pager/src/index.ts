/** The pager service: wires `VmPager` to NATS. */
import { DropReq, Empty, GupReq, ResolveReq, SetupMsg, StallReq, WakeMsg, VmRegistry, listen, serve, subjects, type ServiceContext } from "@faultline/shared";
import { VmPager } from "./pager.ts";

export { Uffd, WAKE_FLUSH_MS, type GupRequest, type GupResult, type PagerCounters, type UffdConfig } from "./uffd.ts";
export { PageSource } from "./source.ts";
export { VmPager } from "./pager.ts";

export async function startPager({ nc, log }: ServiceContext) {
  const vms = new VmRegistry<VmPager>();
  const subs = [
    serve(nc, log, subjects.setup("*", "pager"), SetupMsg, (m) => {
      vms.add(m.vm, new VmPager(nc, m.vm, m.scenario, m.t0));
      log.info({ vm: m.vm, trace: m.trace }, "vm created");
      return { ok: true };
    }),
    serve(nc, log, subjects.gup("*"), GupReq, async (m) => {
      const r = await vms.get(m.vm).uffd.gup(m);
      log.debug({ vm: m.vm, vcpu: m.vcpu, gfn: m.gfn, ...r }, "gup done");
      return r;
    }),
    serve(nc, log, subjects.resolve("*"), ResolveReq, async (m) => ({ result: await vms.get(m.vm).uffd.resolve(m.gfn, m.vcpu) })),
    listen(nc, log, subjects.wake("*"), WakeMsg, (m) => vms.find(m.vm)?.uffd.setPending(m.vcpu, m.pending, m.fatal)),
    serve(nc, log, subjects.drop("*"), DropReq, (m) => vms.get(m.vm).drop(m.gfns)),
    serve(nc, log, subjects.stall("*"), StallReq, (m) => vms.get(m.vm).setStalled(m.action === "stall")),
    serve(nc, log, subjects.report("*", "pager"), Empty, (m) => vms.get(m.vm).report()),
    serve(nc, log, subjects.teardown("*", "pager"), Empty, (m) => ({ ok: vms.delete(m.vm) })),
  ];
  return {
    vms: () => vms.size,
    stop: () => {
      for (const s of subs) s.unsubscribe();
      vms.closeAll();
    },
  };
}
