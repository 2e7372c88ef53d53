import type { PayloadProtocol } from "../codec/types.js";
import type { Writer } from "../codec/writer.js";
import type { MethodDescriptor } from "./descriptors.js";
import { Code, RpcError } from "./errors.js";
import type { PeerIdentity } from "./tls.js";

/**
 * The seam between the framework and the wire. A transport implements ClientTransport and/or
 * ServerTransport and depends on runtime/ only; runtime/ never imports a transport. A transport
 * is handed to createClient / createServer explicitly, never registered globally.
 *
 * Headers are plain string maps on every transport (TTHeader string infos, gRPC metadata, NATS
 * headers). Keys are lower-case, except metainfo headers, which keep Kitex's upper-case prefixes
 * (`RPC_TRANSIT_`, `RPC_PERSIST_`, `RPC_BACKWARD_`, read in any case). First-class keys are listed
 * in `HeaderKeys`.
 */
export type Headers = Record<string, string>;

/**
 * A copy of `headers` (its own keys), written into `into` (a new object unless given): what to use
 * instead of `{ ...headers }` when keys are added to the copy afterwards. On Node 20 an object made
 * by spread has a map outside V8's transition tree, so every key added to it later builds a new
 * map: about 1.4 µs a key, against 50-100 ns on a copy made here (a refused call's reply headers,
 * a copy of the error's and two keys added, cost the server 3.3 µs that way). A copy that is only
 * read may use spread, which is cheaper still.
 */
export function copyHeaders(headers: Headers | undefined, into: Headers = {}): Headers {
  if (headers === undefined) return into;
  for (const key of Object.keys(headers)) {
    // As spread does: an own "__proto__" key stays a key, not the copy's prototype.
    if (key === "__proto__") Object.defineProperty(into, key, { value: headers[key], enumerable: true, writable: true, configurable: true });
    else into[key] = headers[key]!;
  }
  return into;
}

/** What an abort listener may be: a function, or an object with `handleEvent` (no closure per call). */
export type AbortListener = ((event: unknown) => void) | { handleEvent(event: unknown): void };

/**
 * The part of an AbortSignal a transport needs to follow a call's cancellation. An AbortSignal
 * is one; the runtime passes a lighter one, because creating an AbortSignal costs microseconds
 * on Node 20. Listeners run once, when the call is aborted; `reason` is then an RpcError.
 */
export interface CallSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: AbortListener, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: AbortListener): void;
}

/** Header keys that every transport carries. */
export const HeaderKeys = {
  /** The caller's region. */
  region: "x-region-id",
  /** `linearizable` | `eventual`. */
  consistency: "x-consistency-level",
  /** Set on responses: the region that served the call. */
  servedRegion: "x-served-region",
  /** Set on responses served from a possibly stale replica in fallback: bound in ms, or "unknown". */
  staleness: "x-stale-ms",
  /** The primary epoch a write was routed under (fencing). */
  epoch: "x-primary-epoch",
  /** Error status on responses (numeric Code) and its message. */
  status: "rpc-status",
  message: "rpc-message",
  /** Business error (Kitex biz-status / biz-message / biz-extra as JSON). */
  bizStatus: "biz-status",
  bizMessage: "biz-message",
  bizExtra: "biz-extra",
  /**
   * Set (to "1") on an error response by a server that refused the call before any handler saw
   * it (shutting down, shed under load, expired in its queue): the client treats the call as never
   * sent (`notSent`), so a retry may send it to another instance even if it is not idempotent.
   */
  refused: "rpc-refused",
  /**
   * Set on a call refused before its handler ran because the server was overloaded (or its
   * deadline had passed while queued): how long it had waited, ms. A load hint for balancers.
   */
  queueDelay: "x-queue-delay-ms",
} as const;

/** Where a call should go: one instance of a service, as load balancing picked it. */
export interface Endpoint {
  /** `host:port` for TCP-like transports, a subject prefix for NATS, and so on. */
  readonly address: string;
  readonly region?: string;
  readonly weight?: number;
  readonly tags?: Readonly<Record<string, string>>;
}

