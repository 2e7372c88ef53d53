/**
 * The Thrift peers of the RPC benchmark, on the service `Echo` of bench/codec/thrift/feed.thrift
 * (Echo(Ping) -> Ping, Feed(Ping) -> FeedResponse) with the same messages as the other peers:
 *
 * - meridian-thrift: createServer / createClient over Meridian's TCP transport with the code
 *   `meridian gen` made of feed.thrift (bench/codec/thrift/gen): TTHeader framing and Thrift
 *   Binary, as Kitex sends, with the same default client chain and 10 s timeout as `meridian`.
 * - apache-thrift: Apache Thrift's Node library (the `thrift` package) with the Thrift compiler's
 *   generated code (bench/codec/thrift/gen-apache): its createServer and createConnection over
 *   TFramedTransport and TBinaryProtocol, calls pipelined on one connection per client as its
 *   client does (replies matched by sequence id).
 */
import { createRequire } from "node:module";
import { createClient, createServer } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { fixtures, type Fixture } from "../codec/data.js";
import { Echo, type FeedResponse, type Ping } from "../codec/thrift/gen/feed.js";
import { apache, apacheMessage, generated, meridianMessage, type ApacheStruct } from "../codec/thrift/messages.js";
import type { BenchClient, BenchServer, CaseName } from "./service.js";

/** Names of the Thrift peers, in report order. */
export const THRIFT_PEERS = ["meridian-thrift", "apache-thrift"] as const;
export type ThriftPeerName = (typeof THRIFT_PEERS)[number];

/** The ping and feed fixtures, 64-bit integers as bigint (Meridian) or as numbers (for Apache's Int64). */
function messages(): { ping: Fixture & { kind: "ping" }; feed: Fixture & { kind: "feed" } } {
  const all = fixtures();
  return {
    ping: all.find((f): f is Fixture & { kind: "ping" } => f.size === "ping" && f.kind === "ping")!,
    feed: all.find((f): f is Fixture & { kind: "feed" } => f.size === "feed" && f.kind === "feed")!,
  };
}

// ---------------------------------------------------------------------------------------------
// Apache Thrift's Node library: the parts used here (untyped CommonJS).

interface ApacheServer {
  listen(port: number, host: string): void;
  on(event: "listening", listener: () => void): void;
  address(): { port: number };
  close(done: () => void): void;
}

interface ApacheConnection {
  on(event: "connect" | "error", listener: (e?: Error) => void): void;
  end(): void;
}

interface ApacheEchoClient {
  Echo(ping: ApacheStruct): Promise<unknown>;
  Feed(ping: ApacheStruct): Promise<unknown>;
}

interface ApacheRpc {
  createServer(service: unknown, handler: object, options: object): ApacheServer;
  createConnection(host: string, port: number, options: object): ApacheConnection;
  createClient(service: unknown, connection: ApacheConnection): ApacheEchoClient;
  TFramedTransport: unknown;
  TBinaryProtocol: unknown;
}

const require = createRequire(import.meta.url);
const rpc = apache as unknown as ApacheRpc;
const ApacheEcho = require("../codec/thrift/gen-apache/Echo.js") as unknown;
const WIRE = { transport: rpc.TFramedTransport, protocol: rpc.TBinaryProtocol };

// ---------------------------------------------------------------------------------------------

/** Starts the server of `peer`. */
export async function startThriftPeerServer(peer: ThriftPeerName): Promise<BenchServer> {
  const { feed } = messages();
  if (peer === "apache-thrift") {
    const answer = apacheMessage(feed.data);
    // One parameter each: Apache's processor calls a handler of one parameter promise-style, others with a callback.
    const server = rpc.createServer(ApacheEcho, { Echo: (ping: unknown) => ping, Feed: (_ping: unknown) => answer }, WIRE);
    await new Promise<void>((resolve) => {
      server.on("listening", resolve);
      server.listen(0, "127.0.0.1");
    });
    return { address: `127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(() => r())) };
  }
  const answer = meridianMessage(feed.bigint) as unknown as FeedResponse;
  const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), region: "cn-north" }).register(Echo, {
    Echo: ({ ping }) => ping!,
    Feed: () => answer,
  });
  const { address } = await server.listen();
  return { address, close: () => server.close({ graceMs: 100 }) };
}

/** Connects a client of `peer` for one case. */
export async function thriftPeerClient(peer: ThriftPeerName, address: string, name: CaseName): Promise<BenchClient> {
  const { ping } = messages();
  if (peer === "apache-thrift") {
    const port = Number(address.slice(address.lastIndexOf(":") + 1));
    const connection = rpc.createConnection("127.0.0.1", port, WIRE);
    await new Promise<void>((resolve, reject) => {
      connection.on("connect", () => resolve());
      connection.on("error", (e) => reject(e));
    });
    const client = rpc.createClient(ApacheEcho, connection);
    const request = new generated.Ping({ region: ping.data.region, seq: new apache.Int64(ping.data.seq), consistency: ping.data.consistency });
    return { call: name === "echo" ? () => client.Echo(request) : () => client.Feed(request), close: async () => connection.end() };
  }
  const transport = new TcpClientTransport();
  const endpoints = [{ address }];
  await transport.warmUp(endpoints);
  const client = createClient(Echo, { transport, endpoints, region: "cn-north", consistency: "eventual", timeoutMs: 10_000 });
  const request: Ping = { region: ping.bigint.region, seq: ping.bigint.seq, consistency: ping.bigint.consistency };
  return { call: name === "echo" ? () => client.Echo({ ping: request }) : () => client.Feed({ ping: request }), close: () => transport.close() };
}

/** Meridian's Thrift over TCP against Apache Thrift's Node library, for one case and concurrency. */
export interface ThriftRatio {
  name: CaseName;
  concurrency: number;
  throughputVsApache: number;
  p99VsApache: number;
}

/** The ratios of every meridian-thrift run to the apache-thrift run of the same case and concurrency. */
export function thriftRatios(
  results: readonly { peer: string; name: CaseName; concurrency: number; rps: number; p99Us: number; requests: number }[],
): ThriftRatio[] {
  const out: ThriftRatio[] = [];
  for (const m of results) {
    if (m.peer !== "meridian-thrift" || m.requests === 0) continue;
    const a = results.find((r) => r.peer === "apache-thrift" && r.name === m.name && r.concurrency === m.concurrency);
    if (a === undefined || a.requests === 0) continue;
    out.push({ name: m.name, concurrency: m.concurrency, throughputVsApache: m.rps / a.rps, p99VsApache: m.p99Us / a.p99Us });
  }
  return out;
}
