/**
 * The examples run, so they cannot rot: each one is started as a user would (its own process,
 * the command docs/demo.md gives), must exit 0 and print what it promises, and docs/demo.md must
 * list them. (Their generated code is checked by codegen/fixtures.test.ts: regen covers examples/.)
 */
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeWithNats } from "../nats/helpers.js";

const ROOT = join(import.meta.dirname, "../..");

/** Runs `examples/<name>/main.ts` and resolves with its exit code and output. */
function runExample(name: string, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=meridian-source", "--import", "tsx", `examples/${name}/main.ts`], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`examples/${name} ran longer than ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The example folders (the cross-region demo has its own test in test/demo). */
const EXAMPLES = readdirSync(join(ROOT, "examples"), { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== "cross-region")
  .map((d) => d.name)
  .sort();

describe("examples", () => {
  it("examples - hello: a unary call over TCP", async () => {
    const run = await runExample("hello");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/server: listening on 127\.0\.0\.1:\d+/);
    expect(run.stdout).toContain("client: hello, Meridian (from here)");
    expect(run.stdout).toContain("client: served by region local");
    expect(run.stdout.trim().endsWith("done")).toBe(true);
  });

  it("examples - middleware: logging, an auth header and retries on both sides", async () => {
    const run = await runExample("middleware");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const lines = run.stdout.split("\n");
    // Without a token: refused once, on both sides, never retried.
    expect(lines.filter((l) => l.startsWith("server: GetStock -> UNAUTHENTICATED"))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith("client: GetStock") && l.includes("UNAUTHENTICATED"))).toHaveLength(1);
    // With a token: the server saw three attempts, the client one call.
    expect(lines.filter((l) => l.startsWith("server: GetStock -> UNAVAILABLE"))).toHaveLength(2);
    expect(lines.filter((l) => l.startsWith("server: GetStock -> ok"))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith("client: GetStock") && l.includes("-> ok"))).toHaveLength(1);
    expect(run.stdout).toContain("42 x umbrella in stock, asked by ada");
  });

  it("examples - streaming: server, client and bidi streams over TCP", async () => {
    const run = await runExample("streaming");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout.match(/^ {3}#\d+ [\d.]+ °C$/gm)).toHaveLength(5);
    expect(run.stdout).toContain("8 readings, mean 25.3 °C, max 33 °C");
    expect(run.stdout.match(/^ {3}alert for attic #\d+/gm)).toHaveLength(3);
  });

  it("examples - grpc-interop: a plain grpc-js client calls a Meridian server", async () => {
    const run = await runExample("grpc-interop");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("grpc-js client: Lisbon, served in eu-west");
    expect(run.stdout).toContain("2030-01-01  SUNNY  11..20 °C");
    expect(run.stdout).toContain("2030-01-03  RAINY  10.5..21 °C");
    expect(run.stdout).toContain('grpc-js client: an empty city -> status INVALID_ARGUMENT "city is required"');
    expect(run.stdout).toContain("server: GetForecast(Lisbon, 3 days), caller's region us-east");
    expect(run.stdout).toContain("Meridian client: Oslo, 2 days, first SUNNY on 1893456000 (a bigint)");
  });

  it("examples - profile-service: two regions, own database fenced by the primary epoch", async () => {
    const run = await runExample("profile-service");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("registry: 4 instances in fra and sg; primary fra, epoch 1");
    expect(run.stdout).toContain("1. sg writes alice = Alice (version 1): served in fra, epoch 1");
    expect(run.stdout).toContain("2. sg reads alice = Alice: served in sg");
    expect(run.stdout).toContain("3. the operator moves the primary to sg: epoch 2");
    expect(run.stdout).toMatch(/4\. fra writes alice = Alice Liddell \(version 2\): served in sg, epoch 2/);
    expect(run.stdout).toContain("5. a write admitted under epoch 1 that stalled past the move: FAILED_PRECONDITION: write refused: its fencing token (primary epoch 1) is older than epoch 2");
    expect(run.stdout).toContain("6. fra reads alice linearizably = Alice Liddell (version 2): served in sg, epoch 2");
    expect(run.stdout.trim().endsWith("done")).toBe(true);
  });

  it("examples - thrift: a generated Thrift service called as Kitex and as Apache Thrift call it", async () => {
    const run = await runExample("thrift");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    for (const client of ["kitex-style client", "apache-style client"]) {
      expect(run.stdout).toContain(`${client}: sku-1 has 3 in warehouse 2`);
      expect(run.stdout).toContain(`${client}: UnknownSku nope: no item nope`);
    }
    expect(run.stdout).toContain("apache-style client: restocked sku-2 to 2");
    expect(run.stdout).toContain("apache-style client: audits so far 2");
    expect(run.stdout.split("\n").filter((l) => l === "server: restock sku-2 by 1 from region us")).toHaveLength(2);
    expect(run.stdout.trim().endsWith("done")).toBe(true);
  });

  it("examples - docs/demo.md lists every example and how to run it", () => {
    const doc = readFileSync(join(ROOT, "docs/demo.md"), "utf8");
    for (const name of EXAMPLES) {
      expect(doc).toContain(`examples/${name}/main.ts`);
      expect(doc).toContain(`npm run example:${name}`);
    }
    expect(doc).toContain("npm run demo");
  });
});

describeWithNats("examples - nats", () => {
  it("examples - nats: request/reply across two regions through a gateway", async () => {
    const run = await runExample("nats");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/1\. instances in both regions: +MRDN 123\.45, served in eu-west/);
    expect(run.stdout).toMatch(/2\. eu-west's instance stopped: +MRDN 123\.45, served in us-east/);
    expect(run.stdout).toMatch(/3\. no instance anywhere: +UNAVAILABLE after [\d.]+ ms: no responders/);
  });
});
