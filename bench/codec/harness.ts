/**
 * The parts of a codec benchmark runner that do not depend on what it measures: the timing
 * options, the tinybench rounds with batched samples, and the description of the machine. Used by
 * run.ts (protobuf and its peers) and thrift/run.ts (Thrift against Apache's library).
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { Bench, calibrateTimerOverhead, performanceNowTimestampProvider, type Task as BenchTask } from "tinybench";
import type { Size } from "./data.js";
import type { Op } from "./peers.js";
import type { Result } from "./result.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Calls timed per latency sample, per size. A Ping call takes a few hundred nanoseconds, not much
 * more than reading the clock (about 65 ns for performance.now on Node 20), so a sample is the
 * mean of a batch of calls: p99 for ping and feed is then the p99 of those batch means, which
 * smooths the tail. Every library gets the same batch for the same size, so their ratios stay
 * comparable.
 */
export const CALLS_PER_SAMPLE: Readonly<Record<Size, number>> = { ping: 64, feed: 8, page: 1, batch: 8, numeric: 8, maps: 8, text: 8, nested: 8, log: 8 };

/** How long and how often the rows run. */
export interface RoundOptions {
  /** Time budget per task in ms, over all rounds. */
  time: number;
  /**
   * The suite runs this many times, each task getting time/rounds per round; a row reports its
   * median round. Spreading each library over the whole run keeps a noisy moment of the machine
   * from landing on one library only, and the spread of the rounds shows how noisy it was.
   */
  rounds: number;
  /** A tiny budget, so that CI can check that the benchmark still runs. */
  quick: boolean;
}

/** The lines of a runner's usage text for the options of roundOptions. */
export const ROUND_USAGE = `  --time     time budget per task in ms, over all rounds (default 500; 20 with --quick)
  --rounds   rounds of the whole suite; a row reports its median round (default 3; 1 with --quick)
  --quick    (or BENCH_QUICK=1) a tiny budget, so CI can check that the benchmark still runs`;

/**
 * The round options from a runner's parsed arguments (`parseArgs` values of --time, --rounds and
 * --quick); prints `usage` and exits with status 2 on a bad value.
 */
export function roundOptions(values: { time?: string | undefined; rounds?: string | undefined; quick?: boolean | undefined }, usage: string): RoundOptions {
  const quick = values.quick === true || process.env["BENCH_QUICK"] === "1";
  const time = values.time === undefined ? (quick ? 20 : 500) : Number(values.time);
  const rounds = values.rounds === undefined ? (quick ? 1 : 3) : Number(values.rounds);
  let bad: string | undefined;
  if (!(time > 0)) bad = `--time wants a positive number of ms, got ${values.time}`;
  else if (!Number.isInteger(rounds) || rounds < 1) bad = `--rounds wants a positive integer, got ${values.rounds}`;
  if (bad) {
    console.error(`${bad}\n${usage}`);
    process.exit(2);
  }
  return { time, rounds, quick };
}

/** One benchmark row before it runs: what it measures, and the call it times. */
export interface Entry {
  /** The tinybench task name, "<size> <op> <label>". */
  name: string;
  size: Size;
  op: Op;
  label: string;
  library: string;
  run: () => unknown;
}

type BatchedFn = () => { overriddenDuration: number; overriddenIterationCost: number };

/**
 * Wraps one call into a tinybench function that times a batch of `n` calls, less the cost of
 * reading the clock (`overhead`, ms), and reports the mean per call as the sample.
 */
function batched(call: () => unknown, n: number, overhead: number): BatchedFn {
  let sink: unknown;
  return () => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sink = call();
    const spent = performance.now() - t0;
    if (sink === batched) throw new Error("unreachable"); // keeps `sink`, and so each call, observable
    return { overriddenDuration: Math.max(0, spent - overhead) / n, overriddenIterationCost: spent };
  };
}

