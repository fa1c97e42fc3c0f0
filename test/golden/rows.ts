/**
 * The golden suite's second part: one case per kernel or QEMU fact that changes an outcome, each with
 * its own scenario and a check derived from the cited source (never from what Faultline prints).
 * `test/golden-rows.int.test.ts` runs them on the real services; the README's second table is
 * rendered from them (table.ts). Cases live by area, one file each.
 */
import type { Result } from "@faultline/shared";
import { MMU_ROWS } from "./rows-mmu.ts";
import { PAGER_ROWS } from "./rows-pager.ts";
import { SIGNAL_ROWS } from "./rows-signals.ts";

export interface RowCase {
  /** unique, e.g. "coalesce-sigusr1" */
  id: string;
  /** the situation, as the README table names it */
  situation: string;
  /** what the kernel or QEMU does there: the expectation, in words */
  expected: string;
  /** the kernel or QEMU function(s) the expectation comes from, and the docs/ page that explains it */
  cite: string;
  /** the scenario document (parseScenario input) */
  scenario: Record<string, unknown>;
  /** throws (or fails an expect) when the result disagrees with `expected` */
  check: (r: Result) => void;
}

export const ROWS: RowCase[] = [...SIGNAL_ROWS, ...MMU_ROWS, ...PAGER_ROWS];
