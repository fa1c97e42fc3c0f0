/**
 * The whole stack in one process on a MemoryBus: the four service definitions hosted with
 * `hostService` (one instance each, the same lifecycle, leases and heartbeats as the processes) and
 * the api's RunManager on a memory run store. No nats-server, no child processes, no HTTP.
 */
import { MemoryBus, createLogger, hostService, loadConfig, type HostedService, type Result, type Scenario, type ServiceDefinition, type VmState } from "@faultline/shared";
import { vcpuService } from "../../services/vcpu/src/index.ts";
import { mmuService } from "../../services/mmu/src/index.ts";
import { pagerService } from "../../services/pager/src/index.ts";
import { signalsService } from "../../services/signals/src/index.ts";
import { RunManager, type Run } from "../../services/api/src/index.ts";
import { MemoryRunStore } from "../../services/api/src/store-memory.ts";

export const MEMORY_SERVICES = ["vcpu", "mmu", "pager", "signals"] as const;
export type MemoryServiceName = (typeof MEMORY_SERVICES)[number];

export interface MemoryStackOptions {
  /** a run is aborted when an owner is silent this long. @default 3000 */
  livenessMs?: number;
  /** @default 5000 */
  leaseMs?: number;
  /** @default 5000 */
  rpcTimeoutMs?: number;
  /** accesses all runs in progress may hold at once. @default FAULTLINE_MAX_ACCESSES */
  maxActiveAccesses?: number;
}

export interface MemoryStack {
  bus: MemoryBus;
  runs: RunManager;
  /** the hosted service instances, by service */
  services: Record<MemoryServiceName, HostedService>;
  /** instance id of each hosted service */
  instances: Record<MemoryServiceName, string>;
  /** starts a run and waits for its end */
  run: (s: Scenario) => Promise<Run>;
  stop: () => Promise<void>;
}

export async function startMemoryStack(o: MemoryStackOptions = {}): Promise<MemoryStack> {
  const bus = new MemoryBus();
  const base = loadConfig({ FAULTLINE_LOG_LEVEL: process.env.FAULTLINE_TEST_LOG_LEVEL ?? "error" });
  const tag = Math.random().toString(36).slice(2, 8);
  const config = (svc: string) => ({
    ...base,
    FAULTLINE_INSTANCE: `${svc}-mem-${tag}`,
    ...(o.rpcTimeoutMs !== undefined ? { FAULTLINE_RPC_TIMEOUT_MS: o.rpcTimeoutMs } : {}),
  });
  const instances = {} as Record<MemoryServiceName, string>;
  const host = <V extends VmState>(name: MemoryServiceName, def: ServiceDefinition<V>): HostedService => {
    const c = config(name);
    instances[name] = c.FAULTLINE_INSTANCE;
    return hostService(def, bus, createLogger(name, c), c);
  };
  const services: Record<MemoryServiceName, HostedService> = {
    vcpu: host("vcpu", vcpuService), mmu: host("mmu", mmuService), pager: host("pager", pagerService), signals: host("signals", signalsService),
  };
  const apiConfig = config("api");
  const runs = new RunManager(bus, createLogger("api", apiConfig), {
    instance: apiConfig.FAULTLINE_INSTANCE,
    rpcTimeoutMs: o.rpcTimeoutMs ?? base.FAULTLINE_RPC_TIMEOUT_MS,
    livenessMs: o.livenessMs ?? base.FAULTLINE_LIVENESS_MS,
    leaseMs: o.leaseMs ?? base.FAULTLINE_LEASE_MS,
    store: new MemoryRunStore(100),
    ...(o.maxActiveAccesses !== undefined ? { maxActiveAccesses: o.maxActiveAccesses } : {}),
  });
  await runs.recover();
  let stopped = false;
  return {
    bus, runs, services, instances,
    run: async (s) => {
      const r = runs.start(s);
      await r.done;
      return runs.get(r.id);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await runs.shutdown();
      runs.close();
      for (const svc of Object.values(services)) await svc.stop();
      await runs.store.close();
      await bus.close();
    },
  };
}

/** The run's result; fails when the run did not complete. */
export function completed(r: Run): Result {
  if (r.status !== "completed" || !r.result) throw new Error(`run ${r.id} ${r.status}: ${JSON.stringify(r.error)}`);
  return r.result;
}
