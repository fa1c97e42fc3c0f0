/** The signals service: `kernel/signal.c` for the vCPU tasks, signal plans, and QEMU's pause/resume. */
import { DequeueReq, Empty, SendReq, ValidationError, VcpuStateMsg, defineService, endpoint, subjects } from "@faultline/shared";
import { VmSignals } from "./vm.ts";

export { Tasks, type SignalRecord, type PendingChange } from "./tasks.ts";
export { PauseController, type PauseRecord } from "./pause.ts";
export { VmSignals } from "./vm.ts";

export const signalsService = defineService<VmSignals>({
  name: "signals",
  version: "0.1.0",
  description: "kernel/signal.c for the vCPU tasks, signal plans, and QEMU's pause_all_vcpus kicks",
  create: (ctx) => new VmSignals(ctx),
  endpoints: [
    endpoint(subjects.send, SendReq, (v: VmSignals, m, ctx) => {
      if (m.process && m.vcpus !== undefined) throw new ValidationError("message", "/vcpus", "a signal goes to vCPU threads (vcpus) or to the process, not both");
      const r = m.process ? v.sendProcess(m.signal, m.source) : v.send(m.vcpus ?? "all", m.signal, m.source);
      ctx.log.info({ trace: m.trace, signal: m.signal, vcpus: m.vcpus, process: m.process }, "signal sent");
      return r;
    }),
    endpoint(subjects.dequeue, DequeueReq, (v: VmSignals, m) => v.dequeue(m.vcpu, m.atMs, m.outcome, m.via)),
    endpoint(subjects.pause, Empty, async (v: VmSignals) => ({ requestedAtMs: (await v.pause.pause()).requestedAtMs })),
    endpoint(subjects.resume, Empty, async (v: VmSignals) => {
      const requestedAtMs = v.clock.now();
      const done = v.resume();
      // a resume behind an incomplete pause waits for it (possibly the rest of the run): answer now
      if (v.pause.resumeDeferred) done.catch(() => undefined);
      else await done;
      return { requestedAtMs };
    }),
    endpoint(subjects.vcpuState, VcpuStateMsg, (v: VmSignals, m) => v.pause.onState(m.vcpu, m.state), { event: true }),
  ],
});
