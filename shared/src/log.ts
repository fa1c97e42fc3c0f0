/** pino loggers: JSON by default, one child per service, with vm / vcpu fields bound by callers. */
import { pino, type Logger, type LoggerOptions } from "pino";
import type { Config } from "./config.ts";

export type { Logger };

export function createLogger(svc: string, config: Pick<Config, "FAULTLINE_LOG_LEVEL" | "FAULTLINE_INSTANCE">): Logger {
  const opts: LoggerOptions = {
    level: config.FAULTLINE_LOG_LEVEL,
    base: { svc, instance: config.FAULTLINE_INSTANCE },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(opts);
}
