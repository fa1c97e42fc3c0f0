/** `npm run golden:table`: rewrites the README's golden table from test/golden/cases.ts. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withTable } from "./table.ts";

const file = join(import.meta.dirname, "..", "..", "README.md");
writeFileSync(file, withTable(readFileSync(file, "utf8")));
process.stdout.write(`updated ${file}\n`);
