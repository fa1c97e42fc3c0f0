/**
 * `kvm->srcu`, as far as memslot updates see it. A vCPU is an SRCU reader from `vcpu_run` until it
 * enters the guest or blocks (`vcpu_enter_guest` and `vcpu_block` drop `kvm_vcpu_srcu_read_lock`),
 * so here a reader is a vCPU inside a fault: asleep in gup in the uffd, an emulated access
 * spinning, `kvm_vcpu_map`. A halted vCPU, one in the guest, and the async-PF kworker are not.
 *
 * `synchronize_srcu_expedited` waits for the readers that were inside a read section when it was
 * called; readers that begin afterwards do not hold it up.
 */
export class Srcu {
  #next = 0;
  /** reader id → the vCPU it belongs to */
  readonly #readers = new Map<number, number>();
  /** grace periods in progress: the readers each still waits for */
  #waiters: Array<{ pending: Set<number>; done: () => void }> = [];

  /** `srcu_read_lock`: returns the reader's index for `readUnlock`. */
  readLock(vcpu: number): number {
    const id = this.#next++;
    this.#readers.set(id, vcpu);
    return id;
  }

  /** `srcu_read_unlock`: a grace period waiting only for this reader ends. */
  readUnlock(id: number): void {
    if (!this.#readers.delete(id)) return;
    this.#waiters = this.#waiters.filter((w) => {
      w.pending.delete(id);
      if (w.pending.size > 0) return true;
      w.done();
      return false;
    });
  }

  /** The vCPUs inside a read section now (one entry per reader). */
  readers(): number[] {
    return [...this.#readers.values()];
  }

  /** `synchronize_srcu_expedited`: resolves once every reader present now has unlocked. */
  synchronize(): Promise<void> {
    if (this.#readers.size === 0) return Promise.resolve();
    return new Promise((done) => this.#waiters.push({ pending: new Set(this.#readers.keys()), done }));
  }
}
