/**
 * Process scaffolding shared by the five services: config, logger, NATS connection, liveness
 * responder, per-VM state registry, and a clean shutdown on SIGTERM/SIGINT.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { connectionName, loadConfig, type Config } from "./config.ts";
import { NotFoundError, ValidationError } from "./errors.ts";
import { createLogger } from "./log.ts";
import { closeNats, connectNats, servePing } from "./nats.ts";
import { watchParent } from "./parent-watch.ts";
import type { ServiceName } from "./subjects.ts";

export interface ServiceContext {
  name: ServiceName;
  nc: NatsConnection;
  log: Logger;
  config: Config;
}

/** Per-VM state held by one service instance. */
export class VmRegistry<T extends { close?: () => void }> {
  readonly #vms = new Map<string, T>();
  get size(): number {
    return this.#vms.size;
  }
  get(vm: string): T {
    const s = this.#vms.get(vm);
    if (!s) throw new NotFoundError("VM", vm);
    return s;
  }
  find(vm: string): T | undefined {
    return this.#vms.get(vm);
  }
  add(vm: string, state: T): void {
    if (this.#vms.has(vm)) throw new ValidationError("setup", "/vm", `VM ${vm} already exists`);
    this.#vms.set(vm, state);
  }
  delete(vm: string): boolean {
    const s = this.#vms.get(vm);
    s?.close?.();
    return this.#vms.delete(vm);
  }
  closeAll(): void {
    for (const vm of [...this.#vms.keys()]) this.delete(vm);
  }
}

export type Stop = () => Promise<void> | void;

/**
 * Runs a service process: connects (waiting for NATS forever, so compose can start in any order),
 * answers pings, calls `start`, and on SIGTERM/SIGINT stops it and drains the connection.
 */
export async function runService(
  name: ServiceName,
  start: (ctx: ServiceContext) => Promise<{ stop: Stop; vms: () => number }>,
): Promise<void> {
  const config = loadConfig();
  const log = createLogger(name, config);
  watchParent((why) => { log.warn({ why }, "parent gone; exiting"); process.exit(1); });
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "uncaught exception");
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
  const nc = await connectNats({ servers: config.NATS_URL, name: connectionName(name, config.FAULTLINE_INSTANCE), waitForServer: true });
  const svc = await start({ name, nc, log, config });
  servePing(nc, log, name, config.FAULTLINE_INSTANCE, svc.vms);
  await nc.flush();
  log.info({ nats: nc.getServer() }, "service ready");
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    await svc.stop();
    await closeNats(nc);
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  void nc.closed().then((err) => {
    if (!stopping) {
      log.fatal({ err }, "NATS connection closed");
      process.exit(1);
    }
  });
}