/**
 * What a client transport knows about the instances it calls, for load balancing: an instance
 * that said it is going away (TTHeader's `crrst`, HTTP/2's GOAWAY) or that cannot be reached now
 * (connects refused, in a reconnect backoff) is to be avoided while others can take the calls.
 * The part of grpc-js's subchannel connectivity state a balancer needs; the load balancing
 * middleware reads it (docs/governance.md, "Instances going away").
 */
export interface EndpointHealth {
  /**
   * Changes whenever an answer of `avoidUntil` may have changed before the time it gave, so a
   * balancer asks again only then: the common case costs a comparison per call.
   */
  readonly version: number;
  /**
   * 0 when calls may go to the instance at `address`; else a time (Date.now() clock, ms) until
   * which to avoid it, Infinity for "until `version` changes". Asking may start a background
   * probe of an avoided instance (a connect) that brings it back once it answers again.
   */
  avoidUntil(address: string, now: number): number;
}

/**
 * Writes one message into a transport's frame buffer. The runtime makes these (it owns the
 * codecs); a transport calls one where the message's bytes belong in its frame, so a message is
 * encoded once, straight into the frame. A transport whose peer chose the payload's encoding (a
 * Thrift peer speaking Compact) says which in `protocol`. It throws an RpcError when the message cannot be encoded
 * (INVALID_ARGUMENT on the client, INTERNAL on the server); the transport then rolls its frame
 * back and fails the call with that error.
 */
export type WriteMessage = (writer: Writer, protocol?: PayloadProtocol) => void;

/**
 * A unary call as a transport sees it on the client side. The seam is narrow and the same in
 * both directions: the runtime encodes and decodes, a transport moves bytes, headers and
 * deadlines. It reads `method` for its name and kind only, never for its codecs.
 */
export interface TransportRequest {
  /** Fully qualified service name, for example `feed.FeedService`. */
  readonly service: string;
  readonly method: MethodDescriptor;
  /** Writes the request message into the transport's frame (encoded by the runtime with `method.input`). */
  readonly encode: WriteMessage;
  readonly headers: Headers;
  /** Absolute deadline (Date.now() based, ms), or undefined for none. */
  readonly deadline: number | undefined;
  /** Aborts the call: the transport must stop waiting and reject with CANCELLED or DEADLINE_EXCEEDED. */
  readonly signal: CallSignal;
  /** The instance to call, chosen by load balancing; transports with one fixed peer may ignore it. */
  readonly endpoint: Endpoint | undefined;
}

/** A unary response as a transport returns it: the payload as received, not decoded. */
export interface TransportResponse {
  /**
   * The response message's bytes; the runtime decodes them with `method.output`. The transport
   * never reuses them, so the decoded message's bytes fields may be views into them (no copy).
   */
  readonly payload: Uint8Array;
  readonly headers: Headers;
  /** The payload's encoding, when the transport's peer chose one (Thrift Compact); else the codec's own. */
  readonly protocol?: PayloadProtocol | undefined;
}

/**
 * A {@link TransportResponse} as a transport makes one per call: a class, not an object literal,
 * for the reason `CallRequest` (runtime/rpc/middleware.ts) gives.
 */
export class ReceivedResponse implements TransportResponse {
  declare readonly payload: Uint8Array;
  declare readonly headers: Headers;
  declare readonly protocol: PayloadProtocol | undefined;

  constructor(payload: Uint8Array, headers: Headers, protocol?: PayloadProtocol | undefined) {
    this.payload = payload;
    this.headers = headers;
    this.protocol = protocol;
  }
}

/**
 * The client half of a transport. Errors are RpcErrors: a response carrying `rpc-status` is
 * rejected with that code (`statusFromHeaders`); connection failures are UNAVAILABLE (with `notSent` when the request
 * surely never left), timeouts DEADLINE_EXCEEDED, aborts CANCELLED.
 */
