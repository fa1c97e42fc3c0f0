/**
 * NATS subjects. Everything about one VM lives under `fl.vm.<vm>.`, so many VMs share one NATS
 * (and, later, per-service permissions can be written per prefix). Services subscribe with `*`
 * in the VM position.
 */
export const SERVICES = ["vcpu", "mmu", "pager", "signals", "api"] as const;
export type ServiceName = (typeof SERVICES)[number];

const VM_ID = /^[A-Za-z0-9_-]{1,64}$/;
const INSTANCE = /^[A-Za-z0-9_-]{1,128}$/;
export function isInstanceId(id: string): boolean {
  return INSTANCE.test(id);
}
export function isVmId(id: string): boolean {
  return VM_ID.test(id);
}

const vm = (id: string, rest: string) => `fl.vm.${id}.${rest}`;

export const subjects = {
  /** `$SRV.PING`-like liveness of one service (any instance answers). */
  ping: (svc: ServiceName) => `fl.svc.${svc}.ping`,
  /** the same, of one instance */
  pingInstance: (svc: ServiceName, instance: string) => `fl.svc.${svc}.i.${instance}.ping`,
  /** api → one instance of a service (queue group): "will you hold this VM?"; the answer names the instance. */
  claim: (svc: ServiceName) => `fl.svc.${svc}.claim`,
  /** api → the claiming instance: create the VM's state (subscribes its per-VM subjects; nothing runs yet). */
  setup: (svc: ServiceName, instance: string) => `fl.svc.${svc}.i.${instance}.setup`,
  /** api → the owner: scenario time 0 is `t0`; start the timers and (vcpu) the vCPU threads. */
  start: (id: string, svc: ServiceName) => vm(id, `${svc}.start`),
  /** api → owners of the VM: the lease on it is renewed; an owner whose lease lapses tears the VM down. */
  lease: (id: string) => vm(id, "lease"),
  /** any owner → the VM's owners: "I was disconnected: re-publish what I may have missed". */
  resync: (id: string) => vm(id, "resync"),
  /** every service instance → api: alive, and the VMs it holds. */
  heartbeat: (svc: ServiceName) => `fl.hb.${svc}`,
  /** per-service report and teardown of the VM's state. */
  report: (id: string, svc: ServiceName) => vm(id, `${svc}.report`),
  teardown: (id: string, svc: ServiceName) => vm(id, `${svc}.teardown`),
  /** vcpu → mmu: an EPT violation (`kvm_mmu_page_fault`). Blocks as long as the fault does. */
  fault: (id: string) => vm(id, "mmu.fault"),
  /** mmu → pager: attempt 2 of `__kvm_mmu_faultin_pfn`, a blocking gup that may sleep in `handle_userfault`. */
  gup: (id: string) => vm(id, "pager.gup"),
  /** vcpu (VMM) → pager: resolve a KVM_EXIT_MEMORY_FAULT (fetch, UFFDIO_COPY, no waiter to wake). */
  resolve: (id: string) => vm(id, "pager.resolve"),
  /** pager → mmu: a page became resident (`UFFDIO_COPY` done); the mirror that `hva_to_pfn_fast` reads. */
  resident: (id: string) => vm(id, "pager.resident"),
  /** mmu → vcpu: an async page fault completed (`kvm_async_pf_completed`). */
  apfCompleted: (id: string) => vm(id, "vcpu.apf"),
  /** vcpu → mmu: page ready, replay the fault (`kvm_arch_async_page_ready`, `..._present`). */
  apfReady: (id: string) => vm(id, "mmu.apf-ready"),
  /** pager → mmu: pages dropped (UFFD_EVENT_REMOVE); mmu → vcpu: SPTEs zapped. */
  invalidate: (id: string) => vm(id, "pager.invalidate"),
  zap: (id: string) => vm(id, "mmu.zap"),
  /** api → mmu: memslot change; api → pager: drop pages. */
  memslot: (id: string) => vm(id, "mmu.memslot"),
  drop: (id: string) => vm(id, "pager.drop"),
  /** api → pager: source stall control. */
  stall: (id: string) => vm(id, "pager.stall"),
  /** api → signals: send a signal (`kill`/`pthread_kill`). */
  send: (id: string) => vm(id, "signals.send"),
  /** signals → pager, vcpu: `signal_wake_up` of a task, with the task's pending set after it. */
  wake: (id: string) => vm(id, "signals.wake"),
  /** vcpu → signals: the VMM left KVM_RUN and eats its signals (`kvm_eat_signals`), or the task died. */
  dequeue: (id: string) => vm(id, "signals.dequeue"),
  /** api → signals: `pause_all_vcpus` / `resume_all_vcpus`. */
  pause: (id: string) => vm(id, "signals.pause"),
  resume: (id: string) => vm(id, "signals.resume"),
  /** signals → vcpu: set / clear `cpu->stop` on every vCPU. */
  stop: (id: string) => vm(id, "vcpu.stop"),
  cont: (id: string) => vm(id, "vcpu.cont"),
  /** vcpu → anyone: a vCPU changed state (running, paused, halted, done, killed), and the site of a fault in flight. */
  vcpuState: (id: string) => vm(id, "vcpu.state"),
  /** pager → anyone: a vCPU task went to sleep in `handle_userfault` (and stayed there), or was woken. */
  vcpuWait: (id: string) => vm(id, "pager.wait"),
} as const;

/** The VM id in a subject such as `fl.vm.<vm>.mmu.fault`. */
export function vmOf(subject: string): string {
  return subject.split(".")[2] ?? "";
}
