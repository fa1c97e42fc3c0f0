/** Golden rows (see rows.ts) for the mmu side. */
import type { RowCase } from "./rows.ts";

export const MMU_ROWS: RowCase[] = [];
