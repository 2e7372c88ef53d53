/**
 * The overload benchmark (`npm run bench:overload`): a server whose handler needs `handlerMs` of
 * CPU, called open-loop (a fixed arrival rate, as users arrive, whatever the server does) with a
 * deadline per call, at 0.5x, 1x, 2x and 4x its measured capacity, then at half its capacity with
 * 10x bursts. Meridian over TCP with its default admission control, the same without it, and
 * @grpc/grpc-js, in the same run, each against its own capacity. Server and load generator run in
 * separate processes. Writes bench/results/overload.json and overload.svg.
 *
 *   --duration <s>     seconds per open-loop run (default 4; bursts run at least 3 s)
 *   --quick            CI mode: 0.5 s runs (the whole benchmark in well under a minute)
 *   --peers a,b        subset of meridian,meridian-no-admission,grpc-js
 *   --handler-ms <n>   CPU per call (default 1)
 *   --timeout-ms <n>   each call's deadline (default 100)
 *   --out <dir>        where to write the results (default bench/results)
 *   --slice-ms <n>     Meridian's run-queue slice (admission sliceMs; default: the server's default)
 *   --no-workers       skip the workers case (capacity of 1 vs 2 worker processes, runCluster)
 *   --cpu-prof         run the children with --cpu-prof (profiles in .tmp/prof/)
 *   --dist             the children load meridian-rpc from the built dist/ (`npm run build` first),
 *                      as an installed package runs, instead of from the TypeScript source (as
 *                      bench:rpc --dist)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { renderChart, type ChartPoint } from "../rpc/chart.js";
import { childExecArgv, forkChild, next, stop } from "../rpc/children.js";
import { OVERLOAD_PEERS, type OpenResult, type OpenSpec, type OverloadPeer } from "./spec.js";
import type { OverloadServerStats } from "./server.js";

const { values: args } = parseArgs({
  options: {
    duration: { type: "string" },
    quick: { type: "boolean", default: false },
    peers: { type: "string" },
    "handler-ms": { type: "string" },
    "timeout-ms": { type: "string" },
    out: { type: "string" },
    "no-workers": { type: "boolean", default: false },
    "slice-ms": { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    dist: { type: "boolean", default: false },
  },
});

const quick = args.quick === true;
const durationMs = Math.round(1000 * Number(args.duration ?? (quick ? 0.5 : 4)));
const handlerMs = Number(args["handler-ms"] ?? 1);
const timeoutMs = Number(args["timeout-ms"] ?? 100);
const peers = (args.peers?.split(",") ?? [...OVERLOAD_PEERS]) as OverloadPeer[];
const outDir = args.out ?? fileURLToPath(new URL("../results/", import.meta.url));
for (const p of peers) if (!OVERLOAD_PEERS.includes(p)) throw new Error(`unknown peer ${p}; choose from ${OVERLOAD_PEERS.join(", ")}`);

/** The offered loads, as multiples of the peer's capacity. */
const FACTORS = [0.5, 1, 2, 4];
/** Calls in flight while capacity is measured (closed loop). */
const CAPACITY_IN_FLIGHT = 4;
/** How long each capacity measurement runs before it counts (the processes start cold). */
const WARM_MS = quick ? 200 : 1500;
const BURST = { base: 0.5, factor: 10, everyMs: 1000, lengthMs: 200 };
const execArgv = childExecArgv(args.dist === true, args["cpu-prof"] === true);

/** One open-loop run and what it measured on both sides. */
interface Run extends OpenResult {
  peer: OverloadPeer;
  scenario: "steady" | "bursts";
  /** Offered load as a multiple of capacity (the base rate, for bursts). */
  offered: number;
  capacity: number;
  /** Answers within the deadline per second, as a share of capacity. */
  goodput: number;
  server: OverloadServerStats;
}

