/**
 * The RPC benchmark (`npm run bench:rpc`): unary Echo(Ping) and Feed calls over loopback, the
 * server and the load generator in separate processes, for Meridian (framework path and bare
 * transport), @grpc/grpc-js and a raw length-prefixed echo (the floor), Meridian's Thrift against
 * Apache Thrift's Node library, at several concurrency levels. Writes bench/results/rpc.json and bench/results/rpc.svg.
 *
 *   --duration <s>      measured seconds per run (default 5)
 *   --warmup <s>        warm-up seconds per run (default 1)
 *   --quick             CI mode: 0.25 s runs, 0.1 s warm-up, meridian-grpc-seam left out (under a minute in all)
 *   --peers a,b         subset of meridian,meridian-tls,meridian-seam,grpc-js,raw,nats,nats-seam,nats-raw,meridian-grpc,
 *                       meridian-grpc-seam,meridian-thrift,apache-thrift
 *   --cases echo,feed   subset of the cases
 *   --concurrency 1,64  concurrency levels (default 1,64,256)
 *   --streams 1,8       open streams of the server-streaming case (grpc-stream.ts, when meridian-grpc
 *                       or grpc-js is benchmarked; tcp-stream.ts, when meridian or meridian-seam is;
 *                       default 1,8, with --quick 1); "" skips it
 *   --cpu-prof          run the children with --cpu-prof (profiles in .tmp/prof/)
 *   --dist              the children load meridian-rpc from the built dist/ (`npm run build` first),
 *                       as an installed package runs, instead of from the TypeScript source through
 *                       tsx (whose esbuild keeps function names by wrapping every closure the hot
 *                       path creates in a __name call: docs/profile.md)
 *   --out <dir>         where to write the results (default bench/results)
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { renderChart, type ChartPoint } from "./chart.js";
import { childExecArgv, forkChild, next, stop } from "./children.js";
import type { LoadResult, RunSpec } from "./load.js";
import { natsRatios } from "./nats-peer.js";
import { GRPC_QUICK_SKIP, grpcRatios } from "./grpc-peer.js";
import { thriftRatios } from "./thrift-peer.js";
import { STREAM_PEERS, runStreamBench } from "./grpc-stream.js";
import { TCP_STREAM_PEERS, runTcpStreamBench } from "./tcp-stream.js";
import { PEERS, type PeerName } from "./peers.js";
import type { ServerStats } from "./server.js";
import { CASES, type CaseName } from "./service.js";
import { makeCerts } from "../../tools/certs/index.js";

const { values: args } = parseArgs({
  options: {
    duration: { type: "string" },
    warmup: { type: "string" },
    quick: { type: "boolean", default: false },
    peers: { type: "string" },
    cases: { type: "string" },
    concurrency: { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    dist: { type: "boolean", default: false },
    streams: { type: "string" },
    out: { type: "string" },
  },
});

const quick = args.quick === true;
const durationMs = Math.round(1000 * Number(args.duration ?? (quick ? 0.25 : 5)));
const warmupMs = Math.round(1000 * Number(args.warmup ?? (quick ? 0.1 : 1)));
const peers = (args.peers?.split(",") ?? PEERS.filter((p) => !(quick && GRPC_QUICK_SKIP.includes(p)))) as PeerName[];
const cases = (args.cases?.split(",") ?? [...CASES]) as CaseName[];
const concurrencies = (args.concurrency ?? "1,64,256").split(",").map(Number);
const outDir = args.out ?? fileURLToPath(new URL("../results/", import.meta.url));
for (const p of peers) if (!PEERS.includes(p)) throw new Error(`unknown peer ${p}; choose from ${PEERS.join(", ")}`);

/** One measured run. */
interface RunResult extends LoadResult {
  peer: PeerName;
  name: CaseName;
  concurrency: number;
  server: ServerStats;
}

const execArgv = childExecArgv(args.dist === true, args["cpu-prof"] === true);

function child(script: string, peer: PeerName): ChildProcess {
  return forkChild(new URL(script, import.meta.url), [peer], execArgv);
}

