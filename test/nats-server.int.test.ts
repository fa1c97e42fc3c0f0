/**
 * The CLI's nats-server launcher: JetStream on by default, and a restart on the same port and store.
 * JetStream is driven through its request API ($JS.API.*) with the core client.
 */
import { describe, expect, it } from "vitest";
import { startNatsServer, type NatsServer } from "../cli/src/nats-server.ts";
import { closeNats, connectNats } from "@faultline/shared";

type Conn = Awaited<ReturnType<typeof connectNats>>;
async function js<T>(nc: Conn, subject: string, body: unknown): Promise<T> {
  const m = await nc.request(subject, JSON.stringify(body), { timeout: 5000 });
  const r = m.json<T & { error?: { description: string } }>();
  if (r.error) throw new Error(`${subject}: ${r.error.description}`);
  return r;
}

describe("nats-server", () => {
  it("nats-server - JetStream is on; killed with SIGKILL, a new server on the same port and store dir keeps the stream", async () => {
    const a = await startNatsServer();
    let b: NatsServer | null = null;
    try {
      expect(a.storeDir).toBeTruthy();
      const varz = (await (await fetch(`${a.monitorUrl}/varz`)).json()) as { jetstream?: { config?: { store_dir?: string } } };
      expect(varz.jetstream?.config?.store_dir).toContain(a.storeDir!);

      const nc = await connectNats({ servers: a.url, name: "fl-test-js" });
      await js(nc, "$JS.API.STREAM.CREATE.FLTEST", { name: "FLTEST", subjects: ["fltest.>"], storage: "file" });
      // a JetStream publish is acknowledged with the stream's sequence
      expect((await js<{ seq: number }>(nc, "fltest.one", "kept")).seq).toBe(1);
      await closeNats(nc);

      await a.kill("SIGKILL");
      expect(() => process.kill(a.pid, 0)).toThrow();
      b = await startNatsServer({ port: a.port, storeDir: a.storeDir! });
      expect(b.url).toBe(a.url);
      const nc2 = await connectNats({ servers: b.url, name: "fl-test-js2" });
      const info = await js<{ state: { messages: number } }>(nc2, "$JS.API.STREAM.INFO.FLTEST", {});
      expect(info.state.messages).toBe(1);
      await closeNats(nc2);
    } finally {
      await b?.stop();
      await a.stop();
    }
  });

  it("nats-server - without JetStream there is no store dir", async () => {
    const s = await startNatsServer({ jetstream: false });
    try {
      expect(s.storeDir).toBeNull();
      const varz = (await (await fetch(`${s.monitorUrl}/varz`)).json()) as { jetstream?: { config?: unknown } };
      expect(varz.jetstream?.config).toBeUndefined();
    } finally {
      await s.stop();
    }
  });
});
