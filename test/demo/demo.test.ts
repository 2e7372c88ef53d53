/**
 * The cross-region demo as a scenario test: a short run (--duration 15) on the embedded registry
 * (over TCP, over gRPC and over NATS) and on etcd must exit 0 with every invariant held, run with
 * mutual TLS on every link unless --plaintext (and the embedded registry refuse a region's own
 * primary move: PERMISSION_DENIED), show the story it tells (fallback reads and
 * failing writes in the cut-off region, the primary moving with an epoch bump, fenced writes
 * refused, a write admitted by a primary frozen past a move refused by the store), print plain lines when its output is not a terminal, and leave no process behind,
 * also when interrupted.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { describeWithEtcd } from "../support/etcd-gate.js";
import { describeWithBinary } from "../support/gate.js";
import { findNatsServer, NATS_MISSING } from "../support/nats-cluster.js";

const DEMO = "examples/cross-region/demo.ts";
const dir = mkdtempSync(join(tmpdir(), "meridian-demo-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Processes the demo had started, seen while it ran. */
  children: number[];
}

/** Every descendant of a process (ps), for checking nothing outlives the demo. */
function descendants(pid: number): number[] {
  const ps = spawnSync("ps", ["-e", "-o", "pid=,ppid="], { encoding: "utf8" });
  const parent = new Map<number, number>();
  for (const line of ps.stdout.split("\n")) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    if (p && pp) parent.set(p, pp);
  }
  const out: number[] = [];
  const walk = (of: number) => {
    for (const [p, pp] of parent) if (pp === of && !out.includes(p)) (out.push(p), walk(p));
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The processes among `pids` still alive after a short grace: helpers such as tsx's esbuild
 * service and the etcd watchdog's `sleep` go away within a second of their parent.
 */
async function survivors(pids: readonly number[]): Promise<number[]> {
  for (let i = 0; i < 30 && pids.some(alive); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  return pids.filter(alive);
}

/**
 * Runs the demo with a pipe as stdout (never a terminal). `interruptWhen` sends SIGINT once
 * stdout contains that text. Fails the test if the demo runs longer than `timeoutMs`.
 */
function runDemo(args: string[], options: { timeoutMs: number; interruptWhen?: string }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=meridian-source", "--import", "tsx", DEMO, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: undefined },
    });
    let stdout = "";
    let stderr = "";
    const children = new Set<number>();
    let interrupted = false;
    const sampler = setInterval(() => {
      for (const p of descendants(child.pid!)) children.add(p);
    }, 500);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the demo ran longer than ${options.timeoutMs} ms; output so far:\n${stdout}\n${stderr}`));
    }, options.timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (options.interruptWhen && !interrupted && stdout.includes(options.interruptWhen)) {
        interrupted = true;
        for (const p of descendants(child.pid!)) children.add(p);
        child.kill("SIGINT");
      }
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code, signal) => {
      clearInterval(sampler);
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, children: [...children] });
    });
  });
}

interface Summary {
  ok: boolean;
  phases: { id: string; title: string }[];
  rows: {
    phase: string;
    region: string;
    callsPerSec: number;
    reads: { ok: number; total: number };
    writes: { ok: number; total: number; unknown: number };
    fallbackReads: number;
  }[];
  invariants: { id: string; ok: boolean; detail: string }[];
  linearizability: { verdict: string; operations?: number };
  writes: { acknowledged: number; unknown: number; unknownApplied: number; unknownNotApplied: number };
  epochs: { region: string; epoch: number }[];
  probes: { region: string; outcome: string; code?: string; paused?: boolean }[];
}

/** What every successful run must show. */
async function expectFullRun(registry: "embedded" | "etcd", transport: "tcp" | "grpc" | "nats" = "tcp"): Promise<void> {
  const json = join(dir, `${registry}-${transport}.json`);
  const run = await runDemo(["--duration", "15", "--registry", registry, "--transport", transport, "--json", json], { timeoutMs: 150_000 });
  expect(run.stderr).toBe("");
  expect(run.code, run.stdout).toBe(0);
  expect(run.stdout).toContain("PASS: every invariant held");
  // Not a terminal: plain lines, no colour, no cursor movement.
  expect(run.stdout).not.toContain("\x1b[");
  expect(run.stdout).toMatch(/\[00:0\d\] \d+% phase \d\/6/);

  const summary = JSON.parse(readFileSync(json, "utf8")) as Summary;
  expect(summary.ok).toBe(true);
  // Secured by default: mutual TLS on every link of the service; the embedded registry authorizes
  // by certificate, and a region's own attempt to move the primary is refused.
  expect(run.stdout).toContain(`${transport === "nats" ? "gateways" : "between regions"}, mutual TLS`);
  const invariants = ["no-lost-writes", "no-doubled-writes", "linearizable", "fencing", "converged"];
  if (registry === "embedded") {
    expect(run.stdout).toContain("mTLS, roles by certificate");
    expect(run.stdout).toMatch(/authorization: us-east, an instance of the service without the operator role, tried to move the primary to itself: refused, PERMISSION_DENIED/);
    invariants.push("authorization");
  }
  expect(summary.invariants.map((i) => i.id)).toEqual(invariants);
  for (const i of summary.invariants) expect(i.ok, `${i.id}: ${i.detail}`).toBe(true);
  expect(summary.linearizability.verdict).toBe("linearizable");
  expect(summary.linearizability.operations).toBeGreaterThan(200);
  expect(summary.writes.acknowledged).toBeGreaterThan(100);
  expect(summary.writes.unknownApplied + summary.writes.unknownNotApplied).toBe(summary.writes.unknown);
  expect(summary.phases.map((p) => p.id)).toEqual(["warm-up", "steady", "secondary-cut", "primary-cut", "heal", "primary-paused"]);

  const row = (phase: number, region: string) => summary.rows.find((r) => r.phase === summary.phases[phase]!.title && r.region === region)!;
  // Steady traffic: every region writes and reads.
  for (const region of ["cn-north", "eu-west", "us-east"]) {
    expect(row(1, region).writes.ok).toBeGreaterThan(0);
    expect(row(1, region).reads.ok).toBeGreaterThan(0);
  }
  // us-east cut off: its writes never succeed, its linearizable reads fall back to its replica.
  expect(row(2, "us-east").writes.total).toBeGreaterThan(0);
  expect(row(2, "us-east").writes.ok).toBe(0);
  expect(row(2, "us-east").fallbackReads).toBeGreaterThan(0);
  expect(row(2, "us-east").reads.ok).toBeGreaterThan(0);
  // The primary cut off: it moved to eu-west with an epoch bump; cn-north's writes fail.
  expect(summary.epochs.map((e) => [e.region, e.epoch])).toEqual([
    ["cn-north", 1],
    ["eu-west", 2],
    ["cn-north", 3],
  ]);
  expect(row(3, "cn-north").writes.ok).toBe(0);
  expect(row(3, "cn-north").fallbackReads).toBeGreaterThan(0);
  // Writes sent to the fenced old primary (cut off, then back) and with the old epoch: refused.
  expect(summary.probes).toHaveLength(4);
  expect(summary.probes.every((p) => p.outcome === "refused")).toBe(true);
  // The primary's instance frozen between admitting a write and writing it, past a move back to
  // cn-north: the store's fence refused its write when it thawed.
  expect(summary.probes.filter((p) => p.paused)).toEqual([expect.objectContaining({ region: "eu-west", outcome: "refused", code: "FAILED_PRECONDITION" })]);
  // The new primary asked with the old epoch says so (the old primary, back, does too once its registry answers again).
  expect(summary.probes.find((p) => p.region === "eu-west" && !p.paused)?.code).toBe("FAILED_PRECONDITION");
  // Healed: writes succeed everywhere again.
  for (const region of ["cn-north", "eu-west", "us-east"]) expect(row(4, region).writes.ok).toBeGreaterThan(0);

  // Nothing the demo started is left.
  expect(run.children.length).toBeGreaterThanOrEqual(3);
  expect(await survivors(run.children)).toEqual([]);
}

describe("demo - embedded registry", () => {
  it("demo - a short run on the embedded registry keeps every invariant and tells the story", async () => {
    await expectFullRun("embedded");
  }, 160_000);

  it("demo - the same over the gRPC transport", async () => {
    await expectFullRun("embedded", "grpc");
  }, 160_000);

  it("demo - Ctrl-C stops every process it started and exits 130", async () => {
    const run = await runDemo(["--duration", "60"], { timeoutMs: 60_000, interruptWhen: "phase 2/6" });
    expect(run.code, run.stderr).toBe(130);
    expect(run.stderr).toContain("interrupted");
    expect(run.children.length).toBeGreaterThanOrEqual(3);
    expect(await survivors(run.children)).toEqual([]);
  }, 70_000);

  it("demo - --plaintext turns TLS and registry authentication off, and says so", async () => {
    const run = await runDemo(["--duration", "60", "--plaintext"], { timeoutMs: 60_000, interruptWhen: "phase 2/6" });
    expect(run.code, run.stderr).toBe(130);
    expect(run.stdout).not.toContain("making a CA");
    expect(run.stdout).toContain("embedded registry (one node, in eu-west, no authentication)");
    expect(run.stdout).toContain("TCP through links between regions, plaintext");
    expect(await survivors(run.children)).toEqual([]);
  }, 70_000);

  it("demo - a bad option is a usage error (exit 2)", async () => {
    const run = await runDemo(["--registry", "zookeeper"], { timeoutMs: 30_000 });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--registry must be embedded or etcd");
  }, 40_000);
});

describeWithBinary("nats-server", findNatsServer(), NATS_MISSING, "demo - NATS transport", () => {
  it("demo - the same over NATS, one server per region joined by gateways through the region links", async () => {
    await expectFullRun("embedded", "nats");
  }, 160_000);
});

describeWithEtcd("demo - etcd registry", () => {
  it("demo - a short run on a 3-member etcd cluster keeps every invariant and tells the story", async () => {
    await expectFullRun("etcd");
  }, 160_000);
});
