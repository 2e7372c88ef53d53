/**
 * The codec benchmark: Meridian's generated codecs against protobufjs, protobuf-es, msgpackr and
 * JSON on the same messages in the same run.
 *
 *   npm run bench:codec [-- --time <ms per task>] [-- --quick] [-- --filter <regexp>] [-- --generic]
 *
 * Prints the tables on stdout and writes bench/results/codec.json and codec.svg.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Bench, calibrateTimerOverhead, performanceNowTimestampProvider, type Task as BenchTask } from "tinybench";
import { measureAllocation } from "./alloc.js";
import { runChecks } from "./checks.js";
import { fixtures, VIEW_FIELDS, type Size } from "./data.js";
import { genericPeers } from "./generic.js";
import { BASELINE, loadPeers, OPS, sideEffect, type Op } from "./peers.js";
import {
  addRatios,
  formatAllocation,
  formatResults,
  formatWireBytes,
  writeReport,
  type AllocationResult,
  type Report,
  type Result,
} from "./report.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Calls timed per latency sample, per size. A Ping call takes a few hundred nanoseconds, not much
 * more than reading the clock (about 65 ns for performance.now on Node 20), so a sample is the
 * mean of a batch of calls: p99 for ping and feed is then the p99 of those batch means, which
 * smooths the tail. Every library gets the same batch for the same size, so their ratios stay
 * comparable.
 */
const CALLS_PER_SAMPLE: Record<Size, number> = { ping: 64, feed: 8, page: 1, batch: 8, numeric: 8, maps: 8, text: 8, nested: 8 };

/** Calls per allocation measurement (the method runs N and 2N). */
const ALLOC_CALLS: Record<"full" | "quick", Record<Size, number>> = {
  full: { ping: 20_000, feed: 500, page: 40, batch: 500, numeric: 500, maps: 500, text: 500, nested: 500 },
  quick: { ping: 10_000, feed: 100, page: 10, batch: 100, numeric: 100, maps: 100, text: 100, nested: 100 },
};

interface Options {
  /** Time budget per task in ms, over all rounds. */
  time: number;
  /**
   * The suite runs this many times, each task getting time/rounds per round; a row reports its
   * median round. Spreading each library over the whole run keeps a noisy moment of the machine
   * from landing on one library only, and the spread of the rounds shows how noisy it was.
   */
  rounds: number;
  quick: boolean;
  /** Runs only the tasks whose name ("<size> <op> <label>") matches. */
  filter: RegExp | undefined;
  generic: boolean;
}

const USAGE = `usage: bench/codec/run.ts [--time <ms>] [--rounds <n>] [--quick] [--filter <regexp>] [--generic]
  --time     time budget per task in ms, over all rounds (default 500; 20 with --quick)
  --rounds   rounds of the whole suite; a row reports its median round (default 3; 1 with --quick)
  --quick    (or BENCH_QUICK=1) a tiny budget, so CI can check that the benchmark still runs
  --filter   only the tasks whose name "<size> <op> <library>" matches, e.g. "^feed encode";
             a filtered run prints its tables but leaves bench/results/ as it was
  --generic  the generic-call case instead (generic.ts): the dynamic codec and generic JSON against
             the generated codec and protobufjs, in a process of their own so that the codecs
             compiled at run time do not share type feedback with the main run; writes
             bench/results/codec-generic.json and codec-generic.svg`;

