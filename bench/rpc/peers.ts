/**
 * The peers of the RPC benchmark, each as a server (run in the server process) and a client
 * factory (run in the load process):
 *
 * - meridian: createServer / createClient over the TCP transport: the framework path users get.
 * - meridian-tls: the same over TLS (certificates from tools/certs): what encryption costs.
 * - meridian-seam: the TCP transport driven through the ClientTransport / ServerTransport seam
 *   with a minimal dispatcher: what the transport itself costs.
 * - grpc-js: @grpc/grpc-js with @grpc/proto-loader, what Node users run today.
 * - raw: a length-prefixed echo over node:net answering canned bytes of the real response's
 *   size: the floor (no framing headers, no encoding or decoding, no dispatch).
 * - nats, nats-seam, nats-raw: the NATS transport and its floor (nats-peer.ts).
 * - meridian-grpc, meridian-grpc-seam: the gRPC transport, against grpc-js on the same messages
 *   (grpc-peer.ts).
 * - meridian-thrift, apache-thrift: a Thrift service over Meridian's TCP transport, against Apache
 *   Thrift's Node library on the same messages (thrift-peer.ts).
 */
import { createServer as createNetServer, connect as netConnect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createClient, createServer } from "meridian-rpc";
import type { IncomingCall, OutgoingReply } from "meridian-rpc/transport";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { FeedResponse, Ping } from "../codec/gen/feed.js";
import { EchoService, HEADERS, caseData, meridianMessages, seamCall, seamReply, type BenchClient, type BenchServer, type CaseName } from "./service.js";
import { NATS_PEERS, natsPeerClient, startNatsPeerServer } from "./nats-peer.js";
import { GRPC_PEERS, grpcPeerClient, startGrpcPeerServer } from "./grpc-peer.js";
import { THRIFT_PEERS, startThriftPeerServer, thriftPeerClient } from "./thrift-peer.js";

/** Names of the peers, in report order. */
export const PEERS = ["meridian", "meridian-tls", "meridian-seam", "grpc-js", "raw", ...NATS_PEERS, ...GRPC_PEERS, ...THRIFT_PEERS] as const;
export type PeerName = (typeof PEERS)[number];

export type { BenchClient, BenchServer } from "./service.js";

// ---------------------------------------------------------------------------------------------
// Meridian

/**
 * The certificates of the meridian-tls peer: made by run.ts (tools/certs) and handed to both child
 * processes in MERIDIAN_BENCH_TLS as JSON PEM text.
 */
function benchTls(): { ca: string; cert: string; key: string } {
  const json = process.env.MERIDIAN_BENCH_TLS;
  if (json === undefined) throw new Error("meridian-tls needs MERIDIAN_BENCH_TLS (set by bench/rpc/run.ts)");
  return JSON.parse(json) as { ca: string; cert: string; key: string };
}

async function meridianServer(tls = false): Promise<BenchServer> {
  const { feed } = meridianMessages();
  const certs = tls ? benchTls() : undefined;
  const transport = new TcpServerTransport({ host: "127.0.0.1", ...(certs && { tls: { cert: certs.cert, key: certs.key } }) });
  const server = createServer({ transport, region: "cn-north" }).register(EchoService, {
    echo: (req) => req,
    feed: () => feed,
  });
  const { address } = await server.listen();
  return { address, close: () => server.close({ graceMs: 100 }) };
}

async function meridianClient(address: string, name: CaseName, tls = false): Promise<BenchClient> {
  const { ping } = meridianMessages();
  const transport = new TcpClientTransport(tls ? { tls: { ca: benchTls().ca } } : {});
  const endpoints = [{ address }];
  await transport.warmUp(endpoints);
  const client = createClient(EchoService, { transport, endpoints, region: "cn-north", consistency: "eventual", timeoutMs: 10_000 });
  const call = name === "echo" ? () => client.echo(ping) : () => client.feed(ping);
  return { call, close: () => transport.close() };
}

async function seamServer(): Promise<BenchServer> {
  const { feed } = meridianMessages();
  const transport = new TcpServerTransport({ host: "127.0.0.1" });
  const headers = { "x-served-region": "cn-north" };
  const { address } = await transport.listen(async (call: IncomingCall): Promise<OutgoingReply> => {
    const ping = Ping.decode(call.payload);
    return call.method === "Echo" ? seamReply(headers, Ping, ping) : seamReply(headers, FeedResponse, feed);
  });
  return { address, close: () => transport.close(100) };
}

async function seamClient(address: string, name: CaseName): Promise<BenchClient> {
  const transport = new TcpClientTransport({ address });
  await transport.warmUp([{ address }]);
  return { call: seamCall(transport, name, undefined), close: () => transport.close() };
}

// ---------------------------------------------------------------------------------------------
// grpc-js

const PROTO_DIRS = [fileURLToPath(new URL("./proto", import.meta.url)), fileURLToPath(new URL("../codec/proto", import.meta.url))];

