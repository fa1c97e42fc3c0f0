/**
 * @faultline/shared: what the services share. Kernel names and constants, NATS subjects and
 * message schemas, the scenario contract, typed errors, the NATS layer, logging, config, clocks.
 */
export * from "./kernel.ts";
export * from "./errors.ts";
export * from "./budget.ts";
export * from "./subjects.ts";
export * from "./schemas/scenario.ts";
export * from "./schemas/schedules.ts";
export * from "./schemas/messages.ts";
export * from "./schemas/result.ts";
export * from "./schemas/reports.ts";
export { assertValid, withDefaults } from "./schemas/validate.ts";
export { guestGfns, guestRanges, parseLatencySamples, parseScenario, parseScenarioDoc, parseScenarioText, workloadAccesses, parseSize, selectVcpus } from "./scenario.ts";
export { connectNats, closeNats, request, publish, serve, listen, ReqStream, transportEvents, ERROR_HEADER, ERROR_CODE_HEADER, FL_CODE_HEADER, TRACE_HEADER } from "./nats.ts";
export type { ConnectOptions, RequestOptions, ServeOptions, RetryEvent, GiveUpEvent } from "./nats.ts";
export { NatsBus, servePing, type Bus, type BusStatus, type BusSubscription } from "./bus.ts";
export { MemoryBus, subjectMatches } from "./memory-bus.ts";
export { CHUNK_HEADER, BLOB_HEADER, chunkLimit } from "./chunks.ts";
export { TestbedMonitor, VmTestbed, STALL_THRESHOLD_MS, type Incident, type IncidentKind, type StallWindow, type LoopDelay } from "./testbed.ts";
export { watchParent, PARENT_PID_ENV } from "./parent-watch.ts";
export { applyMemslotChange, checkMemslotOp, checkMemslotOpShape, layoutOf, simulateMemslotOps } from "./memslot-check.ts";
export type { MemslotChange, MemslotOpInput, SlotLayout } from "./memslot-check.ts";
export { loadConfig, ConfigSchema, CONFIG_ENV, type Config } from "./config.ts";
export { createLogger, type Logger } from "./log.ts";
export { RunClock, ManualClock, clock, setClock, realClock, epochMs, sleepPrecise, ModelledLock, type Clock, type ClockTimer } from "./clock.ts";
export { summarize, LOG2_BUCKETS, type LatencySummary } from "./histogram.ts";
export { prng, shuffle } from "./random.ts";
export { LATENCY_PARAMS, attemptSeed, latencySpec, sampler, type LatencySpec, type Sampler } from "./distributions.ts";
export { runService, runProcess, hostService, defineService, endpoint, HEARTBEAT_MS, type ServiceContext, type ServiceDefinition, type VmContext, type VmState, type Endpoint, type HostedService } from "./service.ts";
export { PageSet, type GfnRange } from "./page-set.ts";
export { Linger, LIVE_MIN_MS } from "./linger.ts";
export { parseLackey, traceStats, normaliseTrace, type ParsedTrace, type LackeyOptions } from "./trace.ts";
export { TraceSchema, FAULTLINE_MAX_TRACE_RUNS, FAULTLINE_MAX_TRACE_TEXT, type TraceSpec } from "./schemas/trace.ts";
