/**
 * The registry benchmark (`npm run bench:registry`): three regions on one machine with a one-way
 * latency between them (tools/linkproxy), against the embedded store (a registry server in one
 * region, reached over TCP through the links) and against a 3-member etcd cluster (one member
 * per region). It measures:
 *
 * - propagation: from a registry write's acknowledgement until every other region's watch-fed
 *   cache holds it (p50, p99, max over the writes);
 * - fallback: with a region cut off, how long until a client's linearizable reads are served by
 *   its own region with the fallback headers and its writes fail fast; after the heal, how long
 *   until reads are served by the primary again and writes accepted. Two scenarios: the
 *   observer's own region cut off (it loses the primary and the registry), and the primary
 *   region cut off (seen from another region).
 *
 * Targets (checked here, never in tests): propagation p99 <= one-way latency + 8 ms; fallback
 * within one call timeout. Writes bench/results/registry.json and prints a table.
 *
 *   --quick             CI mode: fewer writes and one cycle per scenario (under 30 s)
 *   --stores a,b        embedded,embedded-demo,etcd (default all three; etcd is skipped when not
 *                       installed). embedded: the registry server in the primary's region (us-east);
 *                       embedded-demo: in eu-west, where the demo runs it (the primary's own writes
 *                       then cross a link)
 *   --writes <n>        measured writes per store (default 300; quick 30)
 *   --load <n>          background writes per second under the same prefix while measuring
 *                       propagation, as the demo's traffic makes (default 30; 0 for none)
 *   --cycles <n>        cut-and-heal cycles per scenario (default 3; quick 1)
 *   --latency <ms>      one-way latency between regions (default 30)
 *   --timeout <ms>      call timeout of the routed clients (default 1000)
 *   --out <dir>         where to write registry.json (default bench/results)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { findEtcd } from "../../test/support/etcd-cluster.js";
import { measureFallback, measurePropagation, type FallbackCycle, type FallbackScenario, type PropagationSample } from "./measure.js";
import { REGIONS, startTopology, type StoreKind } from "./topology.js";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    stores: { type: "string" },
    writes: { type: "string" },
    load: { type: "string" },
    cycles: { type: "string" },
    latency: { type: "string" },
    timeout: { type: "string" },
    out: { type: "string" },
  },
});

const quick = args.quick === true;
const latencyMs = Number(args.latency ?? 30);
const callTimeoutMs = Number(args.timeout ?? 1000);
const writes = Number(args.writes ?? (quick ? 30 : 300));
const loadPerSecond = Number(args.load ?? 30);
const cycles = Number(args.cycles ?? (quick ? 1 : 3));
const holdMs = quick ? 500 : 1500;
const outDir = args.out ?? fileURLToPath(new URL("../results/", import.meta.url));
/** A store and, for the embedded one, where its server runs. */
type BenchStore = "embedded" | "embedded-demo" | "etcd";
const BENCH_STORES: readonly BenchStore[] = ["embedded", "embedded-demo", "etcd"];
/** The topology of each: embedded-demo places the registry server as the demo does, in eu-west. */
const TOPOLOGY: Record<BenchStore, { store: StoreKind; registryRegion?: number }> = {
  embedded: { store: "embedded" },
  "embedded-demo": { store: "embedded", registryRegion: REGIONS.indexOf("eu-west") },
  etcd: { store: "etcd" },
};
const requested = (args.stores?.split(",") ?? [...BENCH_STORES]) as BenchStore[];
for (const s of requested) if (!BENCH_STORES.includes(s)) throw new Error(`unknown store ${s}; choose from ${BENCH_STORES.join(", ")}`);

/** Targets, for the table and the JSON (a benchmark reports; it does not gate). */
const targets = { propagationP99Ms: latencyMs + 8, fallbackMs: callTimeoutMs };