function options(): Options {
  const { values } = parseArgs({
    options: {
      time: { type: "string" },
      rounds: { type: "string" },
      quick: { type: "boolean" },
      filter: { type: "string" },
      generic: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true || process.env["BENCH_QUICK"] === "1";
  const time = values.time === undefined ? (quick ? 20 : 500) : Number(values.time);
  const rounds = values.rounds === undefined ? (quick ? 1 : 3) : Number(values.rounds);
  let bad: string | undefined;
  if (!(time > 0)) bad = `--time wants a positive number of ms, got ${values.time}`;
  else if (!Number.isInteger(rounds) || rounds < 1) bad = `--rounds wants a positive integer, got ${values.rounds}`;
  if (bad) {
    console.error(`${bad}\n${USAGE}`);
    process.exit(2);
  }
  return {
    time,
    rounds,
    quick,
    generic: values.generic === true,
    filter: values.filter === undefined ? undefined : new RegExp(values.filter),
  };
}

/** One benchmark row before it runs. */
interface Entry {
  name: string;
  size: Size;
  op: Op;
  label: string;
  library: string;
  fn: () => { overriddenDuration: number; overriddenIterationCost: number };
}

/**
 * Wraps one call into a tinybench function that times a batch of `n` calls, less the cost of
 * reading the clock (`overhead`, ms), and reports the mean per call as the sample.
 */
function batched(call: () => unknown, n: number, overhead: number): Entry["fn"] {
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

function version(pkg: string): string {
  const json = JSON.parse(readFileSync(`${ROOT}node_modules/${pkg}/package.json`, "utf8")) as { version: string };
  return json.version;
}

async function main(): Promise<void> {
  const opts = options();
  const started = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  if (loadAtStart > os.availableParallelism() / 2) {
    console.log(
      `note: load average ${loadAtStart.toFixed(1)} on ${os.availableParallelism()} CPUs: other processes ` +
        `compete for the CPU, so expect a large spread; the ratios are the figures to read`,
    );
  }
  const loaded = await loadPeers();
  const missing = loaded.missing;
  // The generic-call case (generic.ts) runs on its own: codecs compiled at run time, and JSON in
  // and out, against the generated codec (default int64) and protobufjs.
  const peers = opts.generic
    ? [...loaded.peers.filter((p) => p.name === "meridian"), ...genericPeers(), ...loaded.peers.filter((p) => p.name === BASELINE)]
    : loaded.peers;
  const protobufPeers = new Set(peers.filter((p) => p.name.startsWith("meridian") || p.name === "protobuf-es").map((p) => p.name));
  const all = fixtures();
  const bound = new Map(all.map((f) => [f, peers.map((p) => p.bind(f))] as const));
  for (const m of missing) console.log(`note: ${m} is not generated yet: its rows are left out`);
  const checks = runChecks(bound, protobufPeers);

  const wireBytes: Report["wireBytes"] = {};
  for (const [f, subjects] of bound) wireBytes[f.size] = Object.fromEntries(subjects.map((s) => [s.library, s.bytes.length]));

  const overhead = calibrateTimerOverhead(performanceNowTimestampProvider);
  const entries: Entry[] = [];
  for (const [f, subjects] of bound) {
    for (const op of OPS) {
      for (const s of subjects) {
        for (const t of s.tasks.filter((x) => x.op === op)) {
          const name = `${f.size} ${op} ${t.label}`;
          if (opts.filter && !opts.filter.test(name)) continue;
          const fn = batched(t.run, CALLS_PER_SAMPLE[f.size], overhead);
          entries.push({ name, size: f.size, op, label: t.label, library: s.library, fn });
        }
      }
    }
  }

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
    for (const e of entries) bench.add(e.name, e.fn);
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
  sideEffect();
  const results = entries.map((e, i) => toResult(e, runs.map((r) => r[i]!)));
  addRatios(results, BASELINE);

  const allocation: AllocationResult[] = [];
  const allocCalls = ALLOC_CALLS[opts.quick ? "quick" : "full"];
  for (const [f, subjects] of bound) {
    for (const s of subjects) {
      for (const t of s.tasks.filter((x) => x.op === "encode")) {
        if (opts.filter && !opts.filter.test(`${f.size} encode ${t.label}`)) continue;
        const a = measureAllocation(t.run as () => Uint8Array, allocCalls[f.size], opts.quick ? 1 : 3);
        allocation.push({ size: f.size, label: t.label, ...a });
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;

  const describe = (size: Size): string => {
    const f = all.find((x) => x.size === size)!;
    return (
      `== ${size}: ${f.what}, ${wireBytes[size]![BASELINE]} B of protobuf; ${CALLS_PER_SAMPLE[size]} calls per sample; ` +
      `view reads ${VIEW_FIELDS[f.kind].join(", ")}`
    );
  };
  console.log(`\n${formatResults(results, BASELINE, describe)}`);
  console.log(
    `\nops/s = 1 / mean latency; p99 = 99th percentile of the samples (a sample is the mean of the calls per sample); ` +
      `both from the median of ${opts.rounds} round(s); "spread" = (slowest - fastest round mean) / median. ` +
      `"vs ${BASELINE}": ops/s ratio (above 1 is faster) and p99 ratio (below 1 is a shorter tail), each the median ` +
      `of the ratios within each round. ` +
      `view: Meridian reads the two fields from a lazy view; the others decode in full, then read them.`,
  );
  console.log(`\n${formatWireBytes(wireBytes)}`);
  console.log(`\nallocation per encode call, steady state (method: bench/codec/alloc.ts)\n${formatAllocation(allocation)}`);

  const cpu = os.cpus()[0]?.model ?? "unknown cpu";
  const date = new Date().toISOString();
  const report: Report = {
    meta: {
      title:
        `node ${process.version}, ${cpu} x${os.availableParallelism()}, load average ${loadAtStart.toFixed(1)}, ` +
        `${date.slice(0, 10)}${opts.quick ? ", quick run" : ""}`,
      date,
      node: process.version,
      v8: process.versions.v8,
      platform: `${process.platform} ${process.arch}`,
      cpu: { model: cpu, count: os.availableParallelism() },
      options: { ...opts, filter: opts.filter?.source, callsPerSample: CALLS_PER_SAMPLE, allocationCalls: allocCalls },
      timerOverheadNs: overhead * 1e6,
      // One-minute load average at the start and the end: above the CPU count, the run competed.
      loadAverage: { start: loadAtStart, end: os.loadavg()[0] },
      seconds,
      baseline: BASELINE,
      versions: Object.fromEntries(
        ["protobufjs", "@bufbuild/protobuf", "@bufbuild/protoc-gen-es", "msgpackr", "tinybench"].map((p) => [p, version(p)]),
      ),
      peers: Object.fromEntries(peers.map((p) => [p.name, { int64: p.int64, note: p.note }])),
      missing,
    },
    wireBytes,
    checks,
    results,
    allocation,
  };
  if (opts.filter) {
    console.log(`\n--filter: bench/results/ left as it was (${seconds.toFixed(0)} s)`);
    return;
  }
  const out = opts.generic ? "codec-generic" : "codec";
  writeReport(report, `${ROOT}bench/results/${out}.json`, `${ROOT}bench/results/${out}.svg`, BASELINE);
  console.log(`\nwrote bench/results/${out}.json and bench/results/${out}.svg (${seconds.toFixed(0)} s)`);
}

await main();
