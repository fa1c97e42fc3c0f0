/** The vcpu service: vCPU tasks and the VMM loop, per VM. */
import { ApfCompletedMsg, Empty, SetupMsg, VmRegistry, WakeMsg, ZapMsg, listen, serve, subjects, type ServiceContext } from "@faultline/shared";
import { VcpuVm } from "./vm.ts";

export { Vcpu, type VcpuPorts, type VcpuStat, type ExitVia } from "./vcpu.ts";
export { buildWorkload, type Access } from "./workload.ts";
export { VcpuVm } from "./vm.ts";

export async function startVcpu({ nc, log, config }: ServiceContext) {
  const vms = new VmRegistry<VcpuVm>();
  const subs = [
    serve(nc, log, subjects.setup("*", "vcpu"), SetupMsg, (m) => {
      vms.add(m.vm, new VcpuVm(nc, log.child({ vm: m.vm }), m.vm, m.scenario, m.t0, config.FAULTLINE_RPC_TIMEOUT_MS));
      log.info({ vm: m.vm, trace: m.trace, vcpus: m.scenario.vm.vcpus }, "vm created");
      return { ok: true };
    }),
    listen(nc, log, subjects.apfCompleted("*"), ApfCompletedMsg, (m) => vms.find(m.vm)?.apfCompleted(m.vcpu, m.gfn, m.token)),
    listen(nc, log, subjects.zap("*"), ZapMsg, (m) => vms.find(m.vm)?.zap(m.gfns)),
    listen(nc, log, subjects.wake("*"), WakeMsg, (m) => vms.find(m.vm)?.setPending(m.vcpu, m.pending, m.fatal)),
    serve(nc, log, subjects.stop("*"), Empty, (m) => vms.get(m.vm).stopAll(true)),
    serve(nc, log, subjects.cont("*"), Empty, (m) => vms.get(m.vm).stopAll(false)),
    serve(nc, log, subjects.report("*", "vcpu"), Empty, (m) => vms.get(m.vm).report()),
    serve(nc, log, subjects.teardown("*", "vcpu"), Empty, (m) => ({ ok: vms.delete(m.vm) })),
  ];
  return {
    vms: () => vms.size,
    stop: () => {
      for (const s of subs) s.unsubscribe();
      vms.closeAll();
    },
  };
}
