import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadScenario } from "./commands/run.ts";

describe("faultline run scenario loading", () => {
  it("cli - pager.latency.file is read relative to the scenario file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "faultline-samples-"));
    try {
      await mkdir(join(dir, "scenarios", "data"), { recursive: true });
      await writeFile(join(dir, "scenarios", "data", "lat.txt"), "100\n250\n");
      const file = join(dir, "scenarios", "s.yaml");
      await writeFile(file, "name: s\npager:\n  latency: { dist: empirical, file: data/lat.txt }\n");
      const s = await loadScenario(file);
      expect(s.pager.latency).toEqual({ dist: "empirical", samplesUs: [100, 250] });
      await writeFile(file, "name: s\npager:\n  latency: { dist: empirical, file: missing.txt }\n");
      await expect(loadScenario(file)).rejects.toThrow(/\/pager\/latency\/file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