/** A row from its runs in every round: the median round's statistics, and every round's. */
function toResult(e: Entry, runs: BenchTask[]): Result {
  const base = { size: e.size, op: e.op, label: e.label, library: e.library, callsPerSample: CALLS_PER_SAMPLE[e.size] };
  const latency = runs.map((t) => (t.result.state === "completed" ? t.result.latency : undefined));
  const rounds = latency.map((l) => (l ? { meanUs: l.mean * 1000, p99Us: l.p99 * 1000 } : { meanUs: NaN, p99Us: NaN }));
  const done = latency.filter((l) => l !== undefined).sort((a, b) => a.mean - b.mean);
  const l = done[(done.length - 1) >> 1];
  if (!l) {
    const r = runs[0]!.result;
    const error = r.state === "errored" ? r.error.message : r.state;
    return { ...base, opsPerSec: NaN, meanUs: NaN, p50Us: NaN, p99Us: NaN, rmePct: NaN, samples: 0, rounds, error };
  }
  return {
    ...base,
    opsPerSec: 1000 / l.mean,
    meanUs: l.mean * 1000,
    p50Us: l.p50 * 1000,
    p99Us: l.p99 * 1000,
    rmePct: l.rme,
    samples: l.samplesCount,
    rounds,
  };
}

/**
 * Runs every entry in `opts.rounds` rounds of tinybench, each sample a batch of
 * CALLS_PER_SAMPLE[size] calls, and returns a result row per entry (in order) with the timer
 * overhead that was subtracted (ms per clock read). Shows progress on a terminal's stderr.
 */
export function runRounds(entries: readonly Entry[], opts: RoundOptions): { results: Result[]; timerOverheadMs: number } {
  const overhead = calibrateTimerOverhead(performanceNowTimestampProvider);
  const fns = entries.map((e) => batched(e.run, CALLS_PER_SAMPLE[e.size], overhead));
  const perTask = opts.time / opts.rounds;
  const runs: BenchTask[][] = [];
  for (let round = 0; round < opts.rounds; round++) {
    const bench = new Bench({
      time: perTask,
      // The first round warms each task up properly; later ones only re-settle it.
      warmupTime: Math.min(round === 0 ? 200 : 50, perTask / 2),
      iterations: opts.quick ? 4 : 32,
      warmupIterations: opts.quick ? 2 : 16,
    });
    entries.forEach((e, i) => bench.add(e.name, fns[i]!));
    let done = 0;
    bench.addEventListener("cycle", (ev) => {
      done++;
      if (process.stderr.isTTY) {
        process.stderr.write(`\r\x1b[K[round ${round + 1}/${opts.rounds}, ${done}/${entries.length}] ${ev.task?.name ?? ""}`);
      }
    });
    runs.push(bench.runSync());
  }
  if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
  return { results: entries.map((e, i) => toResult(e, runs.map((r) => r[i]!))), timerOverheadMs: overhead };
}

/** The one-minute load average now; prints a note when other processes compete for the CPU. */
export function loadAverageAtStart(): number {
  const load = os.loadavg()[0]!;
  if (load > os.availableParallelism() / 2) {
    console.log(
      `note: load average ${load.toFixed(1)} on ${os.availableParallelism()} CPUs: other processes ` +
        `compete for the CPU, so expect a large spread; the ratios are the figures to read`,
    );
  }
  return load;
}

/** The machine and the run, for a report's `meta`: a one-line title, versions, the load averages. */
export function machineMeta(load: number, quick: boolean): Record<string, unknown> {
  const cpu = os.cpus()[0]?.model ?? "unknown cpu";
  const date = new Date().toISOString();
  return {
    title:
      `node ${process.version}, ${cpu} x${os.availableParallelism()}, load average ${load.toFixed(1)}, ` +
      `${date.slice(0, 10)}${quick ? ", quick run" : ""}`,
    date,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    cpu: { model: cpu, count: os.availableParallelism() },
    // One-minute load average at the start and the end: above the CPU count, the run competed.
    loadAverage: { start: load, end: os.loadavg()[0] },
  };
}

/** The installed version of the package `pkg`. */
export function packageVersion(pkg: string): string {
  const json = JSON.parse(readFileSync(`${ROOT}node_modules/${pkg}/package.json`, "utf8")) as { version: string };
  return json.version;
}
