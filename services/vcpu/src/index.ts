/** The vcpu service: vCPU tasks and the VMM loop, per VM. */
import { ApfCompletedMsg, Empty, WakeMsg, ZapMsg, defineService, endpoint, subjects } from "@faultline/shared";
import { VcpuVm } from "./vm.ts";

export { Vcpu, type VcpuPorts, type VcpuStat, type ExitVia } from "./vcpu.ts";
export { buildWorkload, type Access } from "./workload.ts";
export { VcpuVm } from "./vm.ts";

export const vcpuService = defineService<VcpuVm>({
  name: "vcpu",
  version: "0.1.0",
  description: "the vCPU threads (KVM_RUN: vcpu_run, vcpu_enter_guest) and the VMM's userspace loop (kvm_cpu_exec)",
  create: (ctx) => new VcpuVm(ctx),
  endpoints: [
    endpoint(subjects.apfCompleted, ApfCompletedMsg, (v: VcpuVm, m) => void v.apfCompleted(m.vcpu, m.gfn, m.token)),
    endpoint(subjects.zap, ZapMsg, (v: VcpuVm, m) => void v.zap(m.gfns)),
    endpoint(subjects.wake, WakeMsg, (v: VcpuVm, m) => v.setPending(m.vcpu, m.pending, m.fatal), { event: true }),
    endpoint(subjects.stop, Empty, (v: VcpuVm) => v.stopAll(true)),
    endpoint(subjects.cont, Empty, (v: VcpuVm) => v.stopAll(false)),
  ],
});
