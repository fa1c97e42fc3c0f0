/**
 * `workload.trace`: a real program's memory accesses, replayed by every vCPU. The CLI reads
 * `file` (valgrind lackey output, relative to the scenario file) and sends only `runs`, the trace
 * compressed to a page sequence, so a large trace never crosses NATS as text.
 */
import { Type, type Static } from "@sinclair/typebox";

/** Page runs a scenario's trace may hold (one run: consecutive accesses to one page, same kind); `ls /` under lackey has 107,514, about 0.7 MB as JSON. */
export const FAULTLINE_MAX_TRACE_RUNS = 131_072;
/** Characters of lackey text a scenario may carry inline (`trace.accesses`). */
export const FAULTLINE_MAX_TRACE_TEXT = 1_048_576;

export const TraceSchema = Type.Object(
  {
    file: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: "valgrind --tool=lackey --trace-mem=yes output, relative to the scenario file; read by the CLI" })),
    accesses: Type.Optional(Type.String({ maxLength: FAULTLINE_MAX_TRACE_TEXT, description: "lackey output inline (small traces)" })),
    runs: Type.Optional(
      Type.Array(Type.Integer({ minimum: 0 }), {
        maxItems: 3 * FAULTLINE_MAX_TRACE_RUNS,
        description: "the trace as a page sequence: triples [page, write 0|1, accesses]; pages numbered in first-touch order",
      }),
    ),
    instructions: Type.Boolean({ default: false, description: "replay instruction fetches (lackey I lines) too" }),
  },
  { additionalProperties: false },
);
export type TraceSpec = Static<typeof TraceSchema>;
