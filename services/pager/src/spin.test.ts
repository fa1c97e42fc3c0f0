import { describe, expect, it } from "vitest";
import { SPIN_TICK_MS } from "./spin.ts";
import { Uffd, type UffdConfig } from "./uffd.ts";

const tick = () => new Promise<void>((r) => setImmediate(r));
/** Waits (by event-loop turns and timer rounds, never asserting a time) until `cond` holds. */
async function until(cond: () => boolean, what: string, max = 5000): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (cond()) return;
    await (i % 10 === 9 ? new Promise<void>((r) => setTimeout(r, 1)) : tick());
  }
  throw new Error(`never happened: ${what}`);
}
/** real time passes (the spin's timer ticks) while the model's clock stands still */
const ticks = (n: number) => new Promise<void>((r) => setTimeout(r, n * SPIN_TICK_MS + 5));

/** A Uffd on a clock the test moves, with fetches the test answers. */
function setup(config: Partial<UffdConfig>) {
  const clock = { t: 1000 };
  const pending = new Map<number, () => void>();
  const asked: number[] = [];
  const uffd = new Uffd({
    fetch: (gfn) => new Promise<void>((r) => (asked.push(gfn), pending.set(gfn, r))),
    onResident: () => undefined,
    now: () => clock.t,
    config,
  });
  const answer = (gfn: number) => (pending.get(gfn)?.(), pending.delete(gfn));
  return { uffd, clock, asked, answer };
}

const uaccess = (vcpu: number, gfn: number) => ({ vcpu, gfn, write: false, interruptible: true, uaccess: true });

