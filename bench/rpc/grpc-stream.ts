/**
 * The server-streaming throughput case of the RPC benchmark: one call of bench.Stream/Videos
 * (proto/stream.proto) streams the 20 videos of the codec benchmark's feed over and over, as
 * fast as HTTP/2 flow control lets it, and the client counts what it receives; messages/s and
 * MB/s (protobuf payload bytes) over the measured period, for:
 *
 * - meridian-grpc: a typed server-streaming handler of createServer (an async generator) and a
 *   typed server-streaming call of createClient, over Meridian's gRPC transport;
 * - grpc-js: @grpc/grpc-js with @grpc/proto-loader on both sides, the server writing with
 *   backpressure (waiting for 'drain' when `write()` returns false).
 *
 * `runStreamBench` (called by run.ts) forks this file once as the server process
 * (`grpc-stream.ts serve`, both peers' servers on their own ports) and runs the clients in the
 * calling process, one peer at a time: client and server in two processes, as for the unary
 * cases.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createClient, createServer } from "meridian-rpc";
import type { MethodDescriptor, ServiceDescriptor } from "meridian-rpc/runtime";
import { GrpcClientTransport, GrpcServerTransport } from "meridian-rpc/transports/grpc";
import { Ping, Video } from "../codec/gen/feed.js";
import { caseData, meridianMessages } from "./service.js";
import { forkStreamServers, serveStreamServers } from "./stream-servers.js";

/** The peers of the streaming case. */
export const STREAM_PEERS = ["meridian-grpc", "grpc-js"] as const;
export type StreamPeer = (typeof STREAM_PEERS)[number];

/** What one streaming run measured. */
export interface StreamResult {
  peer: StreamPeer;
  /** Streams open at once (one call each, on one channel). */
  streams: number;
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  /** Protobuf payload bytes received per second, in MB (10^6). */
  mbPerSecond: number;
  /** Mean encoded size of a message. */
  messageBytes: number;
  error?: string;
}

/** A run of `peer` that measured `messages` in `seconds`, as a result, printed as a report line (peer column `width` wide). */
export function measuredRun<P extends string>(
  peer: P,
  streams: number,
  r: { messages: number; seconds: number },
  messageBytes: number,
  width: number,
): Omit<StreamResult, "peer"> & { peer: P } {
  const result = {
    peer,
    streams,
    messages: r.messages,
    seconds: r.seconds,
    messagesPerSecond: r.messages / r.seconds,
    mbPerSecond: (r.messages * messageBytes) / r.seconds / 1e6,
    messageBytes,
  };
  console.log(
    `  ${peer.padEnd(width)} streams=${String(streams).padEnd(3)} ${Math.round(result.messagesPerSecond).toLocaleString("en-US").padStart(10)} msg/s  ${result.mbPerSecond.toFixed(1).padStart(7)} MB/s`,
  );
  return result;
}

/** A run of `peer` that failed with `e`, as a result, reported on stderr. */
export function failedRun<P extends string>(peer: P, streams: number, messageBytes: number, e: unknown): Omit<StreamResult, "peer"> & { peer: P } {
  const error = e instanceof Error ? e.message : String(e);
  console.error(`failed: stream ${peer} streams=${streams}: ${error}`);
  return { peer, streams, messages: 0, seconds: 0, messagesPerSecond: 0, mbPerSecond: 0, messageBytes, error };
}

/** bench.Stream as a Meridian service descriptor, as codegen would print it for stream.proto. */
export const StreamService = {
  typeName: "bench.Stream",
  methods: {
    videos: { name: "Videos", kind: "server_streaming", input: Ping, output: Video, idempotency: "IDEMPOTENCY_UNKNOWN" } as MethodDescriptor<
      typeof Ping,
      typeof Video
    > & { kind: "server_streaming" },
  },
} satisfies ServiceDescriptor;

const PROTO_DIRS = [fileURLToPath(new URL("./proto", import.meta.url)), fileURLToPath(new URL("../codec/proto", import.meta.url))];

function grpcStreamService(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync("stream.proto", { includeDirs: PROTO_DIRS, longs: String, defaults: true });
  return (grpc.loadPackageDefinition(def) as unknown as { bench: { Stream: grpc.ServiceClientConstructor } }).bench.Stream;
}

/** Mean encoded size of the streamed videos (the same bytes on both peers). */
function meanVideoBytes(): number {
  const { feed } = meridianMessages();
  return feed.items.reduce((n, v) => n + Video.encode(v).length, 0) / feed.items.length;
}

// ---------------------------------------------------------------------------------------------
// Servers (run in the forked child)

