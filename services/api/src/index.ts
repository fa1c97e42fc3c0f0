/** The api service: the HTTP control API over the NATS services. */
import type { ServiceContext } from "@faultline/shared";
import { buildApp } from "./app.ts";
import { openRunStore } from "./store.ts";

export { buildApp, type AppOptions } from "./app.ts";
export { RunManager, type Run, type RunStatus } from "./runs.ts";
export { assembleResult, type Reports } from "./result.ts";
export { openRunStore, type RunStore, type RunRecord } from "./store.ts";

export async function startApi({ nc, bus, log, config }: ServiceContext) {
  const store = await openRunStore(nc, { maxRuns: config.FAULTLINE_MAX_RUNS, log });
  const { app, runs } = await buildApp({
    bus, log, store, instance: config.FAULTLINE_INSTANCE, rpcTimeoutMs: config.FAULTLINE_RPC_TIMEOUT_MS, livenessMs: config.FAULTLINE_LIVENESS_MS, leaseMs: config.FAULTLINE_LEASE_MS,
  });
  const address = await app.listen({ port: config.FAULTLINE_API_PORT, host: config.FAULTLINE_API_HOST });
  log.info({ address, store: store.kind }, "api listening");
  return {
    vms: () => runs.active().length,
    stop: async () => {
      await app.close();
      await runs.shutdown();
      runs.close();
      await store.close();
    },
  };
}