async function benchPeer(peer: OverloadPeer, runs: Run[], failures: string[]): Promise<void> {
  const server = forkChild(new URL("./server.ts", import.meta.url), [peer, String(handlerMs), ...(args["slice-ms"] === undefined ? [] : [args["slice-ms"]])], execArgv);
  const load = forkChild(new URL("./load.ts", import.meta.url), [peer], execArgv);
  try {
    const { address } = await next<{ address: string }>(server, "ready", 20_000);
    await next(load, "ready", 20_000);
    // A few calls in flight keep the core busy; more would be a standing queue past the shedder's
    // 5 ms target (with 1 ms handlers), which it sheds by design.
    load.send({ type: "capacity", address, ms: Math.max(1000, durationMs), warmMs: WARM_MS, concurrency: CAPACITY_IN_FLIGHT });
    const { result: capacity } = await next<{ result: number }>(load, "capacity", 60_000);
    console.log(`${peer.padEnd(22)} capacity ${capacity.toFixed(0)} calls/s (handler ${handlerMs} ms of CPU, closed loop, ${CAPACITY_IN_FLIGHT} in flight)`);
    const scenarios: { scenario: Run["scenario"]; offered: number; spec: OpenSpec }[] = [
      ...FACTORS.map((f) => ({ scenario: "steady" as const, offered: f, spec: { address, rate: f * capacity, ms: durationMs, timeoutMs } })),
      {
        scenario: "bursts" as const,
        offered: BURST.base,
        spec: { address, rate: BURST.base * capacity, ms: Math.max(3000, durationMs), timeoutMs, burst: { factor: BURST.factor, everyMs: BURST.everyMs, lengthMs: BURST.lengthMs } },
      },
    ];
    for (const { scenario, offered, spec } of scenarios) {
      server.send({ type: "reset" });
      load.send({ type: "open", spec });
      const { result } = await next<{ result: OpenResult }>(load, "open", spec.ms + timeoutMs + 30_000);
      server.send({ type: "stats" });
      const { stats } = await next<{ stats: OverloadServerStats }>(server, "stats", 5000);
      const run: Run = { ...result, peer, scenario, offered, capacity, goodput: result.ok / result.seconds / capacity, server: stats };
      runs.push(run);
      console.log(
        `${peer.padEnd(22)} ${scenario === "steady" ? `${offered}x`.padEnd(6) : "bursts"} goodput ${(100 * run.goodput).toFixed(0).padStart(3)}% of capacity  ok p50 ${run.okP50Ms.toFixed(1)} ms p99 ${run.okP99Ms.toFixed(1)} ms  refused ${run.refused} (p50 ${run.refusedP50Ms.toFixed(1)} p99 ${run.refusedP99Ms.toFixed(1)} ms${run.refusedAttemptP99Ms === undefined ? "" : `, each answer p99 ${run.refusedAttemptP99Ms.toFixed(1)} ms`}${run.refusedWaitP99Ms === undefined ? "" : `, waited p99 ${run.refusedWaitP99Ms.toFixed(1)} ms`})  timed out ${run.timedOut}  handlers ${stats.handled}/${run.sent}  server ELD p99 ${stats.eventLoopDelayP99Ms.toFixed(1)} ms${run.loadEventLoopDelayP99Ms === undefined ? "" : `  load ELD p99 ${run.loadEventLoopDelayP99Ms.toFixed(1)} ms`}${run.otherErrors ? `  errors ${run.otherErrors} (${run.firstError})` : ""}`,
      );
    }
  } catch (e) {
    const msg = `${peer}: ${e instanceof Error ? e.message : String(e)}`;
    failures.push(msg);
    console.error(`failed: ${msg}`);
  } finally {
    await Promise.all([stop(load), stop(server)]);
  }
}

const runs: Run[] = [];
const failures: string[] = [];
const started = Date.now();
console.log(
  `Overload benchmark: ${peers.join(", ")} | handler ${handlerMs} ms of CPU | deadline ${timeoutMs} ms | ${durationMs} ms per run | ${cpus().length} CPUs, Node ${process.version}, load average ${loadavg()[0]!.toFixed(1)}`,
);
for (const peer of peers) await benchPeer(peer, runs, failures);

/** Capacity of a runCluster server with `workers` processes (closed loop, a few calls in flight per worker, 4 connections). */
async function clusterCapacity(workers: number): Promise<number> {
  const server = forkChild(new URL("./cluster.ts", import.meta.url), [String(workers), String(handlerMs)], execArgv);
  const load = forkChild(new URL("./load.ts", import.meta.url), ["meridian", "4"], execArgv);
  try {
    const { address } = await next<{ address: string }>(server, "ready", 60_000);
    await next(load, "ready", 20_000);
    load.send({ type: "capacity", address, ms: Math.max(2000, durationMs), warmMs: WARM_MS, concurrency: CAPACITY_IN_FLIGHT * workers });
    const { result } = await next<{ result: number }>(load, "capacity", 60_000);
    console.log(`workers ${workers}: capacity ${result.toFixed(0)} calls/s (runCluster, handler ${handlerMs} ms of CPU, closed loop, ${CAPACITY_IN_FLIGHT * workers} in flight over 4 connections)`);
    return result;
  } finally {
    await Promise.all([stop(load), stop(server)]);
  }
}