const SCENARIOS: readonly FallbackScenario[] = [
  { name: `${REGIONS[1]} cut off (own region)`, cut: 1, observer: 1 },
  { name: `${REGIONS[0]} cut off (primary)`, cut: 0, observer: 1 },
];

/** The q-quantile (0..1) of sorted values, nearest rank. */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function stats(values: readonly number[]): { n: number; p50: number; p99: number; max: number; mean: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return { n: sorted.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? NaN, mean };
}

const round = (v: number | undefined, digits = 1) => (v === undefined || Number.isNaN(v) ? undefined : Math.round(v * 10 ** digits) / 10 ** digits);

interface StoreResult {
  store: BenchStore;
  propagation: {
    writes: number;
    missed: number;
    /** Writes that failed or needed resolving (retried, not timed). */
    failedWrites: number;
    /** The slowest other region per write, ms after the acknowledgement. */
    propagationMs: ReturnType<typeof stats>;
    /** Per writer region. */
    byWriter: Record<string, ReturnType<typeof stats>>;
    /** The writers' own acknowledgement latency. */
    ackMs: ReturnType<typeof stats>;
    /** Writes slower than the target. */
    overTarget: number;
    /** This process's event-loop delay meanwhile (a loaded machine shows here). */
    eventLoopDelayMs: { p99: number; max: number };
    meetsTarget: boolean;
  };
  fallback: ((FallbackCycle & { meetsTarget: boolean; error?: undefined }) | { scenario: string; error: string; meetsTarget: false })[];
  startupMs: number;
}

async function runStore(store: BenchStore): Promise<StoreResult> {
  const started = performance.now();
  const topology = await startTopology({ ...TOPOLOGY[store], latencyMs, callTimeoutMs });
  const startupMs = performance.now() - started;
  try {
    const prop = await measurePropagation(topology, { writes, warmup: 3, loadPerSecond });
    const byWriter: Record<string, ReturnType<typeof stats>> = {};
    for (const region of REGIONS) {
      const mine = prop.samples.filter((s: PropagationSample) => s.writer === region).map((s) => s.propagationMs);
      if (mine.length > 0) byWriter[region] = stats(mine);
    }
    const propagationMs = stats(prop.samples.map((s) => s.propagationMs));
    const fallback: StoreResult["fallback"] = [];
    for (const scenario of SCENARIOS) {
      for (let c = 0; c < cycles; c++) {
        try {
          const cycle = await measureFallback(topology, scenario, { holdMs });
          fallback.push({ ...cycle, meetsTarget: cycle.fallbackMs !== undefined && cycle.fallbackMs <= targets.fallbackMs });
        } catch (e) {
          console.error(`bench:registry: ${store}, ${scenario.name}: ${e instanceof Error ? e.message : String(e)}`);
          fallback.push({ scenario: scenario.name, error: e instanceof Error ? e.message : String(e), meetsTarget: false });
        }
        // Let leases, links and the etcd cluster settle between cycles.
        await topology.cluster?.waitHealthy(20_000);
      }
    }
    return {
      store,
      propagation: {
        writes: prop.samples.length,
        missed: prop.missed,
        failedWrites: prop.failedWrites,
        propagationMs,
        byWriter,
        ackMs: stats(prop.samples.map((s) => s.ackMs)),
        overTarget: prop.samples.filter((s) => s.propagationMs > targets.propagationP99Ms).length,
        eventLoopDelayMs: prop.eventLoopDelayMs,
        meetsTarget: prop.missed === 0 && propagationMs.p99 <= targets.propagationP99Ms,
      },
      fallback,
      startupMs,
    };
  } finally {
    await topology.close();
  }
}

