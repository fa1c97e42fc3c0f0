/**
 * The scenario document, v1 (see the README). The CLI and `POST /v1/runs` take the same document.
 * Every field has a default; unknown fields are rejected (additionalProperties: false everywhere).
 */
import { Type, type Static, type TNumber } from "@sinclair/typebox";
import { MAX_GPA, MAX_MEMSLOT_BYTES } from "../budget.ts";
import { PROFILES, SIGNAL_MASK_MODES, SIGNAL_NAMES, SITES, type Site } from "../kernel.ts";
import { TraceSchema } from "./trace.ts";
import { SchedulesSchema, VmmPauseSchema } from "./schedules.ts";

/** How a vCPU walks its pages (services/vcpu/src/workload.ts). */
export const WORKLOAD_PATTERNS = ["sequential", "random", "zipf", "hotset", "strided", "trace"] as const;

const Ms = (description: string, extra: object = {}) =>
  Type.Integer({ minimum: 0, maximum: 3_600_000, description, ...extra });

/** A latency in µs (the page source's distributions). */
const LatUs = (description: string, extra: object = {}) => Type.Number({ minimum: 0, maximum: 10_000_000, description, ...extra });

/** A gfn: below 2^52 / 4096 (MAX_GPA). */
const Gfn = () => Type.Integer({ minimum: 0, maximum: MAX_GPA / 4096 - 1 });

/**
 * `64MiB`, `2GiB`, `4096`, or a byte count. Multiples of the 4 KiB page, at most MAX_MEMSLOT_BYTES
 * (KVM_MEM_MAX_NR_PAGES pages, 8 TiB less 4 KiB; a string's value is checked by parseScenario).
 */
export const SizeSchema = Type.Union(
  [Type.Integer({ minimum: 4096, maximum: MAX_MEMSLOT_BYTES }), Type.String({ pattern: "^[0-9]+(B|KiB|MiB|GiB|K|M|G)?$", maxLength: 20 })],
  { description: "bytes: an integer or a string such as 64MiB; at most 8 TiB - 4 KiB (KVM_MEM_MAX_NR_PAGES pages)" },
);

export const MemslotSchema = Type.Object(
  {
    slot: Type.Integer({ minimum: 0, maximum: 32767, description: "KVM memslot id" }),
    gpa: Type.Integer({ minimum: 0, maximum: MAX_GPA - 4096, default: 0, description: "guest physical base address (page aligned); the slot ends at or below 2^52" }),
    size: SizeSchema,
    readonly: Type.Boolean({ default: false, description: "KVM_MEM_READONLY: guest writes exit as MMIO (KVM_PFN_ERR_RO_FAULT → RET_PF_EMULATE)" }),
  },
  { additionalProperties: false },
);

/** KVM_SET_USER_MEMORY_REGION while vCPUs run. */
export const MemslotOpSchema = Type.Object(
  {
    atMs: Ms("when, ms since the run started"),
    op: Type.Union([Type.Literal("delete"), Type.Literal("add"), Type.Literal("move"), Type.Literal("flags")]),
    slot: Type.Integer({ minimum: 0, maximum: 32767 }),
    gpa: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_GPA - 4096, description: "add: base; move: new base" })),
    size: Type.Optional(SizeSchema),
    readonly: Type.Optional(Type.Boolean({ description: "add / flags: KVM_MEM_READONLY" })),
  },
  { additionalProperties: false },
);

/** The pager drops resident pages (MADV_DONTNEED, a balloon): UFFD_EVENT_REMOVE, mmu notifier invalidation. */
export const DropSchema = Type.Object(
  { atMs: Ms("when, ms since the run started"), gfns: Type.Array(Gfn(), { minItems: 1, maxItems: 65536, description: "at most FAULTLINE_MAX_DROPPED_GFNS over all drops" }) },
  { additionalProperties: false },
);

export const StallSchema = Type.Object(
  { atMs: Ms("stall start, ms since the run started"), forMs: Ms("stall length in ms", { minimum: 1 }) },
  { additionalProperties: false, description: "a window during which the page source answers nothing" },
);

