/**
 * Finds a NATS server for the integration tests, in the order DEVELOPERS.md sets:
 * 1. NATS_URL if set; 2. a `nats-server` on PATH, started on free ports with JetStream (as nats.js's
 * own harness does); 3. Docker through testcontainers; 4. fail, saying how to get one.
 */
import type { TestProject } from "vitest/node";
import { startNatsServer } from "../../cli/src/nats-server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    natsUrl: string;
    natsSource: string;
  }
}

async function viaTestcontainers(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { GenericContainer, Wait } = await import("testcontainers");
  const c = await new GenericContainer("nats:2.10-alpine")
    .withCommand(["-js"])
    .withExposedPorts(4222)
    .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
    .start();
  return { url: `nats://${c.getHost()}:${c.getMappedPort(4222)}`, stop: async () => void (await c.stop()) };
}

export default async function setup(project: TestProject) {
  if (process.env.NATS_URL) {
    project.provide("natsUrl", process.env.NATS_URL);
    project.provide("natsSource", "NATS_URL");
    return;
  }
  const errors: string[] = [];
  try {
    // JetStream on: runs are persisted in its KV and object stores
    const srv = await startNatsServer({ jetstream: true });
    project.provide("natsUrl", srv.url);
    project.provide("natsSource", `nats-server pid ${srv.pid}`);
    return () => srv.stop();
  } catch (err) {
    errors.push(`nats-server on PATH: ${(err as Error).message}`);
  }
  try {
    const c = await viaTestcontainers();
    project.provide("natsUrl", c.url);
    project.provide("natsSource", "testcontainers");
    return () => c.stop();
  } catch (err) {
    errors.push(`testcontainers: ${(err as Error).message}`);
  }
  throw new Error(
    `no NATS server for the integration tests. Set NATS_URL, or install nats-server (apt-get install -y nats-server), or run a Docker engine.\n  ${errors.join("\n  ")}`,
  );
}
