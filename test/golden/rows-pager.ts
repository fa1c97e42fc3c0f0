/** Golden rows (see rows.ts) for the pager side. */
import type { RowCase } from "./rows.ts";

export const PAGER_ROWS: RowCase[] = [];