export interface ClientTransport {
  unary(req: TransportRequest): Promise<TransportResponse>;
  /**
   * Opens a streaming call (server-, client- or bidi-streaming; `req.method.kind` says which).
   * Optional: a transport without streaming leaves it out and the runtime answers UNIMPLEMENTED.
   */
  stream?(req: TransportStreamRequest): ClientStream;
  /** Connects ahead of the first call (warm-up); optional. */
  warmUp?(endpoints: readonly Endpoint[]): Promise<void>;
  /**
   * Which instances to avoid (draining, unreachable); optional. Without it, load balancing sees
   * every instance as usable and relies on retries alone.
   */
  readonly health?: EndpointHealth;
  /**
   * True when `unary` keeps the contract of `TransportRequest.signal` in every state it can be in
   * (waiting for a connection, for write room, for the response): it rejects as soon as the signal
   * aborts (the runtime aborts it when the call's deadline passes). The runtime then does not race
   * each call against its signal; a transport without it is raced at the end of the client's
   * chain (its late answer dropped), which costs every call two promises and a listener. The
   * transports of this package set it.
   */
  readonly settlesOnAbort?: boolean;
  /**
   * True when `unary` times every call itself: it rejects with DEADLINE_EXCEEDED once the
   * request's `deadline` passes, whatever it is waiting for (a connection, write room, the
   * response), and at once, `notSent`, when the deadline passed before the request could leave.
   * The runtime then arms no deadline timer of its own for a unary call (the call's context arms
   * one only once something else follows its cancellation: a middleware's wait, a handler's
   * `ctx.signal`), which saves a timer per call. The TCP transport sets it.
   */
  readonly timesCalls?: boolean;
  close(): Promise<void>;
}

/**
 * Connects to every endpoint at once with `connect`, for a ClientTransport.warmUp: resolves when
 * all connected, else rejects with one UNAVAILABLE (notSent) error that counts the failures and
 * is caused by the first.
 */
export async function warmUpAll(endpoints: readonly Endpoint[], connect: (endpoint: Endpoint) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(endpoints.map(connect));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed.length > 0) {
    const first = RpcError.from(failed[0]!.reason, Code.UNAVAILABLE);
    throw new RpcError(Code.UNAVAILABLE, `warm-up failed for ${failed.length} of ${endpoints.length} endpoints: ${first.message}`, {
      cause: first,
      notSent: true,
    });
  }
}

/** A streaming call as a transport sees it on the client side: a unary request without a message. */
export type TransportStreamRequest = Omit<TransportRequest, "encode">;

/**
 * The client end of an open streaming call.
 *
 * Flow control: `send` resolves once the transport has room for more (its write buffer is below
 * its high-water mark, or the peer granted credit), so a writer that awaits it can never queue
 * without bound. Responses are pulled: the transport stops reading from the peer (or stops
 * granting it credit) while the consumer of `responses` is not asking, so a slow reader slows
 * the writer on the other side and memory stays bounded.
 *
 * Errors: `responses` throws an RpcError when the call fails (status in trailers, connection
 * lost, deadline, cancel); `send` rejects with the same error once the call has failed.
 */
export interface ClientStream {
  /** Sends one request message (`encode` writes it, as TransportRequest.encode does). */
  send(encode: WriteMessage): Promise<void>;
  /** Half-closes the request side: the server's request iterator ends. */
  closeSend(): Promise<void>;
  /**
   * Response payloads, not decoded (the runtime decodes them with `method.output`); ends when the
   * server finishes with OK. The transport never reuses a payload it handed out (zero-copy views).
   */
  readonly responses: AsyncIterable<Uint8Array>;
  /** Response headers, once the server sent them (with its first message or its trailers). */
  readonly headers: Promise<Headers>;
  /** Trailers, once the call has ended (status included on failure). */
  readonly trailers: Promise<Headers>;
  /** Cancels the call: both directions end, the server sees its signal aborted. */
  cancel(reason?: unknown): void;
}