/** The workers case: how much more two worker processes serve than one, with a CPU-bound handler. */
let workersCase: { one: number; two: number; ratio: number } | undefined;
if (args["no-workers"] !== true) {
  try {
    const one = await clusterCapacity(1);
    const two = await clusterCapacity(2);
    workersCase = { one, two, ratio: two / one };
  } catch (e) {
    failures.push(`workers: ${e instanceof Error ? e.message : String(e)}`);
    console.error(`failed: workers: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** p99 of the time to the server's refusal of an attempt (Meridian measures it below requeue), else to a refused call's end. */
const refusalAnswerP99 = (r: OpenResult): number => r.refusedAttemptP99Ms ?? r.refusedP99Ms;
const find = (peer: OverloadPeer, offered: number) => runs.find((r) => r.peer === peer && r.scenario === "steady" && r.offered === offered);
const at2 = find("meridian", 2);
const at4 = find("meridian", 4);
const targets = at2 &&
  at4 && {
    goodputAt2x: { want: ">= 0.90", got: at2.goodput, met: at2.goodput >= 0.9 },
    goodputAt4x: { want: ">= 0.80", got: at4.goodput, met: at4.goodput >= 0.8 },
    okP99AtWorst: { want: `<= ${timeoutMs / 2} ms`, got: Math.max(at2.okP99Ms, at4.okP99Ms), met: Math.max(at2.okP99Ms, at4.okP99Ms) <= timeoutMs / 2 },
    // The server's answer to each refused attempt; a refused call ends later when the client's
    // requeue sends it again first (refusedCallP99 below, no target).
    refusalP99: { want: "<= 5 ms", got: Math.max(refusalAnswerP99(at2), refusalAnswerP99(at4)), met: Math.max(refusalAnswerP99(at2), refusalAnswerP99(at4)) <= 5 },
    refusedCallP99: { want: "(info)", got: Math.max(at2.refusedP99Ms, at4.refusedP99Ms), met: true },
    serverEldP99At4x: { want: "<= 10 ms", got: at4.server.eventLoopDelayP99Ms, met: at4.server.eventLoopDelayP99Ms <= 10 },
  };
const allTargets: Record<string, { want: string; got: number; met: boolean }> = { ...(targets || {}) };
if (workersCase !== undefined) allTargets.twoWorkers = { want: ">= 1.8x", got: workersCase.ratio, met: workersCase.ratio >= 1.8 };
if (Object.keys(allTargets).length > 0) {
  console.log(`\nTargets (Meridian, default options; ${cpus().length} CPUs shared with whatever else runs, load average ${loadavg()[0]!.toFixed(1)}):`);
  for (const [name, t] of Object.entries(allTargets)) console.log(`  ${name.padEnd(18)} want ${t.want.padEnd(9)} got ${t.got.toFixed(2).padStart(7)}  ${t.want === "(info)" ? "" : t.met ? "met" : "NOT met"}`);
}

mkdirSync(outDir, { recursive: true });
const meta = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadAverage: loadavg()[0], handlerMs, timeoutMs, durationMs, quick, wallSeconds: (Date.now() - started) / 1000 };
writeFileSync(join(outDir, "overload.json"), JSON.stringify({ meta, runs, workers: workersCase, targets: allTargets, failures }, null, 2) + "\n");
const points: ChartPoint[] = runs.map((r) => ({
  peer: r.peer,
  name: r.scenario,
  concurrency: Math.round(r.offered * 100),
  rps: 100 * r.goodput,
  p99Us: r.okP99Ms * 1000,
}));
writeFileSync(
  join(outDir, "overload.svg"),
  renderChart(points, ["steady", "bursts"], `${meta.date.slice(0, 10)} · Node ${meta.node} · handler ${handlerMs} ms of CPU · deadline ${timeoutMs} ms · open-loop arrivals`, {
    title: "Meridian overload benchmark: goodput and latency past capacity",
    group: (g) => `${g / 100}x capacity`,
    top: (name) => [`${name}: goodput, % of capacity (higher is better)`, "% of capacity"],
    bottom: (name) => [`${name}: p99 of answered calls (lower is better, log)`, "µs"],
  }),
);
console.log(`\nwrote ${join(outDir, "overload.json")} and overload.svg in ${meta.wallSeconds.toFixed(0)} s`);
if (failures.length > 0) process.exitCode = 1;
