/** `node --import tsx test/write-errors-table.ts`: rewrites the README's Errors table from the catalogue. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withErrorTable } from "./errors-table.ts";

const file = join(import.meta.dirname, "..", "README.md");
writeFileSync(file, withErrorTable(readFileSync(file, "utf8")));
process.stdout.write(`updated ${file}\n`);
