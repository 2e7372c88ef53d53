/**
 * The codec benchmark: Meridian's generated codecs against protobufjs, protobuf-es, msgpackr and
 * JSON on the same messages in the same run.
 *
 *   npm run bench:codec [-- --time <ms per task>] [-- --quick] [-- --filter <regexp>] [-- --generic]
 *
 * Prints the tables on stdout and writes bench/results/codec.json and codec.svg.
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { measureAllocation } from "./alloc.js";
import { runChecks } from "./checks.js";
import { fixtures, VIEW_FIELDS, type Size } from "./data.js";
import { genericPeers } from "./generic.js";
import {
  CALLS_PER_SAMPLE,
  loadAverageAtStart,
  machineMeta,
  packageVersion,
  ROUND_USAGE,
  roundOptions,
  runRounds,
  type Entry,
  type RoundOptions,
} from "./harness.js";
import { BASELINE, loadPeers, OPS, sideEffect } from "./peers.js";
import {
  addRatios,
  formatAllocation,
  formatResults,
  formatWireBytes,
  writeReport,
  type AllocationResult,
  type Report,
} from "./report.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Calls per allocation measurement (the method runs N and 2N). */
const ALLOC_CALLS: Record<"full" | "quick", Record<Size, number>> = {
  full: { ping: 20_000, feed: 500, page: 40, batch: 500, numeric: 500, maps: 500, text: 500, nested: 500, log: 500 },
  quick: { ping: 10_000, feed: 100, page: 10, batch: 100, numeric: 100, maps: 100, text: 100, nested: 100, log: 100 },
};

interface Options extends RoundOptions {
  /** Runs only the tasks whose name ("<size> <op> <label>") matches. */
  filter: RegExp | undefined;
  generic: boolean;
}

const USAGE = `usage: bench/codec/run.ts [--time <ms>] [--rounds <n>] [--quick] [--filter <regexp>] [--generic]
${ROUND_USAGE}
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
  return {
    ...roundOptions(values, USAGE),
    generic: values.generic === true,
    filter: values.filter === undefined ? undefined : new RegExp(values.filter),
  };
}

async function main(): Promise<void> {
  const opts = options();
  const started = performance.now();
  const load = loadAverageAtStart();
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

  const entries: Entry[] = [];
  for (const [f, subjects] of bound) {
    for (const op of OPS) {
      for (const s of subjects) {
        for (const t of s.tasks.filter((x) => x.op === op)) {
          const name = `${f.size} ${op} ${t.label}`;
          if (opts.filter && !opts.filter.test(name)) continue;
          entries.push({ name, size: f.size, op, label: t.label, library: s.library, run: t.run });
        }
      }
    }
  }

  const { results, timerOverheadMs } = runRounds(entries, opts);
  sideEffect();
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

  const report: Report = {
    meta: {
      ...machineMeta(load, opts.quick),
      options: { ...opts, filter: opts.filter?.source, callsPerSample: CALLS_PER_SAMPLE, allocationCalls: allocCalls },
      timerOverheadNs: timerOverheadMs * 1e6,
      seconds,
      baseline: BASELINE,
      versions: Object.fromEntries(
        ["protobufjs", "@bufbuild/protobuf", "@bufbuild/protoc-gen-es", "msgpackr", "tinybench"].map((p) => [p, packageVersion(p)]),
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