async function serve(peer: StreamPeer): Promise<{ address: string; close(): Promise<void> }> {
  if (peer === "meridian-grpc") {
    const videos = meridianMessages().feed.items;
    const server = createServer({ transport: new GrpcServerTransport({ host: "127.0.0.1", services: [StreamService] }), metrics: false });
    server.register(StreamService, {
      videos: async function* () {
        for (let i = 0; ; i++) yield videos[i % videos.length]!;
      },
    });
    const { address } = await server.listen();
    return { address, close: () => server.close({ graceMs: 100 }) };
  }
  const videos = caseData().feed.items;
  const server = new grpc.Server();
  server.addService(grpcStreamService().service, {
    Videos: async (call: grpc.ServerWritableStream<unknown, unknown>) => {
      for (let i = 0; !call.cancelled; i++) {
        if (!call.write(videos[i % videos.length])) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              call.off("drain", done);
              call.off("cancelled", done);
              resolve();
            };
            call.on("drain", done);
            call.on("cancelled", done);
          });
        }
      }
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

if (process.argv[2] === "serve") {
  const servers = await Promise.all(process.argv.slice(3).map((p) => serve(p as StreamPeer)));
  serveStreamServers(servers);
}

// ---------------------------------------------------------------------------------------------
// Clients (run in the calling process)

/** Opens `streams` calls, counts the messages of each from `warmupMs` on for `durationMs`, then cancels them. */
async function measure(peer: StreamPeer, address: string, streams: number, warmupMs: number, durationMs: number): Promise<{ messages: number; seconds: number }> {
  let measuring = false;
  let messages = 0;
  let stop = false;
  let close: () => Promise<void>;
  let runs: Promise<void>[];
  if (peer === "meridian-grpc") {
    const transport = new GrpcClientTransport();
    await transport.warmUp([{ address }]);
    const client = createClient(StreamService, { transport, endpoints: [{ address }] });
    const { ping } = meridianMessages();
    runs = Array.from({ length: streams }, async () => {
      for await (const _ of client.videos(ping)) {
        if (measuring) messages++;
        if (stop) break;
      }
    });
    close = () => transport.close();
  } else {
    const Stream = grpcStreamService();
    const client = new Stream(address, grpc.credentials.createInsecure());
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));
    const { ping } = caseData();
    const open = (client as unknown as { Videos(req: unknown): grpc.ClientReadableStream<unknown> }).Videos.bind(client);
    runs = Array.from(
      { length: streams },
      () =>
        new Promise<void>((resolve) => {
          const call = open(ping);
          call.on("data", () => {
            if (measuring) messages++;
            if (stop) call.cancel();
          });
          call.on("error", () => {});
          call.on("status", () => resolve());
        }),
    );
    close = async () => client.close();
  }
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.race([Promise.allSettled(runs), new Promise((r) => setTimeout(r, 5000))]);
  await close();
  return { messages, seconds };
}

/** Runs the streaming case for each peer and number of streams; prints and returns the results. */
export async function runStreamBench(opts: {
  peers: readonly StreamPeer[];
  streams: readonly number[];
  warmupMs: number;
  durationMs: number;
  execArgv: string[];
}): Promise<StreamResult[]> {
  const results: StreamResult[] = [];
  const messageBytes = meanVideoBytes();
  console.log(`\nServer-streaming throughput (bench.Stream/Videos: the feed's videos, ${messageBytes.toFixed(0)} B each on average):`);
  const child = forkStreamServers(fileURLToPath(import.meta.url), ["serve", ...opts.peers], opts.execArgv, "the stream server");
  try {
    const addresses = await child.addresses;
    for (const [i, peer] of opts.peers.entries()) {
      for (const streams of opts.streams) {
        try {
          const r = await measure(peer, addresses[i]!, streams, opts.warmupMs, opts.durationMs);
          results.push(measuredRun(peer, streams, r, messageBytes, 14));
        } catch (e) {
          results.push(failedRun(peer, streams, messageBytes, e));
        }
      }
    }
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    for (const peer of opts.peers) results.push({ peer, streams: 0, messages: 0, seconds: 0, messagesPerSecond: 0, mbPerSecond: 0, messageBytes, error });
    console.error(`failed: stream servers: ${error}`);
  } finally {
    await child.stop();
  }
  const ratio = (streams: number): number | undefined => {
    const m = results.find((r) => r.peer === "meridian-grpc" && r.streams === streams);
    const g = results.find((r) => r.peer === "grpc-js" && r.streams === streams);
    return m && g && g.messagesPerSecond > 0 ? m.messagesPerSecond / g.messagesPerSecond : undefined;
  };
  for (const s of opts.streams) {
    const x = ratio(s);
    if (x !== undefined) console.log(`  meridian-grpc streams=${s}: ${x.toFixed(2)}x grpc-js`);
  }
  return results;
}
