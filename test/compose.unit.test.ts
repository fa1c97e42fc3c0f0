/**
 * docker-compose.yml and the Dockerfile, checked against the code's own configuration. No Docker
 * engine runs on the dev machines, so this parse test is what keeps the compose file honest: the
 * service list, entry points and environment names all come from the code, not from this file.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { REPO_ROOT, serviceCommand } from "../cli/src/stack.ts";
import { CONFIG_ENV, SERVICES, loadConfig, subjects, type ServiceName } from "@faultline/shared";

interface ComposeHealthcheck {
  test?: string | string[];
  disable?: boolean;
}
interface ComposeService {
  image?: string;
  build?: string | { context?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Array<string | number | { target?: number; published?: number | string }>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: ComposeHealthcheck;
  restart?: string;
}
interface ComposeFile {
  services?: Record<string, ComposeService>;
}

const COMPOSE_PATH = join(REPO_ROOT, "docker-compose.yml");
const DOCKERFILE_PATH = join(REPO_ROOT, "Dockerfile");
const NATS_SERVICE = "nats";
const NATS_CLIENT_PORT_DEFAULT = 4222;

function loadCompose(): Record<string, ComposeService> {
  const doc = parse(readFileSync(COMPOSE_PATH, "utf8")) as ComposeFile | null;
  if (!doc?.services || typeof doc.services !== "object") throw new Error("docker-compose.yml has no services map");
  return doc.services;
}
const compose = loadCompose();

function service(name: string): ComposeService {
  const s = compose[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
}

/** The service's environment as the container sees it: every value a string. */
function envOf(name: string): Record<string, string> {
  const e = service(name).environment ?? {};
  const pairs: Array<[string, string]> = Array.isArray(e)
    ? e.map((kv) => {
        const i = kv.indexOf("=");
        return i < 0 ? [kv, ""] : [kv.slice(0, i), kv.slice(i + 1)];
      })
    : Object.entries(e).map(([k, v]) => [k, v === null ? "" : String(v)]);
  return Object.fromEntries(pairs);
}

function healthTest(h: ComposeHealthcheck | undefined): string[] {
  if (!h || h.disable || h.test === undefined) return [];
  return typeof h.test === "string" ? ["CMD-SHELL", h.test] : h.test;
}

/** A health check that cannot fail is worse than none. */
function isTrivial(test: string[]): boolean {
  const body = test.slice(1).join(" ").trim();
  return test[0] === "NONE" || /^(true|:|exit 0|echo\b.*|sleep \d+)$/.test(body) || body === "";
}

/** Container port of a compose `ports` entry ("8080", "8080:8080", "127.0.0.1:8080:8080/tcp", long form). */
function containerPort(p: string | number | { target?: number }): number {
  if (typeof p === "number") return p;
  if (typeof p === "object") return Number(p.target);
  const parts = p.replace(/\/(tcp|udp)$/, "").split(":");
  return Number(parts[parts.length - 1]);
}

/** The client port the nats service listens on, from `-p`/`--port` in its command (else the default). */
function natsClientPort(): number {
  const cmd = service(NATS_SERVICE).command ?? [];
  const args = typeof cmd === "string" ? cmd.split(/\s+/) : cmd;
  const i = args.findIndex((a) => a === "-p" || a === "--port" || a === "-port");
  return i >= 0 ? Number(args[i + 1]) : NATS_CLIENT_PORT_DEFAULT;
}

/** Workspace directories, from the root package.json (a trailing `/*` is expanded). */
function workspaceDirs(): string[] {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { workspaces?: string[] };
  return (pkg.workspaces ?? []).flatMap((w) => {
    if (!w.endsWith("/*")) return [w];
    const parent = w.slice(0, -2);
    return readdirSync(join(REPO_ROOT, parent))
      .filter((d) => existsSync(join(REPO_ROOT, parent, d, "package.json")))
      .map((d) => `${parent}/${d}`);
  });
}

