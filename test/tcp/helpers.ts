import type { MessageRequest } from "../support/message-calls.js";
import { setTimeout as sleep } from "node:timers/promises";
import { type MethodDescriptor, Code, Cancellation, HeaderKeys } from "meridian-rpc";
import type { CallDispatcher, CallSignal, IncomingCall, OutgoingReply, StreamDispatcher } from "meridian-rpc/transport";
import { TcpClientTransport, TcpServerTransport, type TcpClientOptions, type TcpServerOptions } from "meridian-rpc/transports/tcp";
import { FeedResponse, Ping } from "../../bench/codec/gen/feed.js";

/** bench.Echo/Echo: Ping in, Ping out. */
export const Echo: MethodDescriptor<typeof Ping, typeof Ping> = {
  name: "Echo",
  kind: "unary",
  input: Ping,
  output: Ping,
  idempotency: "IDEMPOTENCY_UNKNOWN",
};

/** bench.Echo/Feed: Ping in, FeedResponse out. */
export const Feed: MethodDescriptor<typeof Ping, typeof FeedResponse> = {
  name: "Feed",
  kind: "unary",
  input: Ping,
  output: FeedResponse,
  idempotency: "NO_SIDE_EFFECTS",
};

export const SERVICE = "bench.Echo";

/** A request for the seam, with a fresh signal unless one is given. */
export function request(
  message: Partial<Ping>,
  opts: { signal?: CallSignal; timeoutMs?: number; headers?: Record<string, string>; address?: string; method?: MethodDescriptor } = {},
): MessageRequest {
  return {
    service: SERVICE,
    method: opts.method ?? Echo,
    message: Ping.create(message),
    headers: opts.headers ?? { [HeaderKeys.region]: "cn-north", [HeaderKeys.consistency]: "eventual" },
    deadline: opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs,
    signal: opts.signal ?? new Cancellation(),
    endpoint: opts.address === undefined ? undefined : { address: opts.address },
  };
}

/** Replies with the request Ping, echoing its headers back with an `x-echo-` prefix. */
export function echoReply(call: IncomingCall, extra: Record<string, string> = {}): OutgoingReply {
  const msg = Ping.decode(call.payload);
  const headers: Record<string, string> = { ...extra };
  for (const k in call.headers) headers[`x-echo-${k}`] = call.headers[k]!;
  return { headers, encode: (w) => Ping.encodeTo(msg, w) };
}

/** An error reply as the runtime would send it. */
export function errorReply(code: Code, message: string): OutgoingReply {
  return { headers: { [HeaderKeys.status]: String(code), [HeaderKeys.message]: message } };
}

/** A fake dispatcher that echoes; `seq` of the Ping tells it how many ms to wait first. */
export const delayedEcho: CallDispatcher = async (call) => {
  const msg = Ping.decode(call.payload);
  if (msg.seq > 0n) await sleep(Number(msg.seq));
  return echoReply(call);
};

/** Starts a server transport on 127.0.0.1 with the dispatcher (and a stream dispatcher). */
export async function startServer(
  dispatch: CallDispatcher,
  options: TcpServerOptions = {},
  streams?: StreamDispatcher,
): Promise<{ server: TcpServerTransport; address: string }> {
  const server = new TcpServerTransport({ host: "127.0.0.1", ...options });
  const { address } = await server.listen(dispatch, streams);
  return { server, address };
}

/** A stream dispatcher that sends a Ping every 10 ms until the call is cancelled. */
export const endlessTicks: StreamDispatcher = async (stream) => {
  for (let i = 1n; !stream.signal.aborted; i++) {
    await stream.send((w) => Ping.encodeTo(Ping.create({ seq: i }), w));
    await sleep(10);
  }
  return {};
};

/** A client transport aimed at `address`, with test-friendly backoff. */
export function client(address: string, options: TcpClientOptions = {}): TcpClientTransport {
  return new TcpClientTransport({ address, backoffBaseMs: 10, backoffMaxMs: 50, ...options });
}

/** Waits until `check` returns true, polling every 5 ms; fails after `ms`. */
export async function until(check: () => boolean, ms = 3000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
