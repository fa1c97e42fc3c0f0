import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseScenarioText } from "@faultline/shared";

const DIR = join(import.meta.dirname, "..", "..", "scenarios");
const README = readFileSync(join(import.meta.dirname, "..", "..", "README.md"), "utf8");

describe("scenario files", () => {
  for (const f of readdirSync(DIR).filter((x) => x.endsWith(".yaml"))) {
    it(`scenario files - ${f} parses, names itself after its file, and has a row in the README`, () => {
      const s = parseScenarioText(readFileSync(join(DIR, f), "utf8"));
      expect(s.name).toBe(f.replace(/\.yaml$/, ""));
      expect(README).toContain(`| \`${f}\` |`);
    });
  }
});