function printTable(results: readonly StoreResult[]): void {
  const f = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "-" : v.toFixed(1));
  const lines: string[] = [];
  lines.push(
    `\nRegistry benchmark: ${REGIONS.length} regions, one-way latency ${latencyMs} ms, call timeout ${callTimeoutMs} ms, ${loadPerSecond} background writes/s${quick ? " (quick)" : ""}; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} on ${cpus().length} CPUs`,
  );
  lines.push(`\nPropagation (ack -> every other region's cache), ms; target p99 <= ${targets.propagationP99Ms}`);
  lines.push("| store | writes | missed | failed | p50 | p99 | max | over target | ack p50 | ack p99 | loop delay p99 | target |");
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of results) {
    const p = r.propagation;
    lines.push(
      `| ${r.store} | ${p.writes} | ${p.missed} | ${p.failedWrites} | ${f(p.propagationMs.p50)} | ${f(p.propagationMs.p99)} | ${f(p.propagationMs.max)} | ${p.overTarget} | ${f(p.ackMs.p50)} | ${f(p.ackMs.p99)} | ${f(p.eventLoopDelayMs.p99)} | ${p.meetsTarget ? "met" : "MISSED"} |`,
    );
  }
  lines.push("\nBy writer region, propagation p50 / p99 ms:");
  for (const r of results) {
    lines.push(`  ${r.store}: ${Object.entries(r.propagation.byWriter).map(([w, s]) => `${w} ${f(s.p50)} / ${f(s.p99)}`).join(", ")}`);
  }
  lines.push(`\nFallback and recovery (observer ${REGIONS[1]}), ms; target: fallback <= ${targets.fallbackMs}`);
  lines.push("| store | scenario | fallback | its call | x-stale-ms | writes fail fast | reads recover | writes recover | failed reads | target |");
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of results) {
    for (const c of r.fallback) {
      if (c.error !== undefined) {
        lines.push(`| ${r.store} | ${c.scenario} | failed: ${c.error} | | | | | | | MISSED |`);
        continue;
      }
      lines.push(
        `| ${r.store} | ${c.scenario} | ${f(c.fallbackMs)} | ${f(c.firstFallbackCallMs)} | ${c.staleHeader ?? "-"} | ${f(c.writeFailFastMs)} | ${f(c.recoverMs)} | ${f(c.writeRecoverMs)} | ${c.failedReads}/${c.reads} | ${c.meetsTarget ? "met" : "MISSED"} |`,
      );
    }
  }
  console.log(lines.join("\n"));
}

const wallStart = performance.now();
const stores = requested.filter((s) => {
  if (s === "etcd" && !findEtcd()) {
    console.warn("bench:registry: etcd is not installed (bash scripts/setup.sh); skipping the etcd store");
    return false;
  }
  return true;
});
const results: StoreResult[] = [];
const failures: { store: BenchStore; error: string }[] = [];
for (const store of stores) {
  console.log(`bench:registry: ${store} ...`);
  try {
    results.push(await runStore(store));
  } catch (e) {
    console.error(`bench:registry: ${store} failed:`, e);
    failures.push({ store, error: e instanceof Error ? e.message : String(e) });
  }
}
printTable(results);

const rounded = JSON.parse(JSON.stringify(results, (_k, v: unknown) => (typeof v === "number" ? round(v, 2) : v))) as unknown;
mkdirSync(outDir, { recursive: true });
const file = join(outDir, "registry.json");
writeFileSync(
  file,
  JSON.stringify(
    {
      meta: {
        date: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        loadavg: loadavg().map((l) => round(l, 2)),
        quick,
        regions: REGIONS,
        latencyMs,
        callTimeoutMs,
        writes,
        loadPerSecond,
        cycles,
        holdMs,
        wallSeconds: round((performance.now() - wallStart) / 1000, 1),
      },
      targets,
      results: rounded,
      failures,
    },
    null,
    2,
  ) + "\n",
);
console.log(`\nwrote ${file} in ${((performance.now() - wallStart) / 1000).toFixed(1)} s`);
// Lingering sockets of closed clients must not keep the benchmark alive.
process.exit(failures.length === 0 ? 0 : 1);
