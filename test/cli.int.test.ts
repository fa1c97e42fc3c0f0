/** The `faultline` command as a user runs it: a child process, on the suite's NATS (`--nats`). */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import type { Result } from "@faultline/shared";

const BIN = join(import.meta.dirname, "..", "cli", "bin", "faultline.js");
const pexec = promisify(execFile);

async function faultline(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await pexec(process.execPath, [BIN, ...args], { cwd: join(import.meta.dirname, ".."), env: { ...process.env, CI: "true" }, maxBuffer: 32 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe("cli", () => {
  it("cli - run --json prints only the result JSON on stdout and exits 0", async () => {
    const r = await faultline("run", "scenarios/postcopy-stall-sigkill.yaml", "--json", "--nats", inject("natsUrl"));
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as Result;
    expect(result.scenario).toBe("postcopy-stall-sigkill");
    expect(result.vcpus.every((v) => v.state === "killed")).toBe(true);
  });

  it("cli - run prints a readable summary; --profile overrides the scenario's profile", async () => {
    const r = await faultline("run", "scenarios/postcopy-stall-sigusr1-6.2.yaml", "--profile", "pre-6.2", "--nats", inject("natsUrl"));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/profile pre-6\.2/);
    // planned at 400 ms; sent at or just after it (never before: RunClock.at)
    expect(r.stdout).toMatch(/SIGUSR1 sent at 40\d ms → KVM_EXIT_INTR \(pre-entry-check\)/);
    expect(r.stdout).toMatch(/pause_all_vcpus: requested 4\d\d ms, completed 2[01]\d\d ms/);
    // demand_paging_test's own lines, with its format strings
    expect(r.stdout).toMatch(/^Total guest execution time:\t\d+\.\d{9}s$/m);
    expect(r.stdout).toMatch(/^Per-vcpu demand paging rate:\t\d+\.\d{6} pgs\/sec\/vcpu$/m);
    expect(r.stdout).toMatch(/^Overall demand paging rate:\t\d+\.\d{6} pgs\/sec$/m);
  });

  it("cli - an invalid scenario exits 2 naming the field, before anything starts", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fl-cli-"));
    const file = join(dir, "bad.yaml");
    await writeFile(file, "name: bad\nvm: { vcpus: 2 }\nsignals: [ { atMs: 10, vcpus: 5, signal: SIGUSR1 } ]\n");
    const r = await faultline("run", file, "--json");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/\/signals\/0\/vcpus/);
    const missing = await faultline("run", join(dir, "nope.yaml"));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no such file/);
  });

  it("cli - usage errors exit 2", async () => {
    expect((await faultline("frobnicate")).code).toBe(2);
    expect((await faultline("run")).code).toBe(2);
  });

  it("cli - a bad flag value is one line on stderr and exit 2, before anything starts", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["up", "--port", "http"], /--port must be an integer from 0 to 65535, got "http"/],
      [["up", "--port", "65536"], /--port must be an integer/],
      [["demo", "--ready-timeout", "soon"], /--ready-timeout must be an integer/],
      [["run", "scenarios/postcopy-stall-sigusr1-6.2.yaml", "--profile", "5.10"], /--profile must be one of pre-6\.2, 6\.2, 6\.13/],
      [["run", "scenarios/postcopy-stall-sigusr1-6.2.yaml", "--log-level", "loud"], /--log-level must be one of fatal/],
    ];
    for (const [args, re] of cases) {
      const r = await faultline(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  });

  it("cli - up --nats pointing at nothing fails with one line within the ready timeout", async () => {
    const r = await faultline("up", "--port", "0", "--nats", "nats://127.0.0.1:1", "--ready-timeout", "1500");
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^faultline: FL_ERR_NATS_UNREACHABLE: NATS at nats:\/\/127\.0\.0\.1:1 unreachable for 1500 ms/);
  });

  it("cli - up on a port already taken fails at start-up naming the api, without restarting it", async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const port = String((busy.address() as AddressInfo).port);
    try {
      const r = await faultline("up", "--port", port, "--nats", inject("natsUrl"), "--log-level", "fatal");
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n").at(-1)).toMatch(/^faultline: FL_ERR_STACK_START: service api exited \(exit code 1\) during start-up$/);
      expect(r.stderr).not.toMatch(/restart \d in/);
    } finally {
      busy.close();
    }
  });

  it("cli - demo runs pre-6.2 and 6.2 side by side", async () => {
    const r = await faultline("demo", "--nats", inject("natsUrl"));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/profile pre-6\.2\s+profile 6\.2/);
    expect(r.stdout).toMatch(/KVM_EXIT_INTR via pre-entry-check\s+KVM_EXIT_INTR via gup-eintr/);
  });
});
