import { PROFILES } from "@faultline/shared";
import { describe, expect, it } from "vitest";
import { LOG_LEVELS, parseLogLevel, parseNatsUrl, parsePort, parseProfile, parseReadyTimeout, UsageError } from "./args.ts";

describe("args", () => {
  it("args - ports are integers 0-65535; anything else is a UsageError naming the flag", () => {
    expect(parsePort("0")).toBe(0);
    expect(parsePort("8080")).toBe(8080);
    for (const bad of ["", "abc", "-1", "65536", "80.5", "1e3", "0x50"]) {
      expect(() => parsePort(bad), bad).toThrow(UsageError);
      expect(() => parsePort(bad)).toThrow(/^--port must be an integer from 0 to 65535/);
    }
  });

  it("args - --ready-timeout is a positive number of ms", () => {
    expect(parseReadyTimeout("30000")).toBe(30000);
    expect(() => parseReadyTimeout("soon")).toThrow(/^--ready-timeout must be an integer/);
    expect(() => parseReadyTimeout("0")).toThrow(UsageError);
  });

  it("args - --profile must be a kernel profile and --log-level a pino level", () => {
    for (const p of PROFILES) expect(parseProfile(p)).toBe(p);
    expect(() => parseProfile("5.10")).toThrow(/--profile must be one of pre-6\.2, 6\.2, 6\.13/);
    expect(LOG_LEVELS).toContain("debug");
    expect(parseLogLevel("debug")).toBe("debug");
    expect(() => parseLogLevel("loud")).toThrow(/--log-level must be one of fatal, error/);
  });

  it("args - --nats takes one or more URLs", () => {
    expect(parseNatsUrl("nats://127.0.0.1:4222,nats://h:4223")).toBe("nats://127.0.0.1:4222,nats://h:4223");
    expect(() => parseNatsUrl("nats://")).toThrow(/--nats must be a NATS URL/);
  });
});
