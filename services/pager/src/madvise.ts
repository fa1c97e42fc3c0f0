/**
 * MADV_DONTNEED over uffd-registered pages (a balloon, a postcopy discard), in the kernel's order:
 *
 *   madvise_dontneed_free → `userfaultfd_remove`: a UFFD_EVENT_REMOVE is queued and
 *     `ctx->mmap_changing` raised (UFFDIO_COPY on the context fails -EAGAIN); the caller blocks in
 *     `userfaultfd_event_wait_completion` until the handler has read the event;
 *   then the zap (`zap_page_range_single`): `mmu_notifier_invalidate_range_start` (KVM zaps the
 *     SPTEs, `mmu_invalidate_in_progress++`), the host pages go, `mmu_notifier_invalidate_range_end`
 *     (KVM: `mmu_invalidate_seq++`, in_progress--).
 *
 * The notifier is a port: the mmu service over NATS, or a direct call in tests.
 */
import type { FaultHandler } from "./handler.ts";
import type { Userfaultfd } from "./userfaultfd.ts";

/** The mmu notifier's two halves around the zap; each resolves once the secondary MMU has run it. */
export interface MmuNotifier {
  /** `invalidate_range_start` over the range being zapped */
  start: (gfns: readonly number[]) => Promise<void>;
  /** `invalidate_range_end`; `gone`: the pages that were resident and went */
  end: (gone: readonly number[]) => Promise<void>;
}

/** `madvise(MADV_DONTNEED)` of `gfns`; returns the resident pages it dropped. */
export async function madviseDontneed(ctx: Userfaultfd, handler: FaultHandler, gfns: readonly number[], notifier: MmuNotifier): Promise<number[]> {
  ctx.queueRemove();
  await handler.readRemove();
  await notifier.start(gfns);
  const dropped = ctx.drop(gfns);
  await notifier.end(dropped);
  return dropped;
}
