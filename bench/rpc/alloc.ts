/**
 * Heap bytes allocated per call over a real socket: a bench:rpc peer's server and client in one
 * process on loopback, 64 calls in flight, under V8's sampling heap profiler (a sample per 128 B
 * on average, the objects collected since counted, as most of a call's are). Prints the bytes per
 * call of both sides together (the harness's own included), then by file and by allocating
 * function, so a change to the transport or the runtime shows where its bytes went. Unlike CPU
 * time on a shared machine, the figure is the same within a few percent from run to run. A
 * meridian server (`asyncContext` on) turns AsyncLocalStorage's promise hooks on for the whole
 * process, so here the client's promises pay them too (`promiseInitHook`), unlike bench:rpc's.
 *
 *   npm run build && node --import tsx bench/rpc/alloc.ts [peer] [--top <n>]
 *
 * `peer` is one of bench:rpc's (default meridian; meridian-seam, raw, ...). Loads the built
 * package, as users run it.
 */
import type { HeapProfiler } from "node:inspector";
import { Session } from "node:inspector/promises";
import { parseArgs } from "node:util";
import { peerClient, startPeerServer, type PeerName } from "./peers.js";

const { values, positionals } = parseArgs({ options: { top: { type: "string", default: "20" } }, allowPositionals: true });
const peer = (positionals[0] ?? "meridian") as PeerName;
const IN_FLIGHT = 64;
const ROUNDS = 3000;

const server = await startPeerServer(peer);
const client = await peerClient(peer, server.address, "echo");

/** `n` rounds of IN_FLIGHT calls at once. */
async function rounds(n: number): Promise<void> {
  for (let k = 0; k < n; k++) {
    const calls = new Array<Promise<unknown>>(IN_FLIGHT);
    for (let i = 0; i < IN_FLIGHT; i++) calls[i] = client.call();
    for (const c of calls) await c;
  }
}

/** A node of a sampled heap profile: the bytes allocated in a function, called from its parent. */
interface SampledNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampledNode[];
}

await rounds(ROUNDS); // warm-up: what V8 optimizes, and its allocation sites, settle first
const session = new Session();
session.connect();
// The two flags are the protocol's (V8 10.x on), not yet in @types/node's parameter type.
const sampling: HeapProfiler.StartSamplingParameterType & Record<string, unknown> = {
  samplingInterval: 128,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
};
await session.post("HeapProfiler.startSampling", sampling);
await rounds(ROUNDS);
const { profile } = (await session.post("HeapProfiler.stopSampling")) as { profile: { head: SampledNode } };
session.disconnect();

const calls = ROUNDS * IN_FLIGHT;
const byFile = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
const add = (m: Map<string, number>, k: string, v: number): void => void m.set(k, (m.get(k) ?? 0) + v);
const walk = (n: SampledNode): void => {
  if (n.selfSize > 0) {
    const file = n.callFrame.url.replace(/^.*\/(dist|bench|node_modules)\//, "$1/") || "(native)";
    add(byFile, file, n.selfSize);
    add(byFunction, `${n.callFrame.functionName || "(anonymous)"} ${file}:${n.callFrame.lineNumber + 1}`, n.selfSize);
    total += n.selfSize;
  }
  for (const c of n.children) walk(c);
};
walk(profile.head);

const top = Number(values.top);
const rows = (m: Map<string, number>): string =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${(v / calls).toFixed(0).padStart(7)} B  ${k}`)
    .join("\n");
console.log(`${peer}: ${(total / calls).toFixed(0)} B allocated per call, both sides and the harness (${calls} calls sampled)`);
console.log(`\nby file:\n${rows(byFile)}\n\nby function (inlined callees count in their caller; --no-turbo-inlining to split them):\n${rows(byFunction)}`);
await client.close();
await server.close();
