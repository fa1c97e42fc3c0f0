/** Golden rows (see rows.ts) for the signals side. */
import type { RowCase } from "./rows.ts";

export const SIGNAL_ROWS: RowCase[] = [];
