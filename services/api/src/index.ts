/** The api service: the HTTP control API over the NATS services. */
import type { ServiceContext } from "@faultline/shared";
import { buildApp } from "./app.ts";

export { buildApp, type AppOptions } from "./app.ts";
export { RunManager, type Run, type RunStatus } from "./runs.ts";
export { assembleResult, type Reports } from "./result.ts";

export async function startApi({ nc, log, config }: ServiceContext) {
  const { app, runs } = await buildApp({ nc, log, rpcTimeoutMs: config.FAULTLINE_RPC_TIMEOUT_MS });
  const address = await app.listen({ port: config.FAULTLINE_API_PORT, host: config.FAULTLINE_API_HOST });
  log.info({ address }, "api listening");
  return {
    vms: () => runs.list().filter((r) => r.status === "running").length,
    stop: async () => {
      await app.close();
    },
  };
}