export const VcpuSelectorSchema = Type.Union(
  [Type.Literal("all"), Type.Integer({ minimum: 0 }), Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 })],
  { description: '"all", one vCPU id, or a list of ids' },
);

/** Exactly one of `vcpus` (tgkill to those vCPU threads) and `process` (kill(pid) to the VMM); parseScenario checks it. */
export const SignalPlanSchema = Type.Object(
  {
    atMs: Ms("when to send, ms since the run started"),
    vcpus: Type.Optional(VcpuSelectorSchema),
    process: Type.Optional(Type.Literal(true, { description: "kill(pid): process-directed, the kernel picks the thread (complete_signal); the main thread first" })),
    signal: Type.Union(SIGNAL_NAMES.map((s) => Type.Literal(s))),
  },
  { additionalProperties: false, description: "a signal to vCPU threads (vcpus: tgkill) or to the VMM process (process: true): exactly one of the two" },
);

export const ScenarioSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, default: "unnamed", pattern: "^[A-Za-z0-9._-]+$" }),
    seed: Type.Integer({ default: 1, description: "drives every random draw" }),
    durationMs: Ms("hard stop; whatever is still blocked then is reported as blocked", {
      minimum: 1,
      maximum: 600_000,
      default: 3000,
    }),
    endWhenDone: Type.Boolean({
      default: true,
      description: "end the run early once every vCPU is done or killed and every planned event has passed",
    }),
    kernel: Type.Object(
      {
        profile: Type.Union(PROFILES.map((p) => Type.Literal(p)), { default: "6.13" }),
        asyncPf: Type.Boolean({ default: false, description: "async page faults: kvm_can_do_async_pf, kvm_setup_async_pf, the kworker in async_pf_execute" }),
        uaccessSpin: Type.Object(
          {
            eventsPerSec: Type.Number({
              minimum: 0, maximum: 10_000_000, default: 100_000,
              description:
                "UFFD_EVENT_PAGEFAULT messages per second re-queued by a task busy-looping in a kernel-mode fault (emulated access) with a " +
                "non-fatal signal pending (SPINNING): each pass re-enters handle_userfault. Measured on a 6.18 kernel with a pwrite from a " +
                "uffd page and SIGUSR1: the handler read 79k-91k messages in ~0.85 s on a quiet machine (~93k-107k/s), 15k/s and up under load",
            }),
            cpuShare: Type.Number({
              minimum: 0, maximum: 1, default: 0.93,
              description:
                "share of a CPU the busy-looping task burns (it is in state R): spinCpuMs = spin wall time x cpuShare. Measured on the same " +
                "6.18 kernel: 90-96% of a CPU on a quiet machine, 77% and up under load",
            }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    vm: Type.Object(
      {
        vcpus: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
        guest: Type.Object(
          {
            pvAsyncPf: Type.Boolean({ default: true, description: "the guest wrote MSR_KVM_ASYNC_PF_EN: 'page not present' is injected, else an artificial halt" }),
            interruptsEnabled: Type.Boolean({ default: true, description: "RFLAGS.IF; async PF needs it (kvm_can_do_async_pf). Selftest guests run with IF=0" }),
          },
          { additionalProperties: false, default: {} },
        ),
        memslots: Type.Array(MemslotSchema, {
          minItems: 1,
          maxItems: 64,
          default: [{ slot: 0, gpa: 0, size: "64MiB" }],
        }),
        memslotOps: Type.Array(MemslotOpSchema, { default: [], maxItems: 1000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    pager: Type.Object(
      {
        mode: Type.Union([Type.Literal("missing"), Type.Literal("minor"), Type.Literal("wp")], {
          default: "missing",
          description:
            "uffd registration mode: missing (no page: UFFDIO_COPY), minor (in the page cache, unmapped: UFFDIO_CONTINUE), wp (present, write-protected: UFFDIO_WRITEPROTECT)",
        }),
        features: Type.Array(Type.Union([Type.Literal("thread_id"), Type.Literal("sigbus")]), {
          default: [],
          uniqueItems: true,
          description: "UFFD_FEATURE_THREAD_ID (ptid in events), UFFD_FEATURE_SIGBUS (no events: faults get SIGBUS)",
        }),
        zeroRatio: Type.Number({ minimum: 0, maximum: 1, default: 0, description: "share of pages the source reports as zero: UFFDIO_ZEROPAGE, no fetch" }),
        poison: Type.Array(Gfn(), { default: [], maxItems: 65536, description: "gfns the handler resolves with UFFDIO_POISON" }),
        eventReadUs: Type.Number({
          minimum: 0, maximum: 10_000, default: 10,
          description:
            "the fault handler thread's time per uffd message it reads (poll wakeup, read(2) of one uffd_msg, the in-flight lookup): events " +
            "queue behind each other, so a flood of spin re-faults delays other vCPUs' fills. 10 us: the measured handler read ~85k messages " +
            "in ~0.85 s, one poll+read each, while keeping up with the flood; 0 = not modelled",
        }),
        wakeBatch: Type.Integer({
          minimum: 1, maximum: 4096, default: 1,
          description: "1: each fill wakes its waiters; N: fills use *_MODE_DONTWAKE and one UFFDIO_WAKE covers N pages (or 1 ms)",
        }),
        latency: Type.Object(
          {
            dist: Type.Union(
              [Type.Literal("fixed"), Type.Literal("uniform"), Type.Literal("normal"), Type.Literal("lognormal"), Type.Literal("pareto"), Type.Literal("empirical")],
              { default: "fixed", description: "the per-page fetch delay's distribution; each takes only its own parameters below" },
            ),
            us: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, description: "fixed: per-page fetch delay; 200 when absent" })),
            minUs: Type.Optional(LatUs("uniform: lowest delay")),
            maxUs: Type.Optional(LatUs("uniform: highest delay")),
            meanUs: Type.Optional(LatUs("normal: mean delay (draws below 0 count as 0)")),
            sdUs: Type.Optional(LatUs("normal: standard deviation")),
            medianUs: Type.Optional(LatUs("lognormal: median delay", { exclusiveMinimum: 0 })),
            sigma: Type.Optional(Type.Number({ minimum: 0, maximum: 10, description: "lognormal: sigma of the delay's logarithm" })),
            scaleUs: Type.Optional(LatUs("pareto: the smallest delay (x_m)", { exclusiveMinimum: 0 })),
            alpha: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100, description: "pareto: tail index (infinite mean at or below 1)" })),
            file: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: "empirical: a file of one delay (µs) per line, read by the CLI relative to the scenario file into samplesUs" })),
            samplesUs: Type.Optional(Type.Array(LatUs("one measured delay"), { minItems: 1, maxItems: 100_000, description: "empirical: delays drawn uniformly from this list" })),
          },
          { additionalProperties: false, default: {} },
        ),
        bandwidthMBps: Type.Optional(Type.Number({
          exclusiveMinimum: 0, maximum: 1_000_000,
          description: "the source link's rate (10^6 bytes/s): 4 KiB pages queue behind each other on it; absent = not modelled",
        })),
        loss: Type.Optional(Type.Object(
          {
            probability: Type.Number({ minimum: 0, maximum: 0.99, description: "chance that a fetch is lost (seeded)" }),
            retryMs: Ms("a lost fetch is re-sent after this long"),
          },
          { additionalProperties: false, description: "lost fetches, re-sent after retryMs; counted in result.pager.lostFetches" },
        )),
        stalls: Type.Array(StallSchema, { default: [], maxItems: 1000 }),
        drops: Type.Array(DropSchema, { default: [], maxItems: 1000 }),
        uffd: Type.Object(
          {
            layout: Type.Union([Type.Literal("single"), Type.Literal("per-vcpu")], {
              default: "single",
              description: "one userfaultfd for all guest memory (demand_paging_test -a), or one per vCPU's region",
            }),
            readers: Type.Integer({ minimum: 1, maximum: 64, default: 1, description: "reader threads per uffd (demand_paging_test -r)" }),
            waitQueue: Type.Object(
              {
                lockUs: Type.Number({
                  minimum: 0, maximum: 10_000, default: 0,
                  description: "modelled hold time of the uffd context's wait-queue lock per operation (enqueue, read, wake); 0 = not modelled",
                }),
                perWaiterUs: Type.Number({
                  minimum: 0, maximum: 10_000, default: 0,
                  description: "modelled extra hold time per waiter walked when UFFDIO_COPY wakes fault_wqh",
                }),
              },
              { additionalProperties: false, default: {} },
            ),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    workload: Type.Object(
      {
        pattern: Type.Union(WORKLOAD_PATTERNS.map((p) => Type.Literal(p)), { default: "sequential" }),
        pagesPerVcpu: Type.Integer({ minimum: 1, maximum: 1_048_576, default: 1024, description: "vcpus x pagesPerVcpu is at most FAULTLINE_MAX_ACCESSES" }),
        accessesPerVcpu: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_048_576, description: "zipf, hotset: accesses each vCPU makes (pages may repeat); default pagesPerVcpu" })),
        zipfS: Type.Number({ minimum: 0, maximum: 10, default: 1, description: "zipf: skew s, page of rank k drawn with weight 1/k^s" }),
        hotFraction: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.1, description: "hotset: share of the vCPU's pages that are hot" }),
        hotShare: Type.Number({ minimum: 0, maximum: 1, default: 0.9, description: "hotset: share of accesses that go to the hot pages" }),
        stridePages: Type.Integer({ minimum: 1, maximum: 1_048_576, default: 8, description: "strided: pages between two accesses, wrapping so every page is touched once" }),
        computeUs: Type.Number({ minimum: 0, maximum: 1_000_000, default: 0, description: "guest compute time per access, µs (guest execution time)" }),
        trace: Type.Optional(TraceSchema),
        writeRatio: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
        userModeShare: Type.Number({
          minimum: 0, maximum: 1, default: 0.5,
          description:
            "share of accesses the guest makes at CPL3; a Linux guest ≥5.8 accepts 'page not present' only there; the selftests' guest runs at CPL0: 0",
        }),
        site: Type.Union(
          [
            Type.Union(SITES.map((s) => Type.Literal(s))),
            Type.Partial(Type.Object(Object.fromEntries(SITES.map((s) => [s, Type.Number({ minimum: 0, maximum: 1 })])) as Record<Site, TNumber>), {
              additionalProperties: false,
              minProperties: 1,
              description: "a per-access mix, e.g. {tdp: 0.9, emulated: 0.1}; weights are normalised",
            }),
          ],
          { default: "tdp" },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    signals: Type.Array(SignalPlanSchema, { default: [], maxItems: 10_000, description: "the vCPUs targeted over all plans are at most FAULTLINE_MAX_SIGNAL_RECORDS" }),
    vmm: Type.Object(
      {
        pauseAllAtMs: Type.Optional(Ms("pause_all_vcpus at this time")),
        resumeAtMs: Type.Optional(Ms("resume_all_vcpus at this time")),
        pauses: Type.Optional(Type.Array(VmmPauseSchema, {
          maxItems: 1000,
          description: "pause/resume cycles, ordered and non-overlapping; not together with pauseAllAtMs",
        })),
        rekickMs: Type.Optional(Type.Integer({
          minimum: 1,
          maximum: 60_000,
          description: "opt-in timed re-kick while a pause is incomplete; QEMU has none (it re-kicks only when a vCPU parks), so absent by default",
        })),
        signalMask: Type.Union(SIGNAL_MASK_MODES.map((m) => Type.Literal(m)), {
          default: "immediate-exit",
          description:
            "how the vCPU thread takes SIG_IPI outside KVM_RUN: immediate-exit (KVM_CAP_IMMEDIATE_EXIT: handled at once, run->immediate_exit) or kvm-set-signal-mask (blocked until the next KVM_RUN)",
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    schedules: Type.Optional(SchedulesSchema),
  },
  { additionalProperties: false, $id: "Scenario" },
);

export type Scenario = Static<typeof ScenarioSchema>;
export type Memslot = Static<typeof MemslotSchema>;
export type SignalPlan = Static<typeof SignalPlanSchema>;
export type MemslotOp = Static<typeof MemslotOpSchema>;
export type VcpuSelector = Static<typeof VcpuSelectorSchema>;
