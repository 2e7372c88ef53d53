/**
 * The server-streaming throughput case of the RPC benchmark on Meridian's TCP transport: one call
 * of bench.Stream/Videos (proto/stream.proto, the same case as grpc-stream.ts) streams the 20
 * videos of the codec benchmark's feed over and over, as fast as the stream's credit lets it, and
 * the client counts what it receives; messages/s and MB/s (protobuf payload bytes) over the
 * measured period, for:
 *
 * - meridian-tcp: a typed server-streaming handler of createServer (an async generator) and a
 *   typed server-streaming call of createClient, over the TCP transport (TTHeader Streaming);
 * - meridian-tcp-seam: the TCP transport alone, through the seam (a StreamDispatcher sending, a
 *   ClientStream's responses pulled): what the transport costs.
 *
 * `runTcpStreamBench` (called by run.ts when a Meridian TCP peer is benchmarked) forks this file
 * once as the server process (`tcp-stream.ts serve-tcp`: both servers, on their own ports) and runs
 * the clients in the calling process: client and server in two processes, as for the unary cases.
 */
import { fileURLToPath } from "node:url";
import { Cancellation, createClient, createServer, RpcError } from "meridian-rpc";
import { type StreamDispatcher, messageWriter } from "meridian-rpc/transport";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { Video } from "../codec/gen/feed.js";
import { failedRun, measuredRun, StreamService, type StreamResult } from "./grpc-stream.js";
import { meridianMessages } from "./service.js";
import { forkStreamServers, serveStreamServers } from "./stream-servers.js";

/** The peers of the TCP streaming case. */
export const TCP_STREAM_PEERS = ["meridian-tcp", "meridian-tcp-seam"] as const;
export type TcpStreamPeer = (typeof TCP_STREAM_PEERS)[number];

/** What one streaming run measured: grpc-stream.ts's StreamResult, for a TCP peer (streams share one connection). */
export type TcpStreamResult = Omit<StreamResult, "peer"> & { peer: TcpStreamPeer };

const videos = meridianMessages().feed.items;

// ---------------------------------------------------------------------------------------------
// Servers (run in the forked child)

/** The seam peer's dispatcher: sends videos until the call is cancelled. */
const sendVideos: StreamDispatcher = async (stream) => {
  try {
    for (let i = 0; !stream.signal.aborted; i++) {
      const v = videos[i % videos.length]!;
      await stream.send((w) => Video.encodeTo(v, w));
    }
  } catch (e) {
    if (!(e instanceof RpcError)) throw e;
  }
  return {};
};

async function serve(peer: TcpStreamPeer): Promise<{ address: string; close(): Promise<void> }> {
  if (peer === "meridian-tcp-seam") {
    const server = new TcpServerTransport({ host: "127.0.0.1" });
    const { address } = await server.listen(async () => ({ headers: { "rpc-status": "12", "rpc-message": "streams only" } }), sendVideos);
    return { address, close: () => server.close(100) };
  }
  const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), metrics: false, asyncContext: false });
  server.register(StreamService, {
    videos: async function* () {
      for (let i = 0; ; i++) yield videos[i % videos.length]!;
    },
  });
  const { address } = await server.listen();
  return { address, close: () => server.close({ graceMs: 100 }) };
}

// Not "serve": grpc-stream.ts, imported above for its descriptor, answers to that one.
if (process.argv[2] === "serve-tcp") {
  const servers = await Promise.all(TCP_STREAM_PEERS.map((p) => serve(p)));
  serveStreamServers(servers);
}

// ---------------------------------------------------------------------------------------------
// Clients (run in the calling process)

/** Opens `streams` calls, counts the messages of each from `warmupMs` on for `durationMs`, then cancels them. */
async function measure(peer: TcpStreamPeer, address: string, streams: number, warmupMs: number, durationMs: number): Promise<{ messages: number; seconds: number }> {
  let measuring = false;
  let messages = 0;
  let stop = false;
  const transport = new TcpClientTransport({ address });
  await transport.warmUp([{ address }]);
  const { ping } = meridianMessages();
  let runs: Promise<void>[];
  if (peer === "meridian-tcp") {
    const client = createClient(StreamService, { transport, endpoints: [{ address }] });
    runs = Array.from({ length: streams }, async () => {
      for await (const _ of client.videos(ping)) {
        if (measuring) messages++;
        if (stop) break;
      }
    });
  } else {
    runs = Array.from({ length: streams }, async () => {
      const s = transport.stream({
        service: StreamService.typeName,
        method: StreamService.methods.videos,
        headers: {},
        deadline: undefined,
        signal: new Cancellation(),
        endpoint: undefined,
      });
      await s.send(messageWriter(StreamService.methods.videos.input, ping));
      await s.closeSend();
      // Decoded as the runtime does (the transport hands over bytes).
      for await (const bytes of s.responses) {
        Video.decode(bytes);
        if (measuring) messages++;
        if (stop) break;
      }
    });
  }
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.race([Promise.allSettled(runs), new Promise((r) => setTimeout(r, 5000))]);
  await transport.close();
  return { messages, seconds };
}

/** Runs the TCP streaming case for each peer and number of streams; prints and returns the results. */
export async function runTcpStreamBench(opts: {
  peers: readonly TcpStreamPeer[];
  streams: readonly number[];
  warmupMs: number;
  durationMs: number;
  execArgv: string[];
}): Promise<TcpStreamResult[]> {
  const results: TcpStreamResult[] = [];
  const messageBytes = videos.reduce((n, v) => n + Video.encode(v).length, 0) / videos.length;
  console.log(`\nServer-streaming throughput over TCP (bench.Stream/Videos: the feed's videos, ${messageBytes.toFixed(0)} B each on average):`);
  const child = forkStreamServers(fileURLToPath(import.meta.url), ["serve-tcp"], opts.execArgv, "the TCP stream server");
  const fail = (peer: TcpStreamPeer, streams: number, e: unknown): void => void results.push(failedRun(peer, streams, messageBytes, e));
  try {
    const addresses = await child.addresses;
    for (const peer of opts.peers) {
      for (const streams of opts.streams) {
        try {
          const r = await measure(peer, addresses[TCP_STREAM_PEERS.indexOf(peer)]!, streams, opts.warmupMs, opts.durationMs);
          results.push(measuredRun(peer, streams, r, messageBytes, 17));
        } catch (e) {
          fail(peer, streams, e);
        }
      }
    }
  } catch (e) {
    for (const peer of opts.peers) fail(peer, 0, e);
  } finally {
    await child.stop();
  }
  return results;
}
