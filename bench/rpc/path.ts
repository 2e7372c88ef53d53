/**
 * The runtime's own cost per call, without sockets: createServer over a transport that hands it
 * prepared calls, and createClient over a transport that answers at once; 64 calls in flight,
 * CPU time per call (process.cpuUsage), seven rounds, their median. Each path is measured against
 * its seam alone in the same run, as bench:rpc's meridian-seam peer drives the transport: the
 * client's request encoded and response decoded, the server's request decoded and reply encoded.
 * The difference is the runtime's own work per call, which moves by a few percent between runs
 * where bench:rpc's CPU per call moves by 10-15%. For A/B work on the framework path
 * (docs/profile.md); the figures in bench/results come from bench:rpc.
 *
 *   npm run build && node --import tsx bench/rpc/path.ts [--no-async-context] [--burst <calls>] [--client-headers] [--async-handler] [--alloc]
 *
 * Loads the built package, as users run it (add --conditions=meridian-source for the source). The
 * client runs first: a server with `asyncContext` on turns on AsyncLocalStorage's promise hooks
 * for the whole process. `--burst` starts each path with that many calls at once before its
 * warm-up, as a fresh process's first traffic (docs/profile.md, "Sixth pass": what V8 may then
 * decide about the allocation sites of per-call objects). `--async-handler`: the server's handler
 * is an async function (it answers through a promise, as a handler that awaits does). `--alloc`:
 * also the heap bytes each path allocates per call (V8's sampling heap profiler, with the objects
 * already collected counted): unlike CPU time, the same from run to run within a few percent.
 */
import type { HeapProfiler } from "node:inspector";
import { Session } from "node:inspector/promises";
import { Cancellation, createClient, createServer, type ClientTransport, type ServerTransport } from "meridian-rpc";
import { Writer } from "meridian-rpc/runtime";
import type { CallDispatcher, IncomingCall, OutgoingReply } from "meridian-rpc/transport";
import { Ping } from "../codec/gen/feed.js";
import { EchoService, HEADERS, meridianMessages, seamCall, seamReply } from "./service.js";

const IN_FLIGHT = 64;
const ROUNDS = 3000;
const burstAt = process.argv.indexOf("--burst");
const BURST = burstAt < 0 ? 0 : Number(process.argv[burstAt + 1]);
const message = meridianMessages().ping;
const payload = Ping.encode(message);
/** Where requests and replies are encoded, rewound for each: the bytes go nowhere. */
const writer = new Writer(64 * 1024);
/** Median CPU per call of each path measured, ns. */
const medians = new Map<string, number>();
/** Heap bytes allocated per call of each path measured, with `--alloc`. */
const allocated = new Map<string, number>();
const ALLOC = process.argv.includes("--alloc");

/**
 * Measures `call`, which rejects when a call fails. The warm-up's failures are counted, not
 * fatal: a cold server sheds part of the first burst (its first calls compile the code, and a
 * call of the burst that waits longer than admission's 25 ms is refused), as a real one would.
 */
async function measure(name: string, call: () => Promise<unknown>): Promise<void> {
  const round = async (): Promise<void> => {
    const calls = new Array<Promise<unknown>>(IN_FLIGHT);
    for (let i = 0; i < IN_FLIGHT; i++) calls[i] = call();
    for (const c of calls) await c;
  };
  let warmUpFailures = 0;
  if (BURST > 0) await Promise.all(Array.from({ length: BURST }, () => call().catch(() => warmUpFailures++)));
  const warmUp = async (): Promise<void> => {
    const calls = new Array<Promise<unknown>>(IN_FLIGHT);
    for (let i = 0; i < IN_FLIGHT; i++) calls[i] = call().catch(() => warmUpFailures++);
    for (const c of calls) await c;
  };
  for (let i = 0; i < ROUNDS; i++) await warmUp();
  if (warmUpFailures > 0) console.log(`${name.padEnd(12)} ${warmUpFailures} calls of the warm-up failed (shed while cold)`);
  const perCall: number[] = [];
  for (let k = 0; k < 7; k++) {
    const before = process.cpuUsage();
    for (let i = 0; i < ROUNDS; i++) await round();
    const used = process.cpuUsage(before);
    perCall.push(((used.user + used.system) * 1000) / (ROUNDS * IN_FLIGHT));
  }
  perCall.sort((a, b) => a - b);
  medians.set(name, perCall[3]!);
  let bytes = "";
  if (ALLOC) {
    const b = await bytesPerCall(() => round());
    allocated.set(name, b);
    bytes = `, ${b.toFixed(0)} B allocated per call`;
  }
  console.log(`${name.padEnd(12)} ${perCall[3]!.toFixed(0)} ns CPU per call${bytes} (rounds: ${perCall.map((x) => x.toFixed(0)).join(" ")})`);
}

/**
 * Heap bytes allocated per call over ROUNDS rounds of `round`: the sampling heap profiler (a
 * sample every 128 bytes on average), counting the objects collected since, as most of a call's
 * are. The harness's own (a promise per round) is in it, the same for a path and its seam.
 */
async function bytesPerCall(round: () => Promise<void>): Promise<number> {
  const session = new Session();
  session.connect();
  try {
    // The two flags are the protocol's (V8 10.x on), not yet in @types/node's parameter type.
    const sampling: HeapProfiler.StartSamplingParameterType & Record<string, unknown> = {
      samplingInterval: 128,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    };
    await session.post("HeapProfiler.startSampling", sampling);
    for (let i = 0; i < ROUNDS; i++) await round();
    const { profile } = (await session.post("HeapProfiler.stopSampling")) as { profile: { head: SampledNode } };
    const total = (n: SampledNode): number => n.children.reduce((sum, c) => sum + total(c), n.selfSize);
    return total(profile.head) / (ROUNDS * IN_FLIGHT);
  } finally {
    session.disconnect();
  }
}