async function benchPeer(peer: PeerName, results: RunResult[], failures: string[]): Promise<void> {
  const server = child("./server.ts", peer);
  const load = child("./load.ts", peer);
  try {
    const { address } = await next<{ address: string }>(server, "ready", 20_000);
    await next(load, "ready", 20_000);
    for (const name of cases) {
      for (const concurrency of concurrencies) {
        const spec: RunSpec = { address, name, concurrency, warmupMs, durationMs };
        load.send({ type: "run", spec });
        const limit = warmupMs + durationMs + 30_000;
        await next(load, "warm", limit);
        server.send({ type: "reset" });
        const { result } = await next<{ result: LoadResult }>(load, "result", limit);
        server.send({ type: "stats" });
        const { stats } = await next<{ stats: ServerStats }>(server, "stats", 5000);
        const r: RunResult = { peer, name, concurrency, ...result, server: stats };
        results.push(r);
        console.log(
          `${peer.padEnd(14)} ${name.padEnd(5)} c=${String(concurrency).padEnd(4)} ${fmt(r.rps).padStart(9)} req/s  p50 ${us(r.p50Us)}  p99 ${us(r.p99Us)}  p999 ${us(r.p999Us)}  server ELD p99 ${r.server.eventLoopDelayP99Ms.toFixed(1)} ms  RSS ${r.server.rssMB.toFixed(0)} MB  CPU/call ${cpuPerCall(r)}${r.errors ? `  errors ${r.errors} (${r.firstError})` : ""}`,
        );
      }
    }
  } catch (e) {
    const msg = `${peer}: ${e instanceof Error ? e.message : String(e)}`;
    failures.push(msg);
    console.error(`failed: ${msg}`);
  } finally {
    await Promise.all([stop(load), stop(server)]);
  }
}

/**
 * CPU time per answered call, µs, of the load generator and of the server, each over its own view
 * of the measured part: steadier than requests/s on a shared machine, where a run's throughput
 * moves by a quarter with how the two processes happen to take turns.
 */
