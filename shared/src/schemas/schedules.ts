/**
 * `schedules`: Jepsen-nemesis style recurring faults, seeded. `parseScenario` expands them into the
 * concrete plans the services run (`pager.stalls`, `signals`, `vmm.pauses`) and drops the block.
 */
import { Type, type Static } from "@sinclair/typebox";
import { SIGNAL_NAMES } from "../kernel.ts";

const Ms = (description: string, extra: object = {}) => Type.Integer({ minimum: 0, maximum: 3_600_000, description, ...extra });
const Every = (description: string) => Ms(description, { minimum: 1 });
const Jitter = () => Type.Optional(Ms("each event is delayed by a seeded draw in [0, jitterMs], never to or past toMs"));

export const StallScheduleSchema = Type.Object(
  {
    fromMs: Ms("first window starts here"),
    toMs: Ms("no window starts at or after this"),
    everyMs: Every("one window every everyMs"),
    forMs: Every("each window's length; forMs + jitterMs at most everyMs (windows never overlap)"),
    jitterMs: Jitter(),
  },
  { additionalProperties: false, description: "periodic pager.stalls windows" },
);

export const SignalScheduleSchema = Type.Object(
  {
    kind: Type.Union([Type.Literal("periodic"), Type.Literal("random")], { default: "periodic", description: "periodic: every everyMs; random: count seeded times in [fromMs, toMs)" }),
    fromMs: Ms("first signal (periodic) or start of the draw range (random)"),
    toMs: Ms("no signal at or after this"),
    everyMs: Type.Optional(Every("periodic: one signal every everyMs")),
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: "random: how many signals" })),
    jitterMs: Jitter(),
    signal: Type.Union(SIGNAL_NAMES.map((s) => Type.Literal(s))),
    vcpus: Type.Optional(Type.Union([Type.Literal("all"), Type.Integer({ minimum: 0 }), Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 })])),
    process: Type.Optional(Type.Literal(true)),
  },
  { additionalProperties: false, description: "signals[] entries: exactly one of vcpus and process, as a signal plan" },
);

export const PauseScheduleSchema = Type.Object(
  {
    fromMs: Ms("first pause_all_vcpus"),
    everyMs: Every("one pause/resume cycle every everyMs"),
    pauseForMs: Every("resume_all_vcpus this long after each pause; below everyMs"),
    count: Type.Integer({ minimum: 1, maximum: 1000, description: "cycles" }),
  },
  { additionalProperties: false, description: "vmm.pauses cycles" },
);

export const SchedulesSchema = Type.Object(
  {
    stalls: Type.Array(StallScheduleSchema, { default: [], maxItems: 100 }),
    signals: Type.Array(SignalScheduleSchema, { default: [], maxItems: 100 }),
    pauses: Type.Array(PauseScheduleSchema, { default: [], maxItems: 100 }),
  },
  { additionalProperties: false, description: "recurring faults, expanded (seeded) by parseScenario into pager.stalls, signals and vmm.pauses" },
);

export const VmmPauseSchema = Type.Object(
  {
    atMs: Ms("pause_all_vcpus at this time"),
    resumeAtMs: Type.Optional(Ms("resume_all_vcpus at this time; only the last pause may stay paused")),
  },
  { additionalProperties: false },
);

export type Schedules = Static<typeof SchedulesSchema>;
export type VmmPause = Static<typeof VmmPauseSchema>;
