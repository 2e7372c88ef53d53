/**
 * What the runtime adds per call on each side, in one process, without sockets (`npm run
 * bench:runtime`):
 *
 * - client: createClient's `echo` over a client transport that answers at once, against the seam
 *   alone (the request encoded into a writer, the response decoded: what bench:rpc's
 *   meridian-seam load generator does around the transport);
 * - server: createServer's dispatcher (admission, run queue, context, stats and metrics, the
 *   handler) fed calls 64 at a time, as a socket read hands them over, against the seam's handler
 *   (the request decoded, the reply encoded).
 *
 * The difference is the runtime's own work per call. bench:rpc's CPU per call moves by 10-15%
 * between runs on a shared machine, more than most changes to the runtime are worth; these
 * figures move by a few percent, so they show such a change (docs/profile.md). Writes
 * bench/results/runtime.json.
 *
 *   --time <ms>     tinybench time per task and round (default 1500; --quick 150)
 *   --rounds <n>    rounds, the tasks interleaved in each (default 3); the median round is reported
 *   --quick         CI mode
 *   --dist          measure the built package (dist/, `npm run build` first) instead of the source
 *   --cpu-prof      a CPU profile of the run, in .tmp/prof/
 *   --out <dir>     where to write the results (default bench/results)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Bench, type Task } from "tinybench";
import { Cancellation, createClient, createServer } from "meridian-rpc";
import { Writer } from "meridian-rpc/runtime";
import {
  ReceivedResponse,
  decodeResponse,
  messageWriter,
  type CallDispatcher,
  type ClientTransport,
  type IncomingCall,
  type OutgoingReply,
  type ServerTransport,
  type TransportRequest,
} from "meridian-rpc/transport";
import { Ping } from "../codec/gen/feed.js";
import { childExecArgv, forkChild } from "./children.js";
import { EchoService, HEADERS, meridianMessages, seamReply } from "./service.js";

const { values: args } = parseArgs({
  options: {
    time: { type: "string" },
    rounds: { type: "string" },
    quick: { type: "boolean", default: false },
    dist: { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    out: { type: "string" },
    child: { type: "boolean", default: false },
  },
});

/** Calls in flight at once: bench:rpc's echo at concurrency 64. */
const CONCURRENCY = 64;
/** Calls per sample: the sample's time divided by these is one call's. */
const CALLS_PER_SAMPLE = 1024;

if (args.child !== true) {
  // The measuring runs in a child, so that it can load the package from its source or from dist/.
  const forwarded = process.argv.slice(2).filter((a) => a !== "--dist" && a !== "--cpu-prof");
  const child = forkChild(new URL(import.meta.url), [...forwarded, "--child"], childExecArgv(args.dist === true, args["cpu-prof"] === true));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  process.exit(code ?? 1);
}

const quick = args.quick === true;
const time = Number(args.time ?? (quick ? 150 : 1500));
const rounds = Number(args.rounds ?? 3);
const { ping } = meridianMessages();
const pingBytes = Ping.encode(ping);
const servedRegion = { "x-served-region": "cn-north" };
/** What each side encodes into, rewound every call: the bytes go nowhere. */
const writer = new Writer(64 * 1024);

/** A client transport that answers every call at once with the echo's response (it waits for nothing, so it times its calls). */
class AnsweringTransport implements ClientTransport {
  readonly settlesOnAbort = true;
  readonly timesCalls = true;
  unary(req: TransportRequest): Promise<ReceivedResponse> {
    writer.reset();
    req.encode(writer);
    return Promise.resolve(new ReceivedResponse(pingBytes, { ...servedRegion }));
  }
  async close(): Promise<void> {}
}

/** A server transport that only keeps the dispatcher it is given. */
class CapturingTransport implements ServerTransport {
  dispatch: CallDispatcher | undefined;
  async listen(dispatch: CallDispatcher): Promise<{ address: string }> {
    this.dispatch = dispatch;
    return { address: "in-process" };
  }
  async close(): Promise<void> {}
}

/** An echo call as the TCP transport hands it over: its headers its own copy, read `now`. */
class EchoCall implements IncomingCall {
  readonly service = EchoService.typeName;
  readonly method = "Echo";
  readonly headers = { ...HEADERS };
  readonly payload = pingBytes;
  readonly signal = new Cancellation();
  readonly peer = "127.0.0.1:40000";
  readonly waitedMs = 0;
  readonly deadline: number;
  constructor(readonly receivedAt: number) {
    this.deadline = receivedAt + 10_000;
  }
}

type Sample = { overriddenDuration: number; overriddenIterationCost: number };

/** A sample that took `spent` ms: one call's time is its duration, the whole of it what counts against the task's time. */
function perCall(spent: number): Sample {
  return { overriddenDuration: spent / CALLS_PER_SAMPLE, overriddenIterationCost: spent };
}

/** `call` CALLS_PER_SAMPLE times, CONCURRENCY at once; a sample is the time of one call. */
function clientSample(call: () => Promise<unknown>): () => Promise<Sample> {
  const worker = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await call();
  };
  return async () => {
    const t0 = performance.now();
    const workers: Promise<void>[] = [];
    for (let i = 0; i < CONCURRENCY; i++) workers.push(worker(CALLS_PER_SAMPLE / CONCURRENCY));
    await Promise.all(workers);
    return perCall(performance.now() - t0);
  };
}