function cpuPerCall(r: RunResult): string {
  if (r.requests === 0) return "-";
  return `client ${(r.cpuUs / r.requests).toFixed(2)} µs, server ${(r.server.cpuUs / r.requests).toFixed(2)} µs`;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function us(v: number): string {
  return (v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(0)} µs`).padStart(9);
}

/** Meridian against each peer for one case and concurrency. */
interface Ratio {
  name: CaseName;
  concurrency: number;
  meridian: PeerName;
  throughputVsGrpc?: number;
  throughputVsRaw?: number;
  p99VsGrpc?: number;
}

function ratios(results: RunResult[]): Ratio[] {
  const out: Ratio[] = [];
  for (const meridian of ["meridian", "meridian-seam"] as const) {
    for (const name of cases) {
      for (const concurrency of concurrencies) {
        const find = (p: PeerName) => results.find((r) => r.peer === p && r.name === name && r.concurrency === concurrency);
        const m = find(meridian);
        if (m === undefined) continue;
        const g = find("grpc-js");
        const raw = find("raw");
        const measured = (r: RunResult | undefined): r is RunResult => r !== undefined && r.requests > 0;
        out.push({
          name,
          concurrency,
          meridian,
          throughputVsGrpc: measured(g) ? m.rps / g.rps : undefined,
          throughputVsRaw: measured(raw) ? m.rps / raw.rps : undefined,
          p99VsGrpc: measured(g) && m.requests > 0 ? m.p99Us / g.p99Us : undefined,
        });
      }
    }
  }
  return out;
}

if (peers.includes("meridian-tls")) {
  const certs = makeCerts();
  if (certs === undefined) throw new Error("the meridian-tls peer needs openssl to make its certificates (scripts/setup.sh installs it)");
  process.env.MERIDIAN_BENCH_TLS = JSON.stringify({ ca: certs.ca.toString(), cert: certs.serverCert.toString(), key: certs.serverKey.toString() });
}

/** TCP with TLS against plaintext, the framework path both, per case and concurrency. */
interface TlsRatio {
  name: CaseName;
  concurrency: number;
  throughputVsPlaintext: number;
  p99VsPlaintext: number;
}

function tlsRatios(results: RunResult[]): TlsRatio[] {
  const out: TlsRatio[] = [];
  for (const r of results) {
    if (r.peer !== "meridian-tls" || r.requests === 0) continue;
    const plain = results.find((p) => p.peer === "meridian" && p.name === r.name && p.concurrency === r.concurrency);
    if (plain === undefined || plain.requests === 0) continue;
    out.push({ name: r.name, concurrency: r.concurrency, throughputVsPlaintext: r.rps / plain.rps, p99VsPlaintext: r.p99Us / plain.p99Us });
  }
  return out;
}

const results: RunResult[] = [];
const failures: string[] = [];
const started = Date.now();
console.log(
  `RPC benchmark: ${peers.join(", ")} | cases ${cases.join(", ")} | concurrency ${concurrencies.join(", ")} | ${durationMs} ms per run after ${warmupMs} ms warm-up | ${cpus().length} CPUs, Node ${process.version}`,
);
for (const peer of peers) await benchPeer(peer, results, failures);

const rs = ratios(results);
console.log("\nMeridian vs peers (throughput ratio; p99 ratio, lower is better):");
for (const r of rs) {
  const x = (v: number | undefined, d = 2): string => (v === undefined ? "-" : v.toFixed(d));
  console.log(
    `  ${r.meridian.padEnd(14)} ${r.name.padEnd(5)} c=${String(r.concurrency).padEnd(4)} ${x(r.throughputVsGrpc, 1)}x grpc-js  ${x(r.throughputVsRaw)} of raw  p99 ${x(r.p99VsGrpc, 3)} of grpc-js`,
  );
}
const tlsRs = tlsRatios(results);
if (tlsRs.length > 0) console.log("\nTCP with TLS vs plaintext (framework path both; targets: >= 0.70 of the throughput, p99 <= 1.5x):");
for (const r of tlsRs) {
  console.log(`  meridian-tls   ${r.name.padEnd(5)} c=${String(r.concurrency).padEnd(4)} ${r.throughputVsPlaintext.toFixed(2)} of plaintext  p99 ${r.p99VsPlaintext.toFixed(2)}x plaintext`);
}
const natsRs = natsRatios(results);
if (natsRs.length > 0) console.log("\nNATS transport vs the raw request/reply floor (same NATS client):");
for (const r of natsRs) {
  const x = (v: number | undefined, d = 2): string => (v === undefined ? "-" : v.toFixed(d));
  console.log(`  ${r.peer.padEnd(14)} ${r.name.padEnd(5)} c=${String(r.concurrency).padEnd(4)} ${x(r.throughputVsRaw)} of nats-raw  p99 ${x(r.p99VsRaw)}x nats-raw`);
}
const grpcRs = grpcRatios(results);
if (grpcRs.length > 0) console.log("\nMeridian's gRPC transport vs plain grpc-js (same HTTP/2 library, same messages):");
for (const r of grpcRs) {
  const x = (v: number | undefined, d = 2): string => (v === undefined ? "-" : v.toFixed(d));
  console.log(`  ${r.peer.padEnd(14)} ${r.name.padEnd(5)} c=${String(r.concurrency).padEnd(4)} ${x(r.throughputVsGrpc)}x grpc-js  p99 ${x(r.p99VsGrpc)}x grpc-js`);
}
const thriftRs = thriftRatios(results);
if (thriftRs.length > 0) console.log("\nMeridian's Thrift over TCP (TTHeader, Binary) vs Apache Thrift's Node library (framed, Binary), same messages:");
for (const r of thriftRs) {
  console.log(`  meridian-thrift ${r.name.padEnd(5)} c=${String(r.concurrency).padEnd(4)} ${r.throughputVsApache.toFixed(2)}x apache-thrift  p99 ${r.p99VsApache.toFixed(2)}x apache-thrift`);
}
const streamCounts = (args.streams ?? (quick ? "1" : "1,8")).split(",").filter((s) => s !== "").map(Number);
const streamPeers = STREAM_PEERS.filter((p) => peers.includes(p));
const streaming =
  streamCounts.length > 0 && streamPeers.length > 0 ? await runStreamBench({ peers: streamPeers, streams: streamCounts, warmupMs, durationMs, execArgv }) : [];
const tcpStreaming =
  streamCounts.length > 0 && (peers.includes("meridian") || peers.includes("meridian-seam"))
    ? await runTcpStreamBench({ peers: TCP_STREAM_PEERS, streams: streamCounts, warmupMs, durationMs, execArgv })
    : [];
for (const r of [...streaming, ...tcpStreaming]) if (r.error !== undefined) failures.push(`stream ${r.peer}: ${r.error}`);
const target = rs.find((r) => r.meridian === "meridian" && r.name === "echo" && r.concurrency === 64);
const targets = target && {
  case: "echo, concurrency 64, framework path",
  throughputVsGrpc: { want: ">= 15", got: target.throughputVsGrpc, met: (target.throughputVsGrpc ?? 0) >= 15 },
  throughputVsRaw: { want: ">= 0.70", got: target.throughputVsRaw, met: (target.throughputVsRaw ?? 0) >= 0.7 },
  p99VsGrpc: { want: "<= 0.10", got: target.p99VsGrpc, met: (target.p99VsGrpc ?? Infinity) <= 0.1 },
};

mkdirSync(outDir, { recursive: true });
const meta = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  durationMs,
  warmupMs,
  quick,
  wallSeconds: (Date.now() - started) / 1000,
};
writeFileSync(`${outDir}/rpc.json`, JSON.stringify({ meta, results, ratios: rs, tlsRatios: tlsRs, natsRatios: natsRs, grpcRatios: grpcRs, thriftRatios: thriftRs, streaming: [...streaming, ...tcpStreaming], targets, failures }, null, 2) + "\n");
const points: ChartPoint[] = results.map((r) => ({ peer: r.peer, name: r.name, concurrency: r.concurrency, rps: r.rps, p99Us: r.p99Us }));
writeFileSync(
  `${outDir}/rpc.svg`,
  renderChart(points, cases, `${meta.date.slice(0, 10)} · Node ${meta.node} · ${meta.cpus} CPUs · ${durationMs / 1000} s per run · server and load generator in separate processes`),
);
console.log(`\nwrote ${join(outDir, "rpc.json")} and rpc.svg in ${meta.wallSeconds.toFixed(0)} s`);
if (failures.length > 0) process.exitCode = 1;
