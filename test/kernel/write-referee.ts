/**
 * `npm run referee`: runs the referee on a local stack (its own nats-server and services), prints the
 * table and writes it into docs/kernel-referee.md between the markers. Exit 2 when this machine
 * cannot run the kernel half (it says why), 1 when the model and the kernel disagree.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApiClient, withStack } from "../../cli/src/index.ts";
import { kernelSkipReason } from "./referee-kernel.ts";
import { referee } from "./referee.ts";
import { withTable } from "./referee-table.ts";

const DOC = join(import.meta.dirname, "..", "..", "docs", "kernel-referee.md");

const why = await kernelSkipReason();
if (why) {
  process.stderr.write(`referee: cannot run the kernel half here: ${why}\n`);
  process.exit(2);
}
const code = await withStack({ logLevel: "error" }, async (stack) => {
  const r = await referee(new ApiClient(stack.apiUrl));
  process.stdout.write(`${r.table}\n`);
  writeFileSync(DOC, withTable(readFileSync(DOC, "utf8"), r.table));
  process.stdout.write(`updated ${DOC}\n`);
  return r.rows.some((x) => x.disagree.length) ? 1 : 0;
});
process.exit(code);
