/** The command line's flag values, checked: a bad value is one clear line and exit 2. */
import { ConfigSchema, PROFILES, type Profile } from "@faultline/shared";

/** A mistake on the command line (exit 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const LOG_LEVELS: readonly string[] = ConfigSchema.properties.FAULTLINE_LOG_LEVEL.anyOf.map((s) => String(s.const));

function integer(flag: string, raw: string, min: number, max: number): number {
  const n = /^\s*[0-9]+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

/** 0 means any free port. */
export const parsePort = (raw: string): number => integer("--port", raw, 0, 65535);

export const parseReadyTimeout = (raw: string): number => integer("--ready-timeout", raw, 100, 3_600_000);

export function parseProfile(raw: string): Profile {
  if (!(PROFILES as readonly string[]).includes(raw)) throw new UsageError(`--profile must be one of ${PROFILES.join(", ")}, got ${JSON.stringify(raw)}`);
  return raw as Profile;
}

export function parseLogLevel(raw: string): string {
  if (!LOG_LEVELS.includes(raw)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(raw)}`);
  return raw;
}

export function parseNatsUrl(raw: string): string {
  for (const s of raw.split(",")) {
    let u: URL | null = null;
    try {
      u = new URL(s.includes("://") ? s : `nats://${s}`);
    } catch {
      /* reported below */
    }
    if (!u || !u.hostname) throw new UsageError(`--nats must be a NATS URL such as nats://127.0.0.1:4222, got ${JSON.stringify(raw)}`);
  }
  return raw;
}
