import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CASES } from "./cases.ts";
import { renderTable } from "./table.ts";

describe("golden table", () => {
  it("golden table - the README's SIGUSR1/SIGKILL table is the one rendered from the golden cases (npm run golden:table)", () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "..", "README.md"), "utf8");
    expect(readme).toContain(renderTable());
  });

  it("golden table - every case cites kernel-reference or model.md", () => {
    for (const c of CASES) expect(c.cite).toMatch(/kernel-reference §|model\.md §/);
    expect(new Set(CASES.map((c) => c.id)).size).toBe(CASES.length);
  });
});
