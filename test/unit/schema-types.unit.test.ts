import { Value } from "@sinclair/typebox/value";
import { describe, expect, it } from "vitest";
import {
  DequeueReq, MmuCountersSchema, MmuReport, ResultSchema, SignalExitOutcomeSchema, SignalOutcomeSchema, SignalRecordSchema,
} from "@faultline/shared";

const OUTCOMES = SignalExitOutcomeSchema.anyOf.map((l) => l.const);
const record = (outcome: unknown) => ({ vcpu: 0, signal: "SIGUSR1", source: "plan", sentAtMs: 1, outcome, exitAtMs: null, via: null, latencyUs: null });

describe("schemas derived from one another", () => {
  it("schemas - result.mmu keeps its v1 keys in their order, each an mmu counter or invalidateSeq", () => {
    const keys = Object.keys(ResultSchema.properties.mmu.properties);
    // the API serialises results in schema order: this order is part of the result document
    expect(keys).toEqual(["memslotInvalid", "roFaults", "zapped", "invalidateSeq", "hwpoison", "memoryFaults", "uaccess", "vcpuMap", "gpcRefresh", "stale"]); // stale: added after v1, at the end
    for (const k of keys) expect(k === "invalidateSeq" || k in MmuCountersSchema.properties).toBe(true);
    for (const k of Object.keys(MmuCountersSchema.properties)) expect(MmuReport.properties).toHaveProperty(k);
  });

  it("schemas - a dequeue outcome is valid in DequeueReq, a signal record and a result signal; ignored/pending only in the result", () => {
    expect(OUTCOMES).toEqual(["KVM_EXIT_INTR", "killed", "delivered-in-vmm"]);
    for (const outcome of OUTCOMES) {
      expect(Value.Check(DequeueReq, { vm: "vm", trace: "t", vcpu: 0, atMs: 1, outcome, via: "gup-eintr" })).toBe(true);
      expect(Value.Check(SignalRecordSchema, record(outcome))).toBe(true);
      expect(Value.Check(SignalOutcomeSchema, { signal: "SIGUSR1", source: "plan", sentAtMs: 1, outcome, via: null, latencyUs: null })).toBe(true);
    }
    expect(Value.Check(SignalRecordSchema, record(null))).toBe(true);
    for (const outcome of ["ignored", "pending"]) {
      expect(Value.Check(SignalRecordSchema, record(outcome))).toBe(false);
      expect(Value.Check(SignalOutcomeSchema, { signal: "SIGUSR1", source: "plan", sentAtMs: 1, outcome, via: null, latencyUs: null })).toBe(true);
    }
    expect(Value.Check(SignalOutcomeSchema, { signal: "SIGUSR1", source: "plan", sentAtMs: 1, outcome: "lost", via: null, latencyUs: null })).toBe(false);
  });
});