/** bench.Echo as @grpc/proto-loader loads it (int64 as strings, defaults filled in). */
export function grpcService(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync("echo.proto", { includeDirs: PROTO_DIRS, longs: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { bench: { Echo: grpc.ServiceClientConstructor } };
  return pkg.bench.Echo;
}

async function grpcServer(): Promise<BenchServer> {
  const { feed } = caseData();
  const server = new grpc.Server();
  server.addService(grpcService().service, {
    Echo: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, call.request),
    Feed: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, feed),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

async function grpcClient(address: string, name: CaseName): Promise<BenchClient> {
  const { ping } = caseData();
  const Echo = grpcService();
  const client = new Echo(address, grpc.credentials.createInsecure());
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));
  const method = (name === "echo" ? client.Echo : client.Feed).bind(client) as (
    req: unknown,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res: unknown) => void,
  ) => void;
  const call = () =>
    new Promise((resolve, reject) => {
      const md = new grpc.Metadata();
      md.set("x-region-id", HEADERS["x-region-id"]);
      md.set("x-consistency-level", HEADERS["x-consistency-level"]);
      method(ping, md, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  return {
    call,
    close: async () => client.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// raw: 4-byte big-endian length, then the bytes; answered in order.

function rawFrames(): { request: Buffer; echo: Buffer; feed: Buffer } {
  const { ping, feed } = meridianMessages();
  const frame = (body: Uint8Array): Buffer => {
    const b = Buffer.allocUnsafe(body.length + 4);
    b.writeUInt32BE(body.length, 0);
    b.set(body, 4);
    return b;
  };
  const request = frame(Ping.encode(ping));
  return { request, echo: request, feed: frame(FeedResponse.encode(feed)) };
}

/**
 * Splits a length-prefixed stream: frames inside a chunk are handed out in place, split ones are
 * assembled. `onFrame` gets the whole frame, prefix included.
 */
function rawReader(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer | undefined;
  return (chunk) => {
    let buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    pending = undefined;
    let p = 0;
    while (buf.length - p >= 4) {
      const end = p + 4 + buf.readUInt32BE(p);
      if (end > buf.length) break;
      onFrame(buf.subarray(p, end));
      p = end;
    }
    if (p < buf.length) pending = buf.subarray(p);
    buf = chunk;
  };
}

/**
 * Writes through `socket.cork()`, uncorked once per tick, and early after 16 frames, then 64
 * more, 256 more: the TCP transport's batching (transports/tcp/connection.ts), so that the floor
 * lets both processes work at once as the transport does.
 */
function corkingWriter(socket: Socket): (b: Buffer) => void {
  let corked = false;
  let frames = 0;
  let flushAfter = 16;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  return (b) => {
    if (!corked) {
      corked = true;
      frames = 0;
      flushAfter = 16;
      socket.cork();
      process.nextTick(uncork);
    }
    socket.write(b);
    if (++frames >= flushAfter) {
      frames = 0;
      flushAfter *= 4;
      socket.uncork();
      socket.cork();
    }
  };
}

async function rawClient(address: string, name: CaseName): Promise<BenchClient> {
  const frames = rawFrames();
  const [host, port] = address.split(":");
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect({ host: host!, port: Number(port), noDelay: true }, () => resolve(s));
    s.once("error", reject);
  });
  const waiting: ((b: Buffer) => void)[] = [];
  let head = 0;
  socket.on(
    "data",
    rawReader((frame) => {
      const resolve = waiting[head]!;
      waiting[head++] = undefined as never;
      if (head > 4096 && head * 2 > waiting.length) {
        waiting.splice(0, head);
        head = 0;
      }
      resolve(frame);
    }),
  );
  const write = corkingWriter(socket);
  // The feed case sends a request flagged by its first body byte so the server answers with the feed.
  const request = name === "echo" ? frames.request : Buffer.from(frames.request);
  if (name === "feed") request[4] = 0x00;
  const call = () =>
    new Promise<Buffer>((resolve) => {
      waiting.push(resolve);
      write(request);
    });
  return { call, close: async () => void socket.destroy() };
}

// ---------------------------------------------------------------------------------------------

/** Starts the server of `peer`. */
export function startPeerServer(peer: PeerName): Promise<BenchServer> {
  switch (peer) {
    case "meridian":
      return meridianServer();
    case "meridian-tls":
      return meridianServer(true);
    case "meridian-seam":
      return seamServer();
    case "grpc-js":
      return grpcServer();
    case "raw":
      return rawServer();
    case "meridian-grpc":
    case "meridian-grpc-seam":
      return startGrpcPeerServer(peer);
    case "meridian-thrift":
    case "apache-thrift":
      return startThriftPeerServer(peer);
    default:
      return startNatsPeerServer(peer);
  }
}

/** Connects a client of `peer` for one case. */
export function peerClient(peer: PeerName, address: string, name: CaseName): Promise<BenchClient> {
  switch (peer) {
    case "meridian":
      return meridianClient(address, name);
    case "meridian-tls":
      return meridianClient(address, name, true);
    case "meridian-seam":
      return seamClient(address, name);
    case "grpc-js":
      return grpcClient(address, name);
    case "raw":
      return rawClient(address, name);
    case "meridian-grpc":
    case "meridian-grpc-seam":
      return grpcPeerClient(peer, address, name);
    case "meridian-thrift":
    case "apache-thrift":
      return thriftPeerClient(peer, address, name);
    default:
      return natsPeerClient(peer, address, name);
  }
}

/** The raw server: echoes a Ping request, answers a feed request (first body byte 0) with the feed's bytes. */
async function rawServer(): Promise<BenchServer> {
  const frames = rawFrames();
  const server = createNetServer({ noDelay: true }, (socket) => {
    const write = corkingWriter(socket);
    socket.on("data", rawReader((frame) => write(frame[4] === 0x00 ? frames.feed : frame)));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { address: `127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

