import { describe, expect, it } from "vitest";
import { Uffd } from "./uffd.ts";

/** A Uffd on a clock the test moves; fetches answer at once. */
function setup(eventReadMs: number) {
  const clock = { t: 1000 };
  const uffd = new Uffd({ fetch: async () => undefined, onResident: () => undefined, now: () => clock.t, config: { eventReadMs } });
  return { uffd, clock };
}

describe("madvise(MADV_DONTNEED)", () => {
  it("madvise - order: UFFD_EVENT_REMOVE read by the handler, then the notifier's start, the pages go, then its end", async () => {
    const { uffd } = setup(0);
    uffd.copy(5);
    uffd.copy(6);
    const log: string[] = [];
    const dropped = await uffd.madvise([5, 6, 7], {
      start: async (gfns) => void log.push(`start ${gfns.join(",")} removeEvents=${uffd.counters.removeEvents} resident5=${uffd.resident.has(5)}`),
      end: async (gone) => void log.push(`end ${gone.join(",")} resident5=${uffd.resident.has(5)}`),
    });
    expect(dropped).toEqual([5, 6]);
    // start covers the whole range while the page is still there; end names the pages that went, after they went
    expect(log).toEqual(["start 5,6,7 removeEvents=1 resident5=true", "end 5,6 resident5=false"]);
    expect(uffd.counters).toMatchObject({ removes: 2, removeEvents: 1, eagain: 0 });
    expect(uffd.ctx.mmapChanging).toBe(0);
  });

  it("madvise - a UFFDIO_COPY while the REMOVE is unread fails -EAGAIN; the handler retries it after reading the REMOVE, before the zap", async () => {
    const { uffd, clock } = setup(0.01);
    // the handler thread is busy for the next 5 ms (e.g. a spin flood): the REMOVE waits behind that
    expect(uffd.handler.reader.bulk(500, clock.t, 5)).toBe(500);
    const log: string[] = [];
    const done = uffd.madvise([3], {
      start: async () => void log.push(`start mmapChanging=${uffd.ctx.mmapChanging} resident9=${uffd.resident.has(9)}`),
      end: async () => void log.push("end"),
    });
    expect(uffd.ctx.mmapChanging).toBe(1); // userfaultfd_remove raised it; the madvise caller waits
    expect(uffd.copy(9)).toBe("EAGAIN");
    expect(uffd.resident.has(9)).toBe(false);
    expect(uffd.counters.eagain).toBe(1);
    clock.t += 10;
    await done;
    expect(log).toEqual(["start mmapChanging=0 resident9=true", "end"]);
    expect(uffd.counters).toMatchObject({ eagain: 1, copies: 1, removeEvents: 1 });
    expect(uffd.copy(9)).toBe("EEXIST");
  });

  it("madvise - control: with no REMOVE pending the same COPY succeeds at once", () => {
    const { uffd } = setup(0.01);
    expect(uffd.copy(9)).toBe("copied");
    expect(uffd.counters.eagain).toBe(0);
  });
});
