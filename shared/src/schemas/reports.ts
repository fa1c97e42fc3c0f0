/** Per-service report replies (api ← services at the end of a run, or live), validated on receipt. */
import { Type, type Static } from "@sinclair/typebox";
import { SignalExitOutcomeSchema, SignalNameSchema, SignalSendOutcomeSchema, SignalSource, VcpuStateSchema, WaitStateSchema } from "./messages.ts";
import { ApfDeliverySchema, DemandPagingSchema, LatencySchema, MemslotOpResultSchema, MmuCountersSchema, PagerCountersSchema, PauseSchema, ProcessSignalSchema, ServiceTestbedSchema, ShutdownSchema, VcpuResultSchema } from "./result.ts";

/** every report carries what the service saw of the testbed itself */
const testbed = { testbed: ServiceTestbedSchema };

const N = Type.Number();
const NullN = Type.Union([Type.Number(), Type.Null()]);

export const VcpuReport = Type.Object({
  nowMs: N,
  vcpus: Type.Array(
    Type.Object({
      ...Type.Omit(VcpuResultSchema, ["blockedIn", "signals", "state"]).properties,
      state: VcpuStateSchema,
      inFault: Type.Union([Type.Null(), Type.Object({ site: Type.String(), gfn: Type.Integer(), sinceMs: N, waitState: Type.Optional(Type.Literal("TASK_INTERRUPTIBLE")) })]),
    }),
  ),
  faultSlow: LatencySchema,
  faultFast: LatencySchema,
  faultAsync: LatencySchema,
  demandPaging: DemandPagingSchema,
  ...testbed,
});

export const PagerReport = Type.Object({
  ...PagerCountersSchema.properties,
  waiters: Type.Array(Type.Object({ vcpu: Type.Integer(), gfn: Type.Integer(), waitState: WaitStateSchema, sinceMs: N })),
  kworkersAsleep: Type.Integer(),
  stalls: Type.Array(Type.Object({ atMs: N, action: Type.Union([Type.Literal("stall"), Type.Literal("unstall")]) })),
  ...testbed,
});

/** One signal sent to one vCPU task, and (once dequeued) its outcome: the signals service's record. */
export const SignalRecordSchema = Type.Object({
  vcpu: Type.Integer(),
  signal: SignalNameSchema,
  source: SignalSource,
  sentAtMs: N,
  outcome: Type.Union([...SignalExitOutcomeSchema.anyOf, ...SignalSendOutcomeSchema.anyOf, Type.Null()]),
  exitAtMs: NullN,
  via: Type.Union([Type.String(), Type.Null()]),
  latencyUs: NullN,
  testbedStalled: Type.Optional(Type.Boolean()),
});

export const SignalsReport = Type.Object({
  vmKilled: Type.Boolean(),
  records: Type.Array(SignalRecordSchema),
  pending: Type.Array(Type.Array(SignalNameSchema)),
  pauses: Type.Array(PauseSchema),
  shutdown: Type.Union([Type.Null(), ShutdownSchema]),
  processSignals: Type.Array(ProcessSignalSchema),
  signalToExit: LatencySchema,
  ...testbed,
});

export const MmuReport = Type.Object({
  ...MmuCountersSchema.properties,
  sptes: N,
  invalidateSeq: N,
  asyncPf: Type.Union([Type.Null(), Type.Record(Type.String(), Type.Integer())]),
  asyncPfDelivery: Type.Union([Type.Null(), ApfDeliverySchema]),
  memslotOps: Type.Array(MemslotOpResultSchema),
  ...testbed,
});

export type VcpuReport = Static<typeof VcpuReport>;
export type PagerReport = Static<typeof PagerReport>;
export type SignalsReport = Static<typeof SignalsReport>;
export type MmuReport = Static<typeof MmuReport>;
export type SignalRecord = Static<typeof SignalRecordSchema>;