/** A node of a sampled heap profile: the bytes allocated in a function, called from its parent. */
interface SampledNode {
  selfSize: number;
  children: SampledNode[];
}

/**
 * The server's side measured on calls handed over as the TCP transport does: to createServer's
 * dispatcher (`asyncContext` as given), or with `seam` to what bench:rpc's meridian-seam server
 * does with a call (the request decoded, the reply made and encoded).
 */
async function serverPath(asyncContext: boolean, seam = false): Promise<void> {
  let dispatch: CallDispatcher | undefined;
  const transport: ServerTransport = {
    listen: async (d) => {
      dispatch = d;
      return { address: "in-process" };
    },
    close: async () => undefined,
  };
  const echo = process.argv.includes("--async-handler") ? async (req: typeof message) => req : (req: typeof message) => req;
  const server = createServer({ transport, region: "cn-north", asyncContext }).register(EchoService, { echo, feed: () => ({}) });
  await server.listen();
  const signal = new Cancellation();
  // A class, as a transport's calls are (TcpServerCall): an object literal here could be the
  // harness's own allocation site that V8 pretenures.
  class Call implements IncomingCall {
    readonly service = EchoService.typeName;
    readonly method = "Echo";
    readonly headers = { ...HEADERS };
    readonly payload = payload;
    readonly signal = signal;
    readonly peer = "127.0.0.1:1";
    readonly receivedAt = Date.now();
    readonly deadline = this.receivedAt + 10_000;
  }
  const incoming = (): IncomingCall => new Call();
  // As a transport hands calls over: through the dispatcher's sink when it has one (`to`), else
  // with a `then` on its promise (what the TCP transport did before it had one). A round's 64
  // calls share one promise, resolved by the last reply, so that the harness adds no promise per
  // call of its own.
  // The seam's reply headers, as peers.ts's seamServer keeps them (seamReply copies them per call).
  const served = { "x-served-region": "cn-north" };
  const d: CallDispatcher = seam
    ? Object.assign(() => Promise.reject(new Error("unused")), {
        to: <C extends IncomingCall>(call: C, answer: (call: C, reply: OutgoingReply) => void) =>
          answer(call, seamReply(served, Ping, Ping.decode(call.payload))),
      })
    : dispatch!;
  let pending = 0;
  let failure: Error | undefined;
  let roundDone: () => void = () => undefined;
  let round: Promise<void> = Promise.resolve();
  const sink = (_: IncomingCall, reply: OutgoingReply): void => {
    if (reply.encode === undefined) failure ??= new Error(`the call failed: ${JSON.stringify(reply.headers)}`);
    writer.reset();
    reply.encode?.(writer);
    if (--pending === 0) roundDone();
  };
  await measure(seam ? "server seam" : "server path", () => {
    if (pending === 0) {
      pending = IN_FLIGHT;
      round = new Promise<void>((resolve) => (roundDone = resolve)).then(() => {
        if (failure !== undefined) throw failure;
      });
    }
    const call = incoming();
    if (d.to !== undefined) d.to(call, sink);
    else void d(call).then((reply) => sink(call, reply));
    return round;
  });
}

/**
 * The client's side over a transport that encodes the request and answers at once: createClient's
 * `echo`, or with `seam` what bench:rpc's meridian-seam load generator does around the transport
 * (`seamCall`: the request encoded, the response decoded).
 */
async function clientPath(seam = false): Promise<void> {
  const answer = Promise.resolve({ payload, headers: {} });
  // It answers at once, so it settles on abort and times its calls as the TCP transport says it
  // does (no race and no deadline timer per call).
  const transport: ClientTransport = {
    unary: (req) => {
      writer.reset();
      req.encode(writer);
      return answer;
    },
    close: async () => undefined,
    settlesOnAbort: true,
    timesCalls: true,
  };
  if (seam) {
    await measure("client seam", seamCall(transport, "echo", undefined));
    return;
  }
  // `--client-headers`: default headers in the client's options, as an authorization token would be.
  const headers = process.argv.includes("--client-headers") ? { authorization: "Bearer 0123456789abcdef", "x-tenant": "t1" } : undefined;
  const client = createClient(EchoService, { transport, endpoints: [{ address: "127.0.0.1:1" }], region: "cn-north", consistency: "eventual", timeoutMs: 10_000, headers });
  await measure("client path", () => client.echo(message));
}

// The client first: once a server has run a call with asyncContext on, AsyncLocalStorage's promise
// hooks run for every promise of the process, the client's included (a service that is both pays that).
await clientPath(true);
await clientPath();
await serverPath(false, true);
await serverPath(!process.argv.includes("--no-async-context"));
const own = (path: string, seam: string): string => (medians.get(path)! - medians.get(seam)!).toFixed(0);
console.log(`the runtime's own work: client ${own("client path", "client seam")} ns, server ${own("server path", "server seam")} ns of CPU per call`);
if (ALLOC) {
  const bytes = (path: string, seam: string): string => (allocated.get(path)! - allocated.get(seam)!).toFixed(0);
  console.log(`the runtime's own allocation: client ${bytes("client path", "client seam")} B, server ${bytes("server path", "server seam")} B per call`);
}
