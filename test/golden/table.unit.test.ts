import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CASES } from "./cases.ts";
import { ROWS } from "./rows.ts";
import { renderRows, renderTable } from "./table.ts";

const ROOT = join(import.meta.dirname, "..", "..");
/** "<kernel/QEMU function(s)> (docs/<page>.md)": at least one function in backticks, then the page. */
const CITE = /^.*`[^`]+`.* \((docs\/[a-z0-9-]+\.md)\)$/;

describe("golden table", () => {
  it("golden table - the README's SIGUSR1/SIGKILL table is the one rendered from the golden cases (npm run golden:table)", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    expect(readme).toContain(renderTable());
    expect(readme).toContain(renderRows());
  });

  it("golden table - every case cites kernel or QEMU functions and a docs/ page that exists", () => {
    for (const c of CASES) {
      const m = CITE.exec(c.cite);
      expect(m, `${c.id}: ${c.cite}`).not.toBeNull();
      expect(existsSync(join(ROOT, m![1]!)), `${c.id}: ${m![1]} does not exist`).toBe(true);
    }
    expect(new Set(CASES.map((c) => c.id)).size).toBe(CASES.length);
  });

  it("golden table - every golden row cites kernel or QEMU functions and docs/ pages that exist", () => {
    for (const r of ROWS) {
      expect(r.cite, r.id).toMatch(/`[^`]+`/);
      const pages = [...r.cite.matchAll(/docs\/[a-z0-9-]+\.md/g)].map((m) => m[0]);
      expect(pages.length, `${r.id}: no docs/ page in "${r.cite}"`).toBeGreaterThan(0);
      for (const page of pages) expect(existsSync(join(ROOT, page)), `${r.id}: ${page} does not exist`).toBe(true);
    }
  });
});
