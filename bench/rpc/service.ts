/**
 * What the RPC benchmark calls: bench.Echo (bench/rpc/proto/echo.proto) as a Meridian service
 * descriptor, and the messages of each case, from the codec benchmark's fixtures.
 */
import { Cancellation, type ClientTransport, type Endpoint, type Headers } from "meridian-rpc";
import type { MessageCodec, MethodDescriptor, ServiceDescriptor } from "meridian-rpc/runtime";
import { decodeResponse, messageWriter, type OutgoingReply } from "meridian-rpc/transport";
import { fixtures, withBigInt, type FeedData, type PingData } from "../codec/data.js";
import { FeedResponse, Ping } from "../codec/gen/feed.js";

/** The service descriptor, as codegen would print it for echo.proto. */
export const EchoService = {
  typeName: "bench.Echo",
  methods: {
    echo: { name: "Echo", kind: "unary", input: Ping, output: Ping, idempotency: "IDEMPOTENCY_UNKNOWN" } as MethodDescriptor<typeof Ping, typeof Ping>,
    feed: { name: "Feed", kind: "unary", input: Ping, output: FeedResponse, idempotency: "NO_SIDE_EFFECTS" } as MethodDescriptor<typeof Ping, typeof FeedResponse>,
  },
} satisfies ServiceDescriptor;

/** The benchmark's cases: a unary echo of a Ping, and a Ping answered with the 20-item feed. */
export type CaseName = "echo" | "feed";
export const CASES: readonly CaseName[] = ["echo", "feed"];

/** The fixtures in the neutral form of bench/codec/data.ts (64-bit integers as numbers). */
export function caseData(): { ping: PingData; feed: FeedData } {
  const all = fixtures();
  const ping = all.find((f) => f.size === "ping")!;
  const feed = all.find((f) => f.size === "feed")!;
  if (ping.kind !== "ping" || feed.kind !== "feed") throw new Error("bench/codec/data.ts fixtures changed shape");
  return { ping: ping.data, feed: feed.data };
}

/** The request and response messages of each case in Meridian's representation. */
export function meridianMessages(): { ping: Ping; feed: FeedResponse } {
  const all = fixtures();
  const ping = Ping.create(withBigInt(all.find((f) => f.size === "ping")!) as Partial<Ping>);
  const feed = FeedResponse.create(withBigInt(all.find((f) => f.size === "feed")!) as Partial<FeedResponse>);
  // Decode once from bytes so nested messages have every field in its generated shape.
  return { ping: Ping.decode(Ping.encode(ping)), feed: FeedResponse.decode(FeedResponse.encode(feed)) };
}

/** A running benchmark server. */
export interface BenchServer {
  address: string;
  close(): Promise<void>;
}

/** A client of one case: `call()` makes one request and resolves with the response. */
export interface BenchClient {
  call(): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * A seam server's reply: `message` encoded by `codec` straight into the transport's frame, with a
 * copy of `headers`. The encoder comes from here rather than as `encode: (w) => ...` written in
 * the reply: tsx keeps the names of the functions it loads, so a named arrow made per call costs
 * an Object.defineProperty (about 14% of the TCP seam server's CPU in a profile) that no user of
 * the built package pays.
 */
export function seamReply<T extends object>(headers: Headers, codec: MessageCodec<T>, message: T): OutgoingReply {
  return { headers: { ...headers }, encode: encoderOf(codec, message) };
}

function encoderOf<T extends object>(codec: MessageCodec<T>, message: T): NonNullable<OutgoingReply["encode"]> {
  return (w) => codec.encodeTo(message, w);
}

/** The headers of every request of the benchmark. */
export const HEADERS = { "x-region-id": "cn-north", "x-consistency-level": "eventual" };

/** One call of case `name` straight through a transport's seam (no runtime), with a 10 s deadline. */
export function seamCall(transport: ClientTransport, name: CaseName, endpoint: Endpoint | undefined): () => Promise<{ message: unknown; headers: Headers }> {
  const { ping } = meridianMessages();
  const method = name === "echo" ? EchoService.methods.echo : EchoService.methods.feed;
  // The runtime's half of the seam is included: the request encoded into the transport's frame
  // and the response decoded, as createClient does.
  return () =>
    transport
      .unary({
        service: EchoService.typeName,
        method,
        encode: messageWriter(method.input, ping),
        headers: { ...HEADERS },
        deadline: Date.now() + 10_000,
        signal: new Cancellation(),
        endpoint,
      })
      .then((res) => ({ message: decodeResponse(method, EchoService.typeName, res.payload, res.headers), headers: res.headers }));
}
