/**
 * Write throughput and acknowledgement latency of a durable embedded registry: the append-only
 * log (EmbeddedNode with `dataDir`, fsync always, group commit) against what it replaced, the
 * whole state rewritten as a snapshot file (temporary file, fsync, rename, folder fsync) before
 * every acknowledgement, group-committed the same way. Both in process, on the same disk, with
 * 1 000 and 10 000 keys already in the store, one writer and 32 concurrent writers.
 *
 *   node --conditions=meridian-source --import tsx bench/registry/durability.ts [--seconds <s>] [--out <dir>]
 *
 * Writes <out>/registry-durability.json (default bench/results) and prints a table.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EmbeddedNode, StateMachine, newWriteId } from "meridian-rpc/registry";
import { writeFileAtomic } from "../../runtime/registry/embedded/snapshot.js";

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const seconds = Number(arg("--seconds", args.includes("--quick") ? "0.5" : "3"));
const outDir = arg("--out", join(import.meta.dirname, "..", "results"));

/** A write, as each variant acknowledges it. */
type Write = (key: string, value: string) => Promise<void>;

/**
 * The snapshot rewrite the log replaced (the SnapshotWriter of runtime/registry/embedded/snapshot.ts
 * before the log): `persist(n)` resolves once a snapshot including mutation n is on disk, writes
 * arriving meanwhile sharing the next snapshot.
 */
function snapshotRewrite(path: string, machine: StateMachine): Write {
  let written = 0;
  let writing: Promise<void> | undefined;
  const persist = async (upTo: number) => {
    while (written < upTo) {
      writing ??= (async () => {
        const mutations = machine.mutations;
        await writeFileAtomic(path, JSON.stringify(machine.snapshot()));
        written = Math.max(written, mutations);
      })().finally(() => (writing = undefined));
      await writing;
    }
  };
  return async (key, value) => {
    machine.compareAndSet(key, value, 0, newWriteId());
    await persist(machine.mutations);
  };
}

interface Result {
  variant: "snapshot-rewrite" | "log";
  keys: number;
  writers: number;
  writes: number;
  writesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

async function measure(variant: Result["variant"], keys: number, writers: number, write: Write): Promise<Result> {
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      while (performance.now() < end) {
        const t = performance.now();
        await write(`bench/${w}/${n++}`, "x".repeat(200));
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    variant,
    keys,
    writers,
    writes: latencies.length,
    writesPerSec: Math.round(latencies.length / elapsed),
    p50Ms: +quantile(latencies, 0.5).toFixed(2),
    p99Ms: +quantile(latencies, 0.99).toFixed(2),
    maxMs: +latencies[latencies.length - 1]!.toFixed(2),
  };
}

/** A store value like an instance registration's. */
const registration = (i: number) => JSON.stringify({ service: "bench.Svc", region: "us-east", address: `10.0.${i >> 8}.${i & 255}:7000`, transport: "tcp", weight: 100, tags: {} });

const root = mkdtempSync(join(tmpdir(), "meridian-bench-durability-"));
const results: Result[] = [];
try {
  for (const keys of [1000, 10_000]) {
    for (const writers of [1, 32]) {
      {
        const machine = new StateMachine();
        for (let i = 0; i < keys; i++) machine.compareAndSet(`meridian/services/bench.Svc/${i}`, registration(i), 0, newWriteId());
        const dir = join(root, `snap-${keys}-${writers}`);
        mkdirSync(dir);
        const path = join(dir, "registry.json");
        await writeFileAtomic(path, JSON.stringify(machine.snapshot()));
        results.push(await measure("snapshot-rewrite", keys, writers, snapshotRewrite(path, machine)));
      }
      {
        const node = await EmbeddedNode.open({ dataDir: join(root, `log-${keys}-${writers}`), compactIntervalMs: 0 });
        for (let i = 0; i < keys; i++) node.machine.compareAndSet(`meridian/services/bench.Svc/${i}`, registration(i), 0, newWriteId());
        // Start from a snapshot of the preloaded keys, as a server that has compacted.
        await node.compact();
        results.push(await measure("log", keys, writers, async (key, value) => void (await node.compareAndSet(key, value, 0, newWriteId()))));
        await node.close();
      }
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

console.log(`durable embedded registry writes, ${seconds} s each (fsync before every acknowledgement, group commit)`);
console.log("variant           keys    writers  writes/s   p50 ms   p99 ms   max ms");
for (const r of results) {
  console.log(
    `${r.variant.padEnd(17)} ${String(r.keys).padStart(6)} ${String(r.writers).padStart(8)} ${String(r.writesPerSec).padStart(9)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${r.maxMs.toFixed(2).padStart(8)}`,
  );
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "registry-durability.json"), `${JSON.stringify({ date: new Date().toISOString(), seconds, results }, null, 2)}\n`);
