/**
 * A raw NATS responder, run as its own OS process by raw.ts (`node --import tsx echo-worker.ts`).
 *
 *   echo-worker.ts <natsUrl> <subject>            leaf: answers every request with its payload
 *   echo-worker.ts <natsUrl> <subject> <next>     relay: requests <next> with the payload, then answers
 *                                                 with <next>'s reply (proc A of a 2-hop chain)
 *
 * No JSON parsing, no validation, no headers: the cheapest possible request/reply hop, so the chain
 * is a ceiling for what the vcpu → mmu → pager path could reach. Prints "ready" on stdout once its
 * subscription is registered on the server; exits when its stdin closes (the parent went away, even
 * by SIGKILL) or on SIGTERM/SIGINT.
 */
import { connect, type Msg } from "@nats-io/transport-node";

const [url, subject, next] = process.argv.slice(2);
if (!url || !subject) {
  process.stderr.write("usage: echo-worker.ts <natsUrl> <subject> [<next-subject>]\n");
  process.exit(2);
}

const nc = await connect({ servers: url, name: `bench-echo-${subject}`, noAsyncTraces: true, maxReconnectAttempts: 0 }).catch((err: unknown) => {
  process.stderr.write(`echo-worker ${subject}: cannot connect to ${url}: ${String(err)}\n`);
  process.exit(1);
});
let failures = 0;

function answer(msg: Msg): void {
  if (!next) {
    msg.respond(msg.data);
    return;
  }
  nc.request(next, msg.data, { timeout: 10_000 }).then(
    (r) => msg.respond(r.data),
    (err: unknown) => {
      if (failures++ < 5) process.stderr.write(`echo-worker ${subject} → ${next}: ${String(err)}\n`);
    },
  );
}

nc.subscribe(subject, {
  callback: (err, msg) => {
    if (err) process.stderr.write(`echo-worker ${subject}: ${String(err)}\n`);
    else answer(msg);
  },
});
await nc.flush();
process.stdout.write("ready\n");

let closing = false;
async function shutdown(code: number): Promise<void> {
  if (closing) return;
  closing = true;
  const t = setTimeout(() => process.exit(code), 1000);
  t.unref();
  await nc.close().catch(() => undefined);
  process.exit(code);
}

process.stdin.on("end", () => void shutdown(0));
process.stdin.on("error", () => void shutdown(0));
process.stdin.resume();
process.on("SIGTERM", () => void shutdown(0));
process.on("SIGINT", () => void shutdown(0));
void nc.closed().then((err) => {
  if (!closing) {
    process.stderr.write(`echo-worker ${subject}: connection closed${err ? `: ${String(err)}` : ""}\n`);
    process.exit(1);
  }
});
