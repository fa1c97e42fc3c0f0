/**
 * Process configuration from the environment. The same names are used by the CLI when it spawns
 * services and by docker-compose.yml (a test checks that the compose file sets only these).
 */
import { Type, type Static } from "@sinclair/typebox";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { withDefaults } from "./schemas/validate.ts";

export const ConfigSchema = Type.Object({
  /** NATS servers, comma-separated. @default nats://127.0.0.1:4222 */
  NATS_URL: Type.String({ default: "nats://127.0.0.1:4222" }),
  /** pino level. @default info */
  FAULTLINE_LOG_LEVEL: Type.Union(
    ["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => Type.Literal(l)),
    { default: "info" },
  ),
  /** Timeout of ordinary (non-blocking) requests between services, ms. @default 5000 */
  FAULTLINE_RPC_TIMEOUT_MS: Type.Integer({ minimum: 10, default: 5000 }),
  /** A run ends `aborted` (FL_ERR_SERVICE_LOST) when a service holding its VM is silent this long, ms. @default 3000 */
  FAULTLINE_LIVENESS_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 3000 }),
  /** Services tear a VM down when the api has not renewed its lease for this long, ms. @default 5000 */
  FAULTLINE_LEASE_MS: Type.Integer({ minimum: 200, maximum: 600_000, default: 5000 }),
  /** Finished runs kept by the api (the oldest are deleted first). @default 1000 */
  FAULTLINE_MAX_RUNS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000 }),
  /** The API's listen port. @default 8080 */
  FAULTLINE_API_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  /** The API's listen address; loopback unless asked (docker-compose.yml sets 0.0.0.0). @default 127.0.0.1 */
  FAULTLINE_API_HOST: Type.String({ default: "127.0.0.1" }),
  /** Instance name, shown in NATS /connz and in logs. @default <hostname>-<pid> */
  FAULTLINE_INSTANCE: Type.String({ default: "" }),
});
export type Config = Static<typeof ConfigSchema>;
export const CONFIG_ENV = Object.keys(ConfigSchema.properties) as Array<keyof Config>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const k of CONFIG_ENV) {
    const v = env[k];
    if (v === undefined || v === "") continue;
    raw[k] = /^(FAULTLINE_RPC_TIMEOUT_MS|FAULTLINE_API_PORT|FAULTLINE_LIVENESS_MS|FAULTLINE_LEASE_MS|FAULTLINE_MAX_RUNS)$/.test(k) && /^[0-9]+$/.test(v) ? Number(v) : v;
  }
  const c = withDefaults("environment", ConfigSchema, raw);
  // unique per process: a VM's owner is addressed by it
  if (!c.FAULTLINE_INSTANCE) c.FAULTLINE_INSTANCE = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`.replace(/[^A-Za-z0-9_-]/g, "_");
  return c;
}

/** The NATS connection name of a service: `<svc>-<instance>` unless the instance already starts with the service name. */
export function connectionName(svc: string, instance: string): string {
  return instance.startsWith(svc) ? instance : `${svc}-${instance}`;
}
