/**
 * The NATS peers of the RPC benchmark. Each server starts its own nats-server (the harness of
 * test/support/nats-cluster.ts, on a free port of 127.0.0.1) and reports its URL as the address;
 * the load process connects its client there.
 *
 * - nats: createServer / createClient over the NATS transport (the framework path).
 * - nats-seam: the NATS transport alone, through the ClientTransport / ServerTransport seam.
 * - nats-raw: the floor: `nc.request()` of the same NATS client against a subscription that
 *   answers canned bytes of the real response's size (the request itself for echo), no headers,
 *   no encoding, no decoding, no dispatch.
 */
import { connect } from "@nats-io/transport-node";
import { createClient, createServer } from "meridian-rpc";
import { NatsClientTransport, NatsServerTransport } from "meridian-rpc/transports/nats";
import { startNatsCluster } from "../../test/support/nats-cluster.js";
import { FeedResponse, Ping } from "../codec/gen/feed.js";
import { EchoService, meridianMessages, seamCall, seamReply, type BenchClient, type BenchServer, type CaseName } from "./service.js";

/** Names of the NATS peers, in report order. */
export const NATS_PEERS = ["nats", "nats-seam", "nats-raw"] as const;
export type NatsPeerName = (typeof NATS_PEERS)[number];

/** Connection options of every NATS client of the benchmark, the floor's included. */
const CONNECT = { noAsyncTraces: true, maxReconnectAttempts: -1 };

/** Starts nats-server and the server of `peer` on it. */
export async function startNatsPeerServer(peer: NatsPeerName): Promise<BenchServer> {
  const cluster = await startNatsCluster();
  const url = cluster.urls[0]!;
  let stopServer: () => Promise<void>;
  try {
    stopServer = peer === "nats" ? await frameworkServer(url) : peer === "nats-seam" ? await seamServer(url) : await rawServer(url);
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return {
    address: url,
    close: async () => {
      await stopServer();
      await cluster.stop();
    },
  };
}

/** Connects a client of `peer` for one case. */
export function natsPeerClient(peer: NatsPeerName, url: string, name: CaseName): Promise<BenchClient> {
  return peer === "nats" ? frameworkClient(url, name) : peer === "nats-seam" ? seamClient(url, name) : rawClient(url, name);
}

async function frameworkServer(url: string): Promise<() => Promise<void>> {
  const { feed } = meridianMessages();
  const server = createServer({ transport: new NatsServerTransport({ servers: url, services: [EchoService], connectOptions: CONNECT }), region: "cn-north" });
  server.register(EchoService, { echo: (req) => req, feed: () => feed });
  await server.listen();
  return () => server.close({ graceMs: 100 });
}

async function frameworkClient(url: string, name: CaseName): Promise<BenchClient> {
  const { ping } = meridianMessages();
  const transport = new NatsClientTransport({ servers: url, connectOptions: CONNECT });
  await transport.warmUp();
  const client = createClient(EchoService, { transport, region: "cn-north", consistency: "eventual", timeoutMs: 10_000 });
  return { call: name === "echo" ? () => client.echo(ping) : () => client.feed(ping), close: () => transport.close() };
}

async function seamServer(url: string): Promise<() => Promise<void>> {
  const { feed } = meridianMessages();
  const transport = new NatsServerTransport({ servers: url, services: [EchoService], connectOptions: CONNECT });
  const served = { "x-served-region": "cn-north" };
  await transport.listen(async (call) => {
    const ping = Ping.decode(call.payload);
    return call.method === "Echo" ? seamReply(served, Ping, ping) : seamReply(served, FeedResponse, feed);
  });
  return () => transport.close(100);
}

async function seamClient(url: string, name: CaseName): Promise<BenchClient> {
  const transport = new NatsClientTransport({ servers: url, connectOptions: CONNECT });
  await transport.warmUp();
  return { call: seamCall(transport, name, undefined), close: () => transport.close() };
}

async function rawServer(url: string): Promise<() => Promise<void>> {
  const { feed } = meridianMessages();
  const feedBytes = FeedResponse.encode(feed);
  const nc = await connect({ servers: url, ...CONNECT });
  nc.subscribe("raw.echo", { queue: "raw", callback: (_e, m) => void m.respond(m.data) });
  nc.subscribe("raw.feed", { queue: "raw", callback: (_e, m) => void m.respond(feedBytes) });
  await nc.flush();
  return () => nc.close();
}

async function rawClient(url: string, name: CaseName): Promise<BenchClient> {
  const { ping } = meridianMessages();
  const request = Ping.encode(ping);
  const nc = await connect({ servers: url, ...CONNECT });
  const subject = `raw.${name}`;
  const opts = { timeout: 10_000 };
  return { call: () => nc.request(subject, request, opts), close: () => nc.close() };
}

/** The NATS transport against the floor, for one case and concurrency. */
export interface NatsRatio {
  name: CaseName;
  concurrency: number;
  peer: "nats" | "nats-seam";
  throughputVsRaw?: number;
  p99VsRaw?: number;
}

/** Ratios of the NATS transport (framework path and seam) to the raw request/reply floor. */
export function natsRatios(
  results: readonly { peer: string; name: CaseName; concurrency: number; rps: number; p99Us: number; requests: number }[],
): NatsRatio[] {
  const out: NatsRatio[] = [];
  for (const peer of ["nats", "nats-seam"] as const) {
    for (const m of results) {
      if (m.peer !== peer) continue;
      const raw = results.find((r) => r.peer === "nats-raw" && r.name === m.name && r.concurrency === m.concurrency);
      const ok = raw !== undefined && raw.requests > 0 && m.requests > 0;
      out.push({
        name: m.name,
        concurrency: m.concurrency,
        peer,
        throughputVsRaw: ok ? m.rps / raw.rps : undefined,
        p99VsRaw: ok ? m.p99Us / raw.p99Us : undefined,
      });
    }
  }
  return out;
}