/** A streaming call as a transport hands it to the server. */
export interface IncomingStream {
  readonly service: string;
  readonly method: string;
  readonly headers: Headers;
  readonly deadline: number | undefined;
  readonly signal: CallSignal;
  readonly peer: string;
  /** The peer's verified TLS identity (mutual TLS), when the transport has one. */
  readonly peerIdentity?: PeerIdentity | undefined;
  /** As on IncomingCall: when the transport read the stream's opening, for admission control. */
  readonly receivedAt?: number | undefined;
  /** As on IncomingCall: how long the opening waited before the transport read it. */
  readonly waitedMs?: number | undefined;
  /**
   * Raw request payloads, pulled (a slow handler slows the client). Ends when the client
   * half-closes; throws an RpcError when the call is cancelled or the connection is lost.
   * Each payload is valid until the next one is pulled.
   */
  readonly requests: AsyncIterable<Uint8Array>;
  /** Sends the response headers now (otherwise they go with the first message or the trailers). */
  sendHeaders(headers: Headers): void;
  /** Sends one response message (`encode` writes it); resolves when the transport has room for more. */
  send(encode: WriteMessage): Promise<void>;
}

/**
 * What a ServerTransport calls for each incoming streaming call. Resolves with the trailers when
 * the handler is done (`rpc-status` / `rpc-message` / biz-* on failure); never rejects.
 */
export type StreamDispatcher = (stream: IncomingStream) => Promise<Headers>;

/** A unary call as a transport hands it to the server. */
export interface IncomingCall {
  readonly service: string;
  readonly method: string;
  readonly headers: Headers;
  /** The raw request payload; decode with the method's input codec. Valid until the call ends. */
  readonly payload: Uint8Array;
  /**
   * The payload's encoding when the transport carries more than one (a Thrift frame: Binary or
   * Compact), so the runtime decodes the request and encodes the reply in it; undefined for a
   * protobuf payload. A call whose method's codecs cannot read it is refused.
   */
  readonly protocol?: PayloadProtocol | undefined;
  /** Absolute deadline from the caller's timeout, or undefined. */
  readonly deadline: number | undefined;
  /**
   * Aborted when the caller cancels or the connection goes away. The runtime reads it only when
   * something follows the call's cancellation, so a transport may create it lazily.
   */
  readonly signal: CallSignal;
  /** The peer's address, `host:port`. */
  readonly peer: string;
  /** The peer's verified TLS identity (mutual TLS), when the transport has one. */
  readonly peerIdentity?: PeerIdentity | undefined;
  /**
   * When the transport read the call (Date.now() clock); with `waitedMs`, how admission control
   * measures queueing. A transport that sets it hands the call to the dispatcher as it reads it,
   * so admission takes it as the present too (no second clock read).
   */
  readonly receivedAt?: number | undefined;
  /**
   * How long the call had waited before the transport read it (sender's queue, network, kernel
   * buffers), when the transport can tell (see SendDelayEstimator), less the time the transport
   * did not read the connection for being at its own limit of calls in flight (a wait that
   * shedding cannot shorten); its `deadline` already accounts for the whole wait.
   */
  readonly waitedMs?: number | undefined;
}

/** What the server answers: a message and its codec, or an error, plus response headers. */
export interface OutgoingReply {
  readonly headers: Headers;
  /** Present on success: writes the response message into the transport's frame buffer. */
  readonly encode?: WriteMessage;
}

/**
 * An {@link OutgoingReply} as the server makes one per call: a class, not an object literal, for
 * the reason `CallRequest` (runtime/rpc/middleware.ts) gives.
 */
export class Reply implements OutgoingReply {
  declare readonly headers: Headers;
  declare readonly encode: WriteMessage | undefined;

  constructor(headers: Headers, encode?: WriteMessage | undefined) {
    this.headers = headers;
    this.encode = encode;
  }
}

