/**
 * Live controls on a real stack are checked as strictly as scenarios: each mistake gets its own
 * status, code, path (and KVM's errno for memslot ops), never a 502; the run keeps running, valid
 * controls still work, and it completes afterwards.
 */
import { describe, expect, it } from "vitest";
import type { RunView } from "../cli/src/index.ts";
import { httpError, useTestStack, waitFor as waitForRun } from "./helpers/stack.ts";

const t = useTestStack();
const MiB = 1 << 20;

const waitFor = (id: string, ok: (r: RunView) => boolean, what: string) => waitForRun(t.api, id, ok, what, 400);

interface Expect {
  status: number;
  code: string;
  path?: string;
  errno?: string;
  message?: RegExp;
}

describe("controls", () => {
  it("controls - each bad control gets its status, code, path and errno; the run keeps running, valid controls work, it completes", async () => {
    const run = await t.api.createRun({
      name: "controls", durationMs: 120_000, kernel: { profile: "6.13" },
      vm: { vcpus: 4, memslots: [{ slot: 0, gpa: 0, size: "64MiB" }, { slot: 1, gpa: 64 * MiB, size: "1MiB", readonly: true }] },
      pager: { latency: { us: 0 } }, workload: { pagesPerVcpu: 4000 },
    });
    await waitFor(run.id, (r) => r.status === "running" && r.vcpus.every((v) => v.pagesTouched > 0), "making progress");
    // hold the vCPUs in their faults so the run cannot end while the controls are tried
    await t.api.call("POST", `/v1/runs/${run.id}/pager/stall`);
    const post = (what: string, body: unknown) => t.api.call("POST", `/v1/runs/${run.id}/${what}`, body);

    const bad: Array<[string, unknown, Expect]> = [
      ["signals", { signal: "SIGUSR1", vcpus: 99 }, { status: 400, code: "FL_ERR_INVALID", path: "/body/vcpus", message: /vCPU 99 does not exist \(vm\.vcpus = 4\)/ }],
      ["signals", { signal: "SIGUSR1", vcpus: [1, 4] }, { status: 400, code: "FL_ERR_INVALID", path: "/body/vcpus", message: /vCPU 4 does not exist/ }],
      ["signals", { signal: "SIGUSR1", colour: "red" }, { status: 400, code: "FL_ERR_INVALID", path: "/body/colour" }],
      ["signals", { signal: "SIGUSR1", vcpus: "1" }, { status: 400, code: "FL_ERR_INVALID", path: "/body/vcpus" }],
      ["memslots", { op: "add", slot: 5 }, { status: 400, code: "FL_ERR_INVALID", path: "/body/size" }],
      ["memslots", { op: "add", slot: 5, size: "1MiB" }, { status: 400, code: "FL_ERR_INVALID", path: "/body/gpa" }],
      ["memslots", { op: "add", slot: 5, gpa: 128 * MiB + 100, size: "1MiB" }, { status: 400, code: "FL_ERR_KVM_EINVAL", path: "/body/gpa", errno: "EINVAL" }],
      ["memslots", { op: "add", slot: 5, gpa: 128 * MiB, size: 4097 }, { status: 400, code: "FL_ERR_KVM_EINVAL", path: "/body/size", errno: "EINVAL" }],
      ["memslots", { op: "add", slot: 5, gpa: MiB, size: "1MiB" }, { status: 409, code: "FL_ERR_KVM_EEXIST", path: "/body/gpa", errno: "EEXIST", message: /overlaps memslot 0/ }],
      ["memslots", { op: "add", slot: 1, gpa: 128 * MiB, size: "1MiB" }, { status: 400, code: "FL_ERR_KVM_EINVAL", path: "/body/slot", errno: "EINVAL" }],
      ["memslots", { op: "delete", slot: 9 }, { status: 400, code: "FL_ERR_KVM_EINVAL", path: "/body/slot", errno: "EINVAL", message: /memslot 9 does not exist/ }],
      ["memslots", { op: "delete", slot: 0, gpa: 0 }, { status: 400, code: "FL_ERR_INVALID", path: "/body/gpa" }],
      ["memslots", { op: "delete", slot: 0, force: true }, { status: 400, code: "FL_ERR_INVALID", path: "/body/force" }],
      ["memslots", { op: "flags", slot: 1, readonly: false }, { status: 400, code: "FL_ERR_KVM_EINVAL", path: "/body/readonly", errno: "EINVAL" }],
      ["memslots", { op: "move", slot: 1, gpa: 0 }, { status: 409, code: "FL_ERR_KVM_EEXIST", path: "/body/gpa", errno: "EEXIST" }],
      ["memslots", { op: "move", slot: 1, gpa: 256 * MiB, size: "2MiB" }, { status: 400, code: "FL_ERR_KVM_EINVAL", path: "/body/size", errno: "EINVAL" }],
    ];
    for (const [what, body, want] of bad) {
      const e = await httpError(post(what, body));
      const got = { status: e.status, ...(e.body as Record<string, unknown>) };
      expect(got, `${what} ${JSON.stringify(body)}`).toMatchObject({ status: want.status, statusCode: want.status, code: want.code, path: want.path });
      expect((e.body as { errno?: string }).errno, `${what} ${JSON.stringify(body)}`).toBe(want.errno);
      if (want.message) expect(e.body.message).toMatch(want.message);
    }
    const missing = await httpError(t.api.call("POST", "/v1/runs/nope/signals", { signal: "SIGUSR1", vcpus: 0 }));
    expect({ status: missing.status, code: missing.body.code }).toEqual({ status: 404, code: "FL_ERR_NOT_FOUND" });
    expect((await httpError(t.api.call("POST", "/v1/runs/nope/memslots", { op: "delete", slot: 0 }))).status).toBe(404);

    expect((await t.api.getRun(run.id)).status).toBe("running");
    // valid controls still work: an add, a move of the new slot, a move onto part of its own range, a signal to one vCPU.
    // KVM_SET_USER_MEMORY_REGION waits in synchronize_srcu_expedited for the vCPUs asleep in their faults, so
    // while the pager is stalled the add does not return; once the faults finish it does.
    const add = post("memslots", { op: "add", slot: 5, gpa: 128 * MiB, size: "1MiB" });
    const early = await Promise.race([add.then(() => "returned"), new Promise((r) => setTimeout(() => r("waiting"), 300))]);
    expect(early).toBe("waiting");
    await t.api.call("POST", `/v1/runs/${run.id}/pager/unstall`);
    await expect(add).resolves.toEqual({ zapped: 0 });
    await expect(post("memslots", { op: "move", slot: 5, gpa: 256 * MiB })).resolves.toEqual({ zapped: 0 });
    await expect(post("memslots", { op: "move", slot: 5, gpa: 256 * MiB + MiB / 2 })).resolves.toEqual({ zapped: 0 });
    // the old place of slot 5 is free again; its new place is taken
    const taken = await httpError(post("memslots", { op: "add", slot: 6, gpa: 256 * MiB, size: "1MiB" }));
    expect({ status: taken.status, code: taken.body.code }).toEqual({ status: 409, code: "FL_ERR_KVM_EEXIST" });
    await expect(post("memslots", { op: "add", slot: 6, gpa: 128 * MiB, size: "1MiB" })).resolves.toEqual({ zapped: 0 });
    const sent = await t.api.call<{ sent: Array<{ vcpu: number }> }>("POST", `/v1/runs/${run.id}/signals`, { signal: "SIGUSR1", vcpus: [3] });
    expect(sent.sent.map((s) => s.vcpu)).toEqual([3]);

    await t.api.call("POST", `/v1/runs/${run.id}/pager/unstall`);
    await t.api.call("POST", `/v1/runs/${run.id}/signals`, { signal: "SIGKILL" });
    const end = await t.api.waitRun(run.id);
    expect(end.status).toBe("completed");
    expect(end.result!.vcpus.map((v) => v.state)).toEqual(["killed", "killed", "killed", "killed"]);
    expect(end.result!.vcpus[3]!.signals.some((s) => s.source === "api" && s.signal === "SIGUSR1")).toBe(true);

    // a finished run: 409, even for a body that would be fine
    for (const [what, body] of [["signals", { signal: "SIGUSR1", vcpus: 0 }], ["memslots", { op: "delete", slot: 0 }]] as const) {
      const e = await httpError(post(what, body));
      expect({ status: e.status, code: e.body.code }).toEqual({ status: 409, code: "FL_ERR_STATE" });
    }
  });

  it("controls - a scenario whose memslotOps break KVM's rules is refused at parse time with the op's path", async () => {
    const base = { vm: { memslots: [{ slot: 0, gpa: 0, size: "8MiB" }] }, workload: { pagesPerVcpu: 16 } };
    const overlap = await httpError(t.api.createRun({ ...base, vm: { ...base.vm, memslotOps: [
      { atMs: 10, op: "add", slot: 1, gpa: 16 * MiB, size: "1MiB" },
      { atMs: 20, op: "move", slot: 1, gpa: 4 * MiB },
    ] } }));
    expect({ status: overlap.status, ...overlap.body }).toMatchObject({ status: 409, code: "FL_ERR_KVM_EEXIST", path: "/vm/memslotOps/1/gpa", errno: "EEXIST" });
    // in time order, not document order: the op at 20 ms is checked first
    const order = await httpError(t.api.createRun({ ...base, vm: { ...base.vm, memslotOps: [
      { atMs: 30, op: "delete", slot: 1 },
      { atMs: 20, op: "delete", slot: 1 },
    ] } }));
    expect({ status: order.status, ...order.body }).toMatchObject({ status: 400, code: "FL_ERR_KVM_EINVAL", path: "/vm/memslotOps/1/slot", errno: "EINVAL" });
  });
});
