/**
 * The golden suite's second part: each row of test/golden/rows.ts on the real services, one stack for
 * the file. A row's check is derived from its cited kernel or QEMU source.
 */
import { describe, it } from "vitest";
import { parseScenario } from "@faultline/shared";
import { ROWS } from "./golden/rows.ts";
import { runToEnd, useTestStack } from "./helpers/stack.ts";

const t = useTestStack();

describe("golden rows", () => {
  for (const c of ROWS) {
    it(`golden row ${c.id} - ${c.expected} (${c.cite})`, async () => {
      const r = await runToEnd(t.api, parseScenario({ name: `golden-row-${c.id}`, ...c.scenario }));
      c.check(r);
    });
  }
});
