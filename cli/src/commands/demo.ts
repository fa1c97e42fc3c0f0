/**
 * `faultline demo`: the seed comparison. The same paused-postcopy scenario on a pre-6.2 kernel and
 * on 6.2, run at once as two VMs on one stack (their subjects are namespaced per VM), side by side.
 */
import { join } from "node:path";
import { withStack } from "../lifecycle.ts";
import { REPO_ROOT } from "../stack.ts";
import { formatSideBySide } from "../summary.ts";
import { loadScenario, ONE_SHOT, runOnStack } from "./run.ts";

export async function demoCommand(o: { json: boolean; natsUrl?: string; logLevel?: string; readyTimeoutMs?: number }): Promise<number> {
  const file = join(REPO_ROOT, "scenarios", "postcopy-stall-sigusr1-6.2.yaml");
  const scenarios = await Promise.all(["pre-6.2", "6.2"].map((p) => loadScenario(file, p)));
  const stackOpts = { ...(o.natsUrl ? { natsUrl: o.natsUrl } : {}), logLevel: o.logLevel ?? "warn", readyTimeoutMs: o.readyTimeoutMs ?? 30_000, supervisor: ONE_SHOT };
  return withStack(stackOpts, async (stack, { guard, signal }) => {
    const runs = await guard(runOnStack(stack, scenarios, o.json, signal));
    const [a, b] = runs;
    if (!a?.result || !b?.result) {
      process.stderr.write(`demo failed: ${runs.map((r) => r.error?.message ?? (r.status !== "completed" ? r.status : undefined)).filter(Boolean).join("; ")}\n`);
      return 1;
    }
    if (o.json) {
      process.stdout.write(JSON.stringify([a.result, b.result], null, 2) + "\n");
      return 0;
    }
    process.stdout.write(
      [
        "Postcopy paused (source silent 100-2100 ms); at 400 ms the VMM stops the VM (SIGUSR1 kicks).",
        "",
        formatSideBySide(a.result, b.result),
        "",
        "pre-6.2: the vCPUs sleep TASK_KILLABLE in handle_userfault; SIGUSR1 waits for the page.",
        "6.2:     FOLL_INTERRUPTIBLE makes them sleep TASK_INTERRUPTIBLE; they leave KVM_RUN with KVM_EXIT_INTR at once.",
      ].join("\n") + "\n",
    );
    return 0;
  });
}