describe("uaccess spin", () => {
  it("uaccess spin - a SIGUSR1 turns the sleep into a flood: eventsPerSec x spin time re-faults counted, CPU time = spin time x cpuShare", async () => {
    const { uffd, clock, answer } = setup({ threadId: true, uaccessSpin: { eventsPerSec: 100_000, cpuShare: 0.9 } });
    const access = uffd.faultIn(uaccess(0, 7));
    await until(() => uffd.waiters()[0]?.waitState === "TASK_INTERRUPTIBLE", "asleep");
    expect(uffd.counters.faultEvents).toBe(1);
    uffd.setPending(0, ["SIGUSR1"], false);
    await until(() => uffd.waiters()[0]?.waitState === "SPINNING", "spinning");
    clock.t += 250; // the task spins for 250 ms of model time
    await ticks(2);
    answer(7);
    const r = await access;
    expect(r).toMatchObject({ result: "ok", fatal: false });
    expect(r.spinMs).toBeCloseTo(250 * 0.9, 6);
    // 100k/s for 250 ms, with no handler cost modelled: all read
    expect(uffd.counters.spinRefaults).toBe(25_000);
    expect(uffd.counters.faultEvents).toBe(2 + 25_000); // the first fault, the SPINNING pass, the flood
    expect(uffd.eventsByPtid).toEqual({ vcpu0: 2 + 25_000 });
    expect(uffd.counters.duplicateRequests).toBe(1); // the flood is counted apart, not as handler duplicates
  });

  it("uaccess spin - without a signal the task sleeps: no flood, no CPU time", async () => {
    const { uffd, clock, answer } = setup({ uaccessSpin: { eventsPerSec: 100_000, cpuShare: 0.9 } });
    const access = uffd.faultIn(uaccess(0, 7));
    await until(() => uffd.waiters().length === 1, "asleep");
    clock.t += 250;
    await ticks(2);
    answer(7);
    await expect(access).resolves.toMatchObject({ result: "ok", spinMs: 0 });
    expect(uffd.counters).toMatchObject({ faultEvents: 1, spinRefaults: 0 });
  });

  it("uaccess spin - a flood beyond the handler's capacity: it reads what fits, and another vCPU's event waits behind it", async () => {
    // 10 µs a message: 100k/s at most; the task re-faults at twice that
    const { uffd, clock, asked, answer } = setup({ eventReadMs: 0.01, uaccessSpin: { eventsPerSec: 200_000, cpuShare: 1 } });
    const spinning = uffd.faultIn(uaccess(0, 7));
    await until(() => uffd.waiters().length === 1, "asleep");
    uffd.setPending(0, ["SIGUSR1"], false);
    await until(() => uffd.waiters()[0]?.waitState === "SPINNING", "spinning");
    clock.t += 100; // 20 000 re-faults offered over 100 ms
    await until(() => uffd.counters.spinRefaults > 0, "a tick read");
    // the handler read for the 100 ms and is booked one tick (10 ms) ahead: ~11 000, not 20 000
    expect(uffd.counters.spinRefaults).toBeGreaterThan(10_900);
    expect(uffd.counters.spinRefaults).toBeLessThanOrEqual((100 + SPIN_TICK_MS) / 0.01);
    const other = uffd.faultIn({ vcpu: 1, gfn: 9, write: false, interruptible: true });
    await tick();
    expect(asked).toEqual([7]); // vCPU 1's event is not read yet: its fetch waits behind the flood
    await until(() => asked.includes(9), "vCPU 1's event read");
    answer(9);
    await expect(other).resolves.toMatchObject({ result: "ok" });
    answer(7);
    await expect(spinning).resolves.toMatchObject({ result: "ok" });
  });

  it.each([
    ["a flood within the handler's capacity is all read and leaves it free", 0.01, 50_000, 5000],
    ["control: with no handler cost", 0, 100_000, 10_000],
  ])("uaccess spin - %s: another vCPU's event is read at once", async (_what, eventReadMs, eventsPerSec, read) => {
    const { uffd, clock, asked, answer } = setup({ eventReadMs, uaccessSpin: { eventsPerSec, cpuShare: 1 } });
    const spinning = uffd.faultIn(uaccess(0, 7));
    await until(() => uffd.waiters().length === 1, "asleep");
    uffd.setPending(0, ["SIGUSR1"], false);
    await until(() => uffd.waiters()[0]?.waitState === "SPINNING", "spinning");
    clock.t += 100;
    await until(() => uffd.counters.spinRefaults > 0, "a tick read");
    expect(uffd.counters.spinRefaults).toBe(read);
    const other = uffd.faultIn({ vcpu: 1, gfn: 9, write: false, interruptible: true });
    await tick();
    expect(asked).toEqual([7, 9]);
    answer(9);
    answer(7);
    await Promise.all([other, spinning]);
  });

  it("uaccess spin - two spinning tasks beyond the handler's capacity share its reads (FIFO), each counted under its own ptid", async () => {
    const { uffd, clock, answer } = setup({ threadId: true, eventReadMs: 0.01, uaccessSpin: { eventsPerSec: 100_000, cpuShare: 1 } });
    const a = uffd.faultIn(uaccess(0, 7));
    const b = uffd.faultIn(uaccess(1, 8));
    await until(() => uffd.waiters().length === 2, "both asleep");
    uffd.setPending(0, ["SIGUSR1"], false);
    uffd.setPending(1, ["SIGUSR1"], false);
    await until(() => uffd.waiters().length === 2 && uffd.waiters().every((w) => w.waitState === "SPINNING"), "both spinning");
    clock.t += 100; // 2 x 10 000 offered, ~11 000 readable
    await until(() => uffd.counters.spinRefaults > 0, "a tick read");
    const { vcpu0, vcpu1 } = uffd.eventsByPtid;
    expect(Math.abs(vcpu0! - vcpu1!)).toBeLessThanOrEqual(1);
    expect(uffd.counters.spinRefaults).toBeLessThan(20_000);
    answer(7);
    answer(8);
    await Promise.all([a, b]);
  });

  it("uaccess spin - SIGKILL ends the flood: -EFAULT, and no re-fault is counted after it", async () => {
    const { uffd, clock } = setup({ uaccessSpin: { eventsPerSec: 100_000, cpuShare: 0.5 } });
    const access = uffd.faultIn(uaccess(0, 7));
    await until(() => uffd.waiters().length === 1, "asleep");
    uffd.setPending(0, ["SIGUSR1"], false);
    await until(() => uffd.waiters()[0]?.waitState === "SPINNING", "spinning");
    clock.t += 40;
    uffd.setPending(0, ["SIGUSR1", "SIGKILL"], true);
    const r = await access;
    expect(r).toMatchObject({ result: "EFAULT", fatal: true });
    expect(r.spinMs).toBeCloseTo(20, 6);
    const n = uffd.counters.spinRefaults;
    expect(n).toBe(4000);
    clock.t += 100;
    await ticks(2);
    expect(uffd.counters.spinRefaults).toBe(n);
  });
});
