/** The pager service: one `VmPager` (uffd + page source) per VM. */
import { DropReq, GupReq, ResolveReq, StallReq, WakeMsg, defineService, endpoint, subjects } from "@faultline/shared";
import { VmPager } from "./pager.ts";

export { Uffd, WAKE_FLUSH_MS, type GupRequest, type GupResult, type MmuNotifier, type PagerCounters, type UffdConfig, type UffdPorts } from "./uffd.ts";
export { Userfaultfd } from "./userfaultfd.ts";
export { FaultHandler } from "./handler.ts";
export { EventReader } from "./reader.ts";
export { SPIN_TICK_MS, SpinFlood } from "./spin.ts";
export { PageSource } from "./source.ts";
export { VmPager } from "./pager.ts";

export const pagerService = defineService<VmPager>({
  name: "pager",
  version: "0.1.0",
  description: "mm/gup.c + fs/userfaultfd.c + the userspace fault handler and its page source",
  create: (ctx) => new VmPager(ctx),
  endpoints: [
    endpoint(subjects.gup, GupReq, (v: VmPager, m) => v.uffd.faultIn(m)),
    endpoint(subjects.resolve, ResolveReq, async (v: VmPager, m) => ({ result: await v.uffd.resolve(m.gfn, m.vcpu) })),
    endpoint(subjects.wake, WakeMsg, (v: VmPager, m) => v.uffd.setPending(m.vcpu, m.pending, m.fatal), { event: true }),
    endpoint(subjects.drop, DropReq, (v: VmPager, m) => v.drop(m.gfns)),
    endpoint(subjects.stall, StallReq, (v: VmPager, m) => v.setStalled(m.action === "stall")),
  ],
});