/**
 * What a ServerTransport calls for each incoming unary call. Never rejects: errors are turned
 * into headers (`rpc-status`, `rpc-message`, biz-*) in the reply.
 */
export interface CallDispatcher {
  (call: IncomingCall): Promise<OutgoingReply>;
  /**
   * The same, answered through `sink` rather than a promise (createServer's dispatcher has it):
   * `sink(call, reply)` once, before `to` returns when the handler answered without awaiting. Never
   * throws. A promise costs a microtask and, with AsyncLocalStorage on, its promise hooks, about
   * 300 ns of a server's CPU per call (docs/profile.md). Transports call it through
   * {@link dispatchCall}, which falls back on the promise.
   */
  readonly to?: <C extends IncomingCall>(call: C, sink: ReplySink<C>) => void;
}

/**
 * Where a dispatcher's reply to `call` goes. It must not throw: it handles its own failures (an
 * unencodable reply, a closed connection), or the transport hands dispatchCall a `lost` for them,
 * as to settleCall. A dispatcher that sees one throw anyway logs it and leaves the call to the
 * peer's deadline.
 */
export type ReplySink<C extends IncomingCall = IncomingCall> = (call: C, reply: OutgoingReply) => void;

/**
 * Dispatches `call` and hands its reply to `sink`: through the dispatcher's `to` when it has one,
 * else through its promise (see settleCall), a throw or rejection answered with `failed(error)`.
 * A `sink` that throws goes to `lost`, as in settleCall; without `lost`, the sink must not throw.
 */
export function dispatchCall<C extends IncomingCall>(
  dispatch: CallDispatcher,
  call: C,
  sink: ReplySink<C>,
  failed: (error: unknown) => OutgoingReply,
  lost?: (error: unknown) => void,
): void {
  const to = dispatch.to;
  if (to !== undefined && lost === undefined) return to(call, sink);
  const answer = (reply: OutgoingReply): void => sink(call, reply);
  if (to === undefined) return settleCall(() => dispatch(call), answer, failed, lost ?? ignoreLost);
  to(call, (_, reply) => deliver(answer, reply, lost ?? ignoreLost));
}

function ignoreLost(): void {}

/** The server half of a transport. */
export interface ServerTransport {
  /** Starts accepting calls; resolves once listening, with the address actually bound. */
  listen(dispatch: CallDispatcher, streams?: StreamDispatcher): Promise<{ address: string }>;
  /**
   * Graceful shutdown: stop accepting, tell connected clients to move away, let calls in flight
   * finish for up to `graceMs`, then close everything.
   */
  close(graceMs: number): Promise<void>;
}

/**
 * Runs a dispatcher and hands what it resolves with to `answer`, so that nothing can escape as an
 * unhandled rejection (which ends a Node process): a dispatcher that throws or rejects (which it
 * should not) is answered with `failed(error)`, and an `answer` that throws, for example on a
 * reply that cannot be put on the wire, goes to `lost`, whose job is to end the call some other
 * way (close the connection, reset the stream). How every server transport turns a call's outcome
 * into its reply.
 */
export function settleCall<T>(run: () => Promise<T>, answer: (result: T) => void, failed: (error: unknown) => T, lost: (error: unknown) => void): void {
  let result: Promise<T>;
  try {
    result = run();
  } catch (e) {
    result = Promise.reject(e);
  }
  result.then(
    (r) => deliver(answer, r, lost),
    (e: unknown) => {
      let r: T;
      try {
        r = failed(e);
      } catch (again) {
        return lastResort(lost, again);
      }
      deliver(answer, r, lost);
    },
  );
}

function deliver<T>(answer: (result: T) => void, result: T, lost: (error: unknown) => void): void {
  try {
    answer(result);
  } catch (e) {
    lastResort(lost, e);
  }
}

function lastResort(lost: (error: unknown) => void, error: unknown): void {
  try {
    lost(error);
  } catch {
    // Nothing is left to tell: the peer's deadline or its connection's end settles the call.
  }
}