/**
 * `serve` fed CALLS_PER_SAMPLE calls, CONCURRENCY at a time (a socket read's worth), each batch
 * once the one before is answered and the event loop has turned; a sample is the time of one call.
 */
function serverSample(serve: (call: EchoCall, answered: () => void) => void): () => Promise<Sample> {
  const batch = (): Promise<void> =>
    new Promise((resolve) => {
      let left = CONCURRENCY;
      const answered = (): void => {
        if (--left === 0) setImmediate(resolve);
      };
      const now = Date.now();
      for (let i = 0; i < CONCURRENCY; i++) serve(new EchoCall(now), answered);
    });
  return async () => {
    const t0 = performance.now();
    for (let i = 0; i < CALLS_PER_SAMPLE / CONCURRENCY; i++) await batch();
    return perCall(performance.now() - t0);
  };
}

const client = createClient(EchoService, {
  transport: new AnsweringTransport(),
  endpoints: [{ address: "in-process" }],
  region: "cn-north",
  consistency: "eventual",
  timeoutMs: 10_000,
});
const echo = EchoService.methods.echo;
const seamTransport = new AnsweringTransport();
/** What bench:rpc's meridian-seam load generator does around the transport (service.ts, seamCall). */
const seamClientCall = (): Promise<unknown> =>
  seamTransport
    .unary({
      service: EchoService.typeName,
      method: echo,
      encode: messageWriter(echo.input, ping),
      headers: { ...HEADERS },
      deadline: Date.now() + 10_000,
      signal: new Cancellation(),
      endpoint: undefined,
    })
    .then((res) => ({ message: decodeResponse(echo, EchoService.typeName, res.payload, res.headers), headers: res.headers }));

const serverTransport = new CapturingTransport();
await createServer({ transport: serverTransport, region: "cn-north" })
  .register(EchoService, { echo: (req) => req, feed: () => ({}) })
  .listen();
const to = serverTransport.dispatch!.to!;
const encodeReply = (reply: OutgoingReply): void => {
  writer.reset();
  reply.encode?.(writer);
};

const tasks: [name: string, fn: () => Promise<Sample>][] = [
  ["client runtime", clientSample(() => client.echo(ping))],
  ["client seam", clientSample(seamClientCall)],
  ["server runtime", serverSample((call, answered) => to(call, (_, reply) => (encodeReply(reply), answered())))],
  // What bench:rpc's meridian-seam server does with a call (peers.ts, seamServer), answered at once.
  ["server seam", serverSample((call, answered) => (encodeReply(seamReply(servedRegion, Ping, Ping.decode(call.payload))), answered()))],
];

/** ns per call of each task: the median round's mean and p99 (of samples, each a mean over a sample's calls). */
const runs: Task[][] = [];
for (let round = 0; round < rounds; round++) {
  const bench = new Bench({ time, warmupTime: round === 0 ? Math.min(500, time) : Math.min(100, time / 2), iterations: quick ? 4 : 16, warmupIterations: 4 });
  for (const [name, fn] of tasks) bench.add(name, fn);
  runs.push(await bench.run());
}

interface Row {
  task: string;
  meanNs: number;
  p99Ns: number;
  samples: number;
  rounds: number[];
}

const rows: Row[] = tasks.map(([name], i) => {
  const done = runs.map((r) => r[i]!.result).filter((r) => r.state === "completed");
  if (done.length === 0) throw new Error(`${name}: no round completed`);
  const sorted = done.map((r) => r.latency).sort((a, b) => a.mean - b.mean);
  const median = sorted[(sorted.length - 1) >> 1]!;
  return { task: name, meanNs: median.mean * 1e6, p99Ns: median.p99 * 1e6, samples: median.samplesCount, rounds: done.map((r) => r.latency.mean * 1e6) };
});
const byTask = (name: string): Row => rows.find((r) => r.task === name)!;
const overhead = {
  clientNs: byTask("client runtime").meanNs - byTask("client seam").meanNs,
  serverNs: byTask("server runtime").meanNs - byTask("server seam").meanNs,
};

console.log(`runtime per call, in process (${CONCURRENCY} in flight, ${rounds} rounds of ${time} ms per task, median round)`);
for (const r of rows) {
  console.log(`  ${r.task.padEnd(15)} ${r.meanNs.toFixed(0).padStart(6)} ns  p99 ${r.p99Ns.toFixed(0).padStart(6)} ns  rounds ${r.rounds.map((x) => x.toFixed(0)).join(" ")}`);
}
console.log(`  the runtime's own work: client ${overhead.clientNs.toFixed(0)} ns, server ${overhead.serverNs.toFixed(0)} ns a call`);

const outDir = args.out ?? fileURLToPath(new URL("../results/", import.meta.url));
mkdirSync(outDir, { recursive: true });
const meta = { date: new Date().toISOString(), node: process.version, quick, time, rounds, concurrency: CONCURRENCY, callsPerSample: CALLS_PER_SAMPLE };
writeFileSync(join(outDir, "runtime.json"), `${JSON.stringify({ meta, rows, overhead }, null, 2)}\n`);
console.log(`wrote ${join(outDir, "runtime.json")}`);
process.exit(0);
