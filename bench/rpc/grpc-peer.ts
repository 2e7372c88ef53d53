/**
 * The gRPC-transport peer of the RPC benchmark:
 *
 * - meridian-grpc: createServer / createClient over Meridian's gRPC transport (transports/grpc,
 *   on @grpc/grpc-js with Meridian's codecs as the serializers), the same default client chain
 *   and 10 s timeout as `meridian`. Its counterpart is `grpc-js` (peers.ts): the same HTTP/2
 *   library with @grpc/proto-loader (protobufjs) on the same messages, so the difference is the
 *   codec and what each side does per call.
 *
 * - meridian-grpc-seam: the gRPC transport alone, driven through the ClientTransport /
 *   ServerTransport seam with a minimal dispatcher (what the transport and codec cost, without
 *   the runtime's middleware and AsyncLocalStorage context).
 *
 * `grpcRatios` compares them with grpc-js for run.ts's report. The server-streaming throughput
 * case is in grpc-stream.ts.
 */
import { createClient, createServer } from "meridian-rpc";
import type { IncomingCall, OutgoingReply } from "meridian-rpc/transport";
import { GrpcClientTransport, GrpcServerTransport } from "meridian-rpc/transports/grpc";
import { FeedResponse, Ping } from "../codec/gen/feed.js";
import { EchoService, meridianMessages, seamCall, type BenchClient, type BenchServer, type CaseName } from "./service.js";

/** Names of the gRPC-transport peers, in report order. */
export const GRPC_PEERS = ["meridian-grpc", "meridian-grpc-seam"] as const;
export type GrpcPeerName = (typeof GRPC_PEERS)[number];
/** Peers left out of `--quick` unless named in `--peers` (CI keeps the whole quick run under a minute). */
export const GRPC_QUICK_SKIP: readonly string[] = ["meridian-grpc-seam"];


/** Starts the server of `peer`. */
export async function startGrpcPeerServer(peer: GrpcPeerName): Promise<BenchServer> {
  const { feed } = meridianMessages();
  const transport = new GrpcServerTransport({ host: "127.0.0.1", services: [EchoService] });
  if (peer === "meridian-grpc-seam") {
    const headers = { "x-served-region": "cn-north" };
    const encodeFeed = (w: Parameters<NonNullable<OutgoingReply["encode"]>>[0]): void => FeedResponse.encodeTo(feed, w);
    const { address } = await transport.listen(async (call: IncomingCall): Promise<OutgoingReply> => {
      const msg = Ping.decode(call.payload);
      return { headers: { ...headers }, encode: call.method === "Echo" ? (w) => Ping.encodeTo(msg, w) : encodeFeed };
    });
    return { address, close: () => transport.close(100) };
  }
  const server = createServer({ transport, region: "cn-north" });
  server.register(EchoService, { echo: (req) => req, feed: () => feed });
  const { address } = await server.listen();
  return { address, close: () => server.close({ graceMs: 100 }) };
}

/** Connects a client of `peer` for one case (one HTTP/2 channel). */
export async function grpcPeerClient(peer: GrpcPeerName, address: string, name: CaseName): Promise<BenchClient> {
  const transport = new GrpcClientTransport();
  const endpoints = [{ address }];
  await transport.warmUp(endpoints);
  if (peer === "meridian-grpc-seam") return { call: seamCall(transport, name, endpoints[0]), close: () => transport.close() };
  const { ping } = meridianMessages();
  const client = createClient(EchoService, { transport, endpoints, region: "cn-north", consistency: "eventual", timeoutMs: 10_000 });
  return { call: name === "echo" ? () => client.echo(ping) : () => client.feed(ping), close: () => transport.close() };
}

/** Meridian over gRPC against plain grpc-js, for one case and concurrency. */
export interface GrpcRatio {
  name: CaseName;
  concurrency: number;
  peer: GrpcPeerName;
  throughputVsGrpc: number | undefined;
  p99VsGrpc: number | undefined;
}

/** The ratios of every meridian-grpc run to the grpc-js run of the same case and concurrency. */
export function grpcRatios(
  results: readonly { peer: string; name: CaseName; concurrency: number; rps: number; p99Us: number; requests: number }[],
): GrpcRatio[] {
  const out: GrpcRatio[] = [];
  for (const m of results) {
    if (m.peer !== "meridian-grpc" && m.peer !== "meridian-grpc-seam") continue;
    const g = results.find((r) => r.peer === "grpc-js" && r.name === m.name && r.concurrency === m.concurrency);
    const ok = g !== undefined && g.requests > 0 && m.requests > 0;
    out.push({
      name: m.name,
      concurrency: m.concurrency,
      peer: m.peer,
      throughputVsGrpc: ok ? m.rps / g.rps : undefined,
      p99VsGrpc: ok ? m.p99Us / g.p99Us : undefined,
    });
  }
  return out;
}
