/**
 * The three tasks that fault on a uffd-registered page and sleep in `handle_userfault`:
 *
 *   - a vCPU's gup (`__get_user_pages` → `faultin_page` → `handle_mm_fault` → `handle_userfault`,
 *     then VM_FAULT_RETRY → `gup_signal_pending`), attempt 2 of `__kvm_mmu_faultin_pfn`;
 *   - a kernel-mode uaccess fault (`__copy_from_user` from `kvm_read_guest`), which busy-loops
 *     with a non-fatal signal pending;
 *   - the async-PF kworker (`async_pf_execute` → `get_user_pages_remote`), TASK_KILLABLE.
 *
 * Each queues its UFFD_EVENT_PAGEFAULT on the context and hands it to the userspace handler; the
 * event is handed over synchronously after the enqueue, before the task decides to sleep (a fill
 * queued as a microtask must not run in between).
 */
import type { GupReply, GupReq, MessageBody, WaitState } from "@faultline/shared";
import type { FaultHandler } from "./handler.ts";
import { wakesFor, type Userfaultfd } from "./userfaultfd.ts";

/** One page faulted in by a task (the GupReq message less its envelope). */
export type GupRequest = MessageBody<GupReq>;
/** What the faulting task got back (the GupReply message). */
export type GupResult = GupReply;

/** Any of the three faulting tasks, by the request's flags. */
export function faultIn(ctx: Userfaultfd, handler: FaultHandler, req: GupRequest): Promise<GupResult> {
  if (req.uaccess) return copyFromUser(ctx, handler, req);
  if (req.kworker) return asyncPfExecute(ctx, handler, req);
  return getUserPages(ctx, handler, req);
}

/**
 * Before queueing an event: a poison marker answers VM_FAULT_HWPOISON (gup -EHWPOISON), and with
 * UFFD_FEATURE_SIGBUS a missing page is VM_FAULT_SIGBUS (gup -EFAULT), with no event at all.
 */
function terminal(ctx: Userfaultfd, gfn: number): GupResult["result"] | null {
  if (ctx.poisoned.has(gfn)) return "EHWPOISON";
  if (ctx.config.sigbus) return "EFAULT";
  return null;
}

/** Attempt 2's `get_user_pages_unlocked()` on one page, with `handle_userfault` sleeps. */
export async function getUserPages(ctx: Userfaultfd, handler: FaultHandler, req: GupRequest): Promise<GupResult> {
  let sleeps = 0;
  const state: WaitState = req.interruptible ? "TASK_INTERRUPTIBLE" : "TASK_KILLABLE";
  for (;;) {
    // __get_user_pages: "If we have a pending SIGKILL, don't keep faulting pages"
    if (ctx.sig(req.vcpu).fatal) return { result: "EINTR", fatal: true, sleeps, spinMs: 0 };
    // faultin_page → handle_mm_fault: a present pte maps at once
    if (ctx.present(req.gfn, req.write) || ctx.released) return { result: "ok", fatal: false, sleeps, spinMs: 0 };
    const term = terminal(ctx, req.gfn);
    if (term) return { result: term, fatal: false, sleeps, spinMs: 0 };
    // handle_userfault: queue a UFFD_EVENT_PAGEFAULT, set_current_state(blocking_state), schedule()
    ctx.countEvent(req.vcpu);
    await ctx.queues.enqueue(req.vcpu, req.gfn);
    handler.handleEvent(req.gfn, req.write);
    sleeps++;
    if (!wakesFor(state, ctx.sig(req.vcpu)) && !ctx.present(req.gfn, req.write)) await ctx.sleep(req.vcpu, req.gfn, state);
    // VM_FAULT_RETRY → gup_signal_pending(current, flags)
    const sig = ctx.sig(req.vcpu);
    if (sig.fatal || (req.interruptible && sig.any)) return { result: "EINTR", fatal: sig.fatal, sleeps, spinMs: 0 };
  }
}

/** `async_pf_execute`: `get_user_pages_remote(FOLL_WRITE)`, TASK_KILLABLE, as the kworker. */
export async function asyncPfExecute(ctx: Userfaultfd, handler: FaultHandler, req: GupRequest): Promise<GupResult> {
  let sleeps = 0;
  while (!ctx.present(req.gfn, true) && !ctx.released) {
    const term = terminal(ctx, req.gfn);
    if (term) return { result: term, fatal: false, sleeps, spinMs: 0 };
    ctx.countEvent(-1);
    await ctx.queues.enqueue(req.vcpu, req.gfn);
    handler.handleEvent(req.gfn, true);
    sleeps++;
    if (ctx.present(req.gfn, true)) continue;
    ctx.kworkersAsleep++;
    await ctx.sleep(-1, req.gfn, "TASK_KILLABLE", req.vcpu);
    ctx.kworkersAsleep--;
  }
  return { result: "ok", fatal: false, sleeps, spinMs: 0 };
}

/**
 * A kernel-mode fault on a uffd page (`__copy_from_user` from `kvm_read_guest`): handle_userfault
 * sleeps TASK_INTERRUPTIBLE (FAULT_FLAG_DEFAULT), so any signal wakes it; but for a kernel-mode
 * fault `fault_signal_pending()` is true only for a fatal signal, so the fault is retried, and with
 * the signal still pending `schedule()` returns at once: the task busy-loops until the page arrives
 * (SPINNING), or a fatal signal makes the exception fixup return -EFAULT. While it spins it re-queues
 * UFFD_EVENT_PAGEFAULTs and burns CPU (spin.ts); `spinMs` is that CPU time. (Jens Axboe's 2025 mm
 * fix, a 100 ms sleep per retry, is not modelled.)
 */
export async function copyFromUser(ctx: Userfaultfd, handler: FaultHandler, req: GupRequest): Promise<GupResult> {
  let sleeps = 0;
  let spinMs = 0;
  for (;;) {
    if (ctx.present(req.gfn, req.write) || ctx.released) return { result: "ok", fatal: false, sleeps, spinMs };
    if (ctx.sig(req.vcpu).fatal) return { result: "EFAULT", fatal: true, sleeps, spinMs };
    if (terminal(ctx, req.gfn)) return { result: "EFAULT", fatal: false, sleeps, spinMs }; // the uaccess fixup
    // handle_userfault: the event is queued (the handler reads it) before the task's state is set
    ctx.countEvent(req.vcpu);
    await ctx.queues.enqueue(req.vcpu, req.gfn);
    handler.handleEvent(req.gfn, req.write);
    sleeps++;
    if (ctx.present(req.gfn, req.write)) continue;
    const sig = ctx.sig(req.vcpu);
    const state: WaitState = sig.any ? "SPINNING" : "TASK_INTERRUPTIBLE";
    if (wakesFor(state, sig)) continue; // signal_pending_state(): a fatal signal ends it at once
    const endSpin = state === "SPINNING" ? handler.flood.start(req.vcpu) : null;
    await ctx.sleep(req.vcpu, req.gfn, state);
    if (endSpin) spinMs += endSpin();
  }
}