interface DockerInstr {
  op: string;
  args: string[];
}
function dockerfile(): DockerInstr[] {
  const text = readFileSync(DOCKERFILE_PATH, "utf8").replace(/\\\r?\n/g, " ");
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [op = "", ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest };
    });
}
/** Sources of a COPY from the build context (flags dropped; `COPY --from=...` excluded). */
function copySources(i: DockerInstr): string[] {
  if (i.op !== "COPY" && i.op !== "ADD") return [];
  if (i.args.some((a) => a.startsWith("--from"))) return [];
  const args = i.args.filter((a) => !a.startsWith("--"));
  return args.slice(0, -1).map((a) => a.replace(/^\.\//, "").replace(/\/$/, ""));
}

const FAULTLINE: readonly ServiceName[] = SERVICES;

describe("compose file", () => {
  it("compose - every service in SERVICES has a compose service, and nothing else but nats", () => {
    expect(SERVICES.length).toBeGreaterThan(0);
    for (const svc of SERVICES) expect(Object.keys(compose), `compose service for ${svc}`).toContain(svc);
    expect(Object.keys(compose).sort()).toEqual([...SERVICES, NATS_SERVICE].sort());
  });

  it("compose - every faultline service is built from the one image", () => {
    for (const svc of FAULTLINE) {
      const s = service(svc);
      const ctx = typeof s.build === "string" ? s.build : s.build?.context;
      expect(ctx, `${svc} build context`).toBe(".");
      expect(s.image, `${svc} image`).toBe("faultline:local");
    }
  });

  it("compose - each service runs the entry point serviceCommand() runs, relative to the repo", () => {
    for (const svc of FAULTLINE) {
      const local = serviceCommand(svc);
      const abs = local.filter((a) => a.startsWith(REPO_ROOT + sep));
      // the CLI's command names the entry point absolutely; the image's WORKDIR is the repo root
      expect(abs, `absolute paths in serviceCommand(${svc})`).toHaveLength(1);
      const expected = ["node", ...local.map((a) => (a.startsWith(REPO_ROOT + sep) ? relative(REPO_ROOT, a).split(sep).join("/") : a))];
      expect(service(svc).command, `${svc} command`).toEqual(expected);
      const entry = expected[expected.length - 1]!;
      expect(entry).toBe(`services/${svc}/src/main.ts`);
      expect(existsSync(join(REPO_ROOT, entry)), `${entry} exists`).toBe(true);
    }
  });

  it("compose - every environment key is one of CONFIG_ENV", () => {
    for (const svc of FAULTLINE) {
      const keys = Object.keys(envOf(svc));
      expect(keys.length, `${svc} sets some environment`).toBeGreaterThan(0);
      for (const k of keys) expect(CONFIG_ENV as readonly string[], `${svc}: ${k}`).toContain(k);
    }
  });

  it("compose - loadConfig accepts each service's environment and reads back its values", () => {
    // the check below can fail: loadConfig rejects a bad value
    expect(() => loadConfig({ FAULTLINE_LOG_LEVEL: "loud" })).toThrow();
    for (const svc of FAULTLINE) {
      const env = envOf(svc);
      const config = loadConfig(env);
      for (const [k, v] of Object.entries(env)) {
        expect(String(config[k as keyof typeof config]), `${svc}: ${k}`).toBe(v);
      }
      expect(config.FAULTLINE_INSTANCE, `${svc} instance name`).toBe(svc);
    }
  });

  it("compose - NATS_URL points at the nats service's client port", () => {
    const port = natsClientPort();
    for (const svc of FAULTLINE) {
      const raw = envOf(svc).NATS_URL;
      expect(raw, `${svc} sets NATS_URL`).toBeDefined();
      for (const server of raw!.split(",")) {
        const u = new URL(server);
        expect(u.protocol, `${svc} NATS_URL scheme`).toBe("nats:");
        expect(u.hostname, `${svc} NATS_URL host`).toBe(NATS_SERVICE);
        expect(Number(u.port || NATS_CLIENT_PORT_DEFAULT), `${svc} NATS_URL port`).toBe(port);
      }
    }
  });

  it("compose - the api publishes its FAULTLINE_API_PORT on all interfaces and its healthcheck hits /healthz there", () => {
    const config = loadConfig(envOf("api"));
    const api = service("api");
    expect((api.ports ?? []).map(containerPort), "api container ports").toContain(config.FAULTLINE_API_PORT);
    // a published port is unreachable if the API listens on loopback only
    expect(config.FAULTLINE_API_HOST).toBe("0.0.0.0");
    // the code's default is loopback, so the compose file must set it itself
    expect(loadConfig({}).FAULTLINE_API_HOST, "default API host").toBe("127.0.0.1");
    expect(envOf("api").FAULTLINE_API_HOST, "compose sets FAULTLINE_API_HOST for the api").toBe("0.0.0.0");

    const test = healthTest(api.healthcheck);
    expect(isTrivial(test), `api healthcheck ${JSON.stringify(test)}`).toBe(false);
    const m = /https?:\/\/(?:127\.0\.0\.1|localhost):(\d+)\/healthz\b/.exec(test.join(" "));
    expect(m, "api healthcheck URL").not.toBeNull();
    expect(Number(m![1])).toBe(config.FAULTLINE_API_PORT);
    // the route it hits is the api's
    expect(readFileSync(join(REPO_ROOT, "services", "api", "src", "app.ts"), "utf8")).toMatch(/app\.get\(\s*["']\/healthz["']/);
  });

  it("compose - nats has a real healthcheck and every faultline service waits for nats to be healthy", () => {
    const natsTest = healthTest(service(NATS_SERVICE).healthcheck);
    expect(natsTest.length, "nats healthcheck").toBeGreaterThan(0);
    expect(isTrivial(natsTest), `nats healthcheck ${JSON.stringify(natsTest)}`).toBe(false);
    for (const svc of FAULTLINE) {
      const d = service(svc).depends_on;
      expect(d && !Array.isArray(d) ? d[NATS_SERVICE]?.condition : undefined, `${svc} depends_on nats`).toBe("service_healthy");
    }
  });

  it("compose - no faultline healthcheck is trivial, and the others ping their own NATS subject", () => {
    for (const svc of FAULTLINE) {
      const test = healthTest(service(svc).healthcheck);
      if (!test.length) continue;
      expect(isTrivial(test), `${svc} healthcheck ${JSON.stringify(test)}`).toBe(false);
      if (svc !== "api") expect(test.join(" "), `${svc} healthcheck subject`).toContain(`'${subjects.ping(svc)}'`);
    }
  });
});

describe("Dockerfile", () => {
  it("compose - the Dockerfile copies every workspace's package.json before npm ci, then its sources", () => {
    expect(existsSync(DOCKERFILE_PATH), "Dockerfile exists").toBe(true);
    const workspaces = workspaceDirs();
    // the workspaces are exactly the shared library, the CLI and one per service
    expect(workspaces.sort()).toEqual(["cli", "shared", ...SERVICES.map((s) => `services/${s}`)].sort());

    const instrs = dockerfile();
    expect(instrs[0]?.op).toBe("FROM");
    const ci = instrs.findIndex((i) => i.op === "RUN" && /\bnpm ci\b/.test(i.args.join(" ")));
    expect(ci, "RUN npm ci").toBeGreaterThan(0);
    const before = instrs.slice(0, ci).flatMap(copySources);
    const all = instrs.flatMap(copySources);

    for (const f of ["package.json", "package-lock.json"]) expect(before, `COPY ${f} before npm ci`).toContain(f);
    for (const w of workspaces) {
      expect(before.some((s) => s === `${w}/package.json` || s === w), `COPY ${w}/package.json before npm ci`).toBe(true);
      expect(all.some((s) => s === `${w}/src` || s === w), `COPY ${w}/src`).toBe(true);
    }
    expect(all.some((s) => s === "scenarios"), "COPY scenarios").toBe(true);
    // every source the build copies is in the repo (a glob counts if its directory is)
    for (const s of all) {
      const fixed = s.includes("*") ? s.slice(0, s.indexOf("*")).replace(/\/[^/]*$/, "") : s;
      expect(existsSync(join(REPO_ROOT, fixed)), `COPY source ${s} exists`).toBe(true);
    }
    // the bin that the CLI's package.json links must be in place when npm ci links it
    const cliPkg = JSON.parse(readFileSync(join(REPO_ROOT, "cli", "package.json"), "utf8")) as { bin?: Record<string, string> };
    for (const bin of Object.values(cliPkg.bin ?? {})) {
      const path = `cli/${bin.replace(/^\.\//, "")}`;
      expect(before.some((s) => path === s || path.startsWith(`${s}/`)), `${path} copied before npm ci`).toBe(true);
    }
  });

  it("compose - the Dockerfile's CMD is one of the service entry points and .dockerignore keeps node_modules out", () => {
    const cmd = dockerfile().filter((i) => i.op === "CMD").at(-1);
    expect(cmd, "CMD").toBeDefined();
    const argv = JSON.parse(cmd!.args.join(" ")) as string[];
    expect(FAULTLINE.map((svc) => service(svc).command)).toContainEqual(argv);
    const ignore = readFileSync(join(REPO_ROOT, ".dockerignore"), "utf8").split(/\r?\n/).map((l) => l.trim());
    expect(ignore).toContain("node_modules");
  });
});
