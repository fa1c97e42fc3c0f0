/** The signals service: `kernel/signal.c` for the vCPU tasks, signal plans, and QEMU's pause/resume. */
import {
  DequeueReq, Empty, SendReq, SetupMsg, VcpuStateMsg, VmRegistry, listen, serve, subjects, type ServiceContext,
} from "@faultline/shared";
import { VmSignals } from "./vm.ts";

export { Tasks, type SignalRecord, type PendingChange } from "./tasks.ts";
export { PauseController, type PauseRecord } from "./pause.ts";
export { VmSignals } from "./vm.ts";

export async function startSignals({ nc, log, config }: ServiceContext) {
  const vms = new VmRegistry<VmSignals>();
  const subs = [
    serve(nc, log, subjects.setup("*", "signals"), SetupMsg, (m) => {
      vms.add(m.vm, new VmSignals(nc, m.vm, m.scenario, m.t0, config.FAULTLINE_RPC_TIMEOUT_MS));
      log.info({ vm: m.vm, trace: m.trace }, "vm created");
      return { ok: true };
    }),
    serve(nc, log, subjects.send("*"), SendReq, (m) => {
      const r = vms.get(m.vm).send(m.vcpus, m.signal, m.source);
      log.info({ vm: m.vm, trace: m.trace, signal: m.signal, vcpus: m.vcpus }, "signal sent");
      return r;
    }),
    serve(nc, log, subjects.dequeue("*"), DequeueReq, (m) => vms.get(m.vm).dequeue(m.vcpu, m.atMs, m.outcome, m.via)),
    serve(nc, log, subjects.pause("*"), Empty, async (m) => ({ requestedAtMs: (await vms.get(m.vm).pause.pause()).requestedAtMs })),
    serve(nc, log, subjects.resume("*"), Empty, async (m) => {
      const vm = vms.get(m.vm);
      await vm.pause.resume();
      return { requestedAtMs: vm.clock.now() };
    }),
    listen(nc, log, subjects.vcpuState("*"), VcpuStateMsg, (m) => vms.find(m.vm)?.pause.onState(m.vcpu, m.state)),
    serve(nc, log, subjects.report("*", "signals"), Empty, (m) => vms.get(m.vm).report()),
    serve(nc, log, subjects.teardown("*", "signals"), Empty, (m) => ({ ok: vms.delete(m.vm) })),
  ];
  return {
    vms: () => vms.size,
    stop: () => {
      for (const s of subs) s.unsubscribe();
      vms.closeAll();
    },
  };
}
