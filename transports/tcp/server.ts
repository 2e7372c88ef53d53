import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { Writer } from "../../runtime/index.js";
import {
  type CallDispatcher,
  type DeadlineEntry,
  deadlineExceeded,
  DeadlineQueue,
  dispatchCall,
  errorHeaders,
  type OutgoingReply,
  SendDelayEstimator,
  ServerCall,
  startTimer,
  statusToHeaders,
  type StreamDispatcher,
  timerDelay,
  writeApplicationException,
  writeThriftEnvelope,
} from "../../runtime/transport.js";
import { Code, ConfigError, RpcError, type PayloadProtocol, type PeerIdentity, type ServerTls, HeaderKeys, type Headers, type ServerTransport } from "../../runtime/api.js";
import { connectionOptions, FrameConnection, PauseReason, type ConnectionHandler, type ConnectionOptions } from "./connection.js";
import {
  FrameError,
  FrameHead,
  HeaderFlags,
  IntKey,
  KitexErrorType,
  KitexMeta,
  MessageType,
  StrKey,
  beginFrame,
  endFrame,
  endHeader,
  parseFrame,
  parseKitexMeta,
  StreamFrameType,
  boundText,
  boundStatus,
  writeErrorProto,
  writeKitexMeta,
  writeStringInfo,
  type Framing,
  type FrameLimits,
  type PartialFrameWatcher,
} from "./wire.js";
import { applicationErrorOf, beginThriftFrame, parseEnvelope, thriftProtocolOf } from "./thrift.js";
import { STREAM_INITIAL_WINDOW, TcpServerStream, type StreamHost, type TcpStream } from "./stream.js";
import { DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, isLoopbackHost, serverSecureOptions, socketIdentity } from "./tls.js";

/** Options of {@link TcpServerTransport}. */
export interface TcpServerOptions {
  /**
   * Interface to listen on. Default "127.0.0.1"; "0.0.0.0" or "::" for every interface, which
   * needs `tls` (or `plaintext: true`).
   */
  host?: string;
  /**
   * TLS for every connection: the server's certificate and key; with `ca`, client certificates
   * signed by it are verified and their identity is the call's `ctx.peerIdentity`;
   * `requireClientCert` refuses clients without one (mutual TLS). Rotate with `updateTls`.
   */
  tls?: ServerTls;
  /**
   * Accept unencrypted connections on an interface other than loopback. Default false: a server
   * without `tls` must listen on a loopback address, so plaintext from the network is a choice.
   */
  plaintext?: boolean;
  /** A TLS handshake not done within this is dropped (ms). Default 10 s. */
  tlsHandshakeTimeoutMs?: number;
  /** Port; 0 (default) picks a free one, reported by `listen()`. */
  port?: number;
  /** Frame size, header count and header size limits (defaults: 4 MiB, 1024, 64 KiB). */
  limits?: Partial<FrameLimits>;
  /** Bound on reply bytes queued per connection; past it the connection is not read until it drains. Default 16 MiB. */
  maxQueuedBytes?: number;
  /** TCP keepalive initial delay. Default 30 s; 0 disables keepalive. */
  keepAliveMs?: number;
  /** Close connections with no call in flight and no traffic for this long. Default 10 min; 0 never. */
  idleTimeoutMs?: number;
  /**
   * During graceful shutdown, a connection with no call in flight that has been quiet this long
   * after the shutdown notice is closed by the server (clients normally close first). Default 100 ms.
   */
  drainQuietMs?: number;
  /** See ConnectionOptions.batching. Default "tick". */
  batching?: "tick" | "none";
  /**
   * Streams: how many request messages a stream may have in flight (sent by the client, not yet
   * taken by the handler); the client waits for credit past it. Default 32.
   */
  streamWindow?: number;
  /**
   * Unary calls in flight per connection (HTTP/2's max concurrent streams): once a connection has
   * this many, the server stops reading it until one is answered. Default 256.
   */
  maxConcurrentCalls?: number;
  /**
   * Request bytes (whole frames) of the unary calls in flight on one connection: past it, the
   * server stops reading the connection until calls are answered, as for `maxConcurrentCalls`.
   * Default 16 MiB.
   */
  maxInflightBytes?: number;
  /** Streams open per connection; a stream opened past it is refused with RESOURCE_EXHAUSTED. Default 256. */
  maxConcurrentStreams?: number;
  /** Open connections; a connection past it is refused (a `crrst` frame with RESOURCE_EXHAUSTED, then closed). Default 10 000. */
  maxConnections?: number;
  /**
   * Bytes held by all connections together for frames that have started but not finished
   * arriving. Past it, the connection whose partial frame is the oldest is closed. Default 64 MiB
   * (raised to `maxFrameSize` if smaller).
   */
  maxPartialFrameBytes?: number;
  /** A frame that has started arriving must be complete within this many ms, else the connection is closed. Default 10 s; 0 never. */
  frameTimeoutMs?: number;
  /**
   * Bytes held for calls over all connections: request bytes of calls in flight plus reply bytes
   * queued (encoded, not yet taken by the kernel). Past it, a connection holding more than its
   * share (this budget / open connections) is not read until the sum is back under three
   * quarters of it, or its own part under half its share. Default 64 MiB.
   */
  maxServerBufferedBytes?: number;
}

/** Defaults of the {@link TcpServerOptions} limits that guard against hostile peers (docs/tcp.md, "Limits"). */
export const DEFAULT_SERVER_LIMITS = {
  maxConcurrentCalls: 256,
  maxInflightBytes: 16 * 1024 * 1024,
  maxConcurrentStreams: 256,
  maxConnections: 10_000,
  maxPartialFrameBytes: 64 * 1024 * 1024,
  frameTimeoutMs: 10_000,
  maxServerBufferedBytes: 64 * 1024 * 1024,
} as const;

/** What a TcpServerTransport counts about peers it held back: for metrics and tests. */
export interface TcpServerStats {
  /** Open connections. */
  connections: number;
  /** Connections refused at `maxConnections`. */
  refusedConnections: number;
  /** Connections closed because partial frames went over `maxPartialFrameBytes`. */
  closedOverPartialBudget: number;
  /** Connections closed because a frame did not complete within `frameTimeoutMs`. */
  closedFrameTimeout: number;
  /** Bytes held now in partially received frames. */
  partialFrameBytes: number;
  /** Reply bytes queued now over all connections. */
  queuedReplyBytes: number;
  /** Request bytes of the unary calls in flight now over all connections. */
  inflightRequestBytes: number;
  /** Connections not being read now: at `maxConcurrentCalls` or `maxInflightBytes`, over `maxQueuedBytes`, or over their share of `maxServerBufferedBytes`. */
  pausedConnections: number;
  /** Replies that could not be encoded and were replaced by an error reply (or closed their connection). */
  failedReplies: number;
}

const STATUS = HeaderKeys.status;
const MESSAGE = HeaderKeys.message;

/**
 * One call being served: the runtime's ServerCall (its signal created only when something reads
 * it), following its deadline on the connection's deadline queue.
 */
class TcpServerCall extends ServerCall implements DeadlineEntry {
  dlAt = 0;
  dlPrev: DeadlineEntry | undefined = undefined;
  dlNext: DeadlineEntry | undefined = undefined;
  dlQueued = false;
  /** The request frame's size: what the call holds of its connection's `maxInflightBytes`. */
  bytes = 0;
  /** A Thrift call's payload protocol (undefined for Kitex protobuf), the reply's too. */
  protocol: PayloadProtocol | undefined = undefined;
  /** How the call was framed: the reply is framed the same way. */
  framing: Framing = "ttheader";
  /** Its place in its connection's CallList. */
  listed = false;
  prevCall: TcpServerCall | undefined = undefined;
  nextCall: TcpServerCall | undefined = undefined;

  constructor(
    private readonly conn: ServerConnection,
    readonly seq: number,
    service: string,
    method: string,
    headers: Headers,
    readonly payload: Uint8Array,
    deadline: number | undefined,
    readonly peer: string,
    readonly oneway: boolean,
    readonly receivedAt: number,
    readonly waitedMs: number,
  ) {
    super(service, method, headers, deadline);
  }

  get peerIdentity(): PeerIdentity | undefined {
    return this.conn.identity;
  }

  protected override follow(): void {
    if (this.deadline === undefined) return;
    this.dlAt = this.deadline;
    this.conn.deadlines.add(this);
  }

  protected override unfollow(): void {
    if (this.dlQueued) this.conn.deadlines.remove(this);
  }

  expire(): void {
    this.abort(deadlineExceeded("the call's deadline passed"));
  }
}

/**
 * The unary calls in flight on a connection: a list through the calls themselves. A Set's add
 * and delete hash each call (about 3% of a server's CPU on bench:rpc's echo); this is a few
 * pointer updates.
 */
class CallList {
  size = 0;
  private head: TcpServerCall | undefined = undefined;

  add(c: TcpServerCall): void {
    c.listed = true;
    c.prevCall = undefined;
    c.nextCall = this.head;
    if (this.head !== undefined) this.head.prevCall = c;
    this.head = c;
    this.size++;
  }

  /** Takes `c` out; false when it was not in (already answered, or the list was emptied). */
  delete(c: TcpServerCall): boolean {
    if (!c.listed) return false;
    c.listed = false;
    const { prevCall, nextCall } = c;
    if (prevCall !== undefined) prevCall.nextCall = nextCall;
    else this.head = nextCall;
    if (nextCall !== undefined) nextCall.prevCall = prevCall;
    c.prevCall = c.nextCall = undefined;
    this.size--;
    return true;
  }

  /** Empties the list and returns what it held. */
  takeAll(): TcpServerCall[] {
    const all: TcpServerCall[] = [];
    for (let c = this.head; c !== undefined; c = c.nextCall) all.push(c);
    for (const c of all) {
      c.listed = false;
      c.prevCall = c.nextCall = undefined;
    }
    this.head = undefined;
    this.size = 0;
    return all;
  }
}

/** One client connection of the server: unary calls and streams, multiplexed. */
class ServerConnection implements ConnectionHandler, StreamHost, PartialFrameWatcher {
  readonly fc: FrameConnection;
  readonly calls = new CallList();
  readonly streams = new Map<number, TcpServerStream>();
  /** The client's verified certificate identity (mutual TLS), if any. */
  readonly identity: PeerIdentity | undefined;
  /** When the frame being received began to arrive (ms), for `frameTimeoutMs`. */
  partialSince = 0;
  /** Request bytes of the unary calls in flight. */
  inflightBytes = 0;
  private readonly head = new FrameHead();
  private readonly meta = new KitexMeta();
  private readonly sendDelay = new SendDelayEstimator();
  /**
   * When the connection was last read again after it had been at its limit of calls in flight
   * (Date.now()): see `onFrame` for what admission makes of it.
   */
  private limitLiftedAt = -Infinity;
  private quietTimer: NodeJS.Timeout | undefined;
  /**
   * The peer spoke Apache THeader or framed Thrift: it knows no Kitex control frames, so it gets
   * no shutdown notice (it sees the connection close once its calls are answered).
   */
  private apachePeer = false;

  constructor(
    socket: Socket,
    private readonly server: TcpServerTransport,
    private readonly dispatch: CallDispatcher,
    private readonly dispatchStream: StreamDispatcher | undefined,
  ) {
    this.fc = new FrameConnection(socket, server.connection, this, this);
    this.identity = socketIdentity(socket);
  }

  /**
   * Request bytes of unary calls in flight changed by `delta`. At `maxConcurrentCalls` calls or
   * `maxInflightBytes` bytes the connection is not read until calls are answered. Streams do not
   * count: a stream handler may wait for its peer's window frame, which would then never be read.
   */
  held(delta: number): void {
    this.inflightBytes += delta;
    this.server.buffered(this, delta, false);
    const over = this.calls.size >= this.server.maxConcurrentCalls || this.inflightBytes >= this.server.maxInflightBytes;
    if (over) this.pause(PauseReason.Calls);
    else if (this.fc.pausedFor(PauseReason.Calls)) {
      this.limitLiftedAt = Date.now();
      this.resume(PauseReason.Calls);
    }
  }

  /** PartialFrameWatcher: a partial frame begins or grows; the server's budget decides. */
  grow(bytes: number, first: boolean): boolean {
    if (first) this.server.partialStarted(this);
    return bytes === 0 || this.server.reservePartial(this, bytes);
  }

  /** PartialFrameWatcher: the partial frame is complete or dropped. */
  release(bytes: number): void {
    this.server.partialEnded(this, bytes);
  }

  /** Stops reading for `reason`. */
  pause(reason: number): void {
    this.fc.pause(reason);
  }

  /** Lifts `reason`; a partial frame's clock restarts when reading does (the wait was ours). */
  resume(reason: number): void {
    if (!this.fc.pausedFor(reason)) return;
    this.fc.resume(reason);
    if (!this.fc.paused && this.partialSince !== 0) this.server.partialStarted(this);
  }

  get deadlines(): DeadlineQueue {
    return this.server.deadlines;
  }
  get limits(): FrameLimits {
    return this.server.limits;
  }
  get streamWindow(): number {
    return this.server.streamWindow;
  }
  get draining(): boolean {
    return this.server.draining;
  }
  /** Calls and streams in flight. */
  get busy(): number {
    return this.calls.size + this.streams.size;
  }

  /** StreamHost: a stream is over. */
  forget(stream: TcpStream): void {
    if (this.streams.get(stream.sid) !== stream) return;
    this.streams.delete(stream.sid);
    if (this.server.draining && this.busy === 0) this.armQuiet();
  }

  onFrame(buf: Buffer, start: number, end: number): void {
    const head = parseFrame(buf, start, end, this.server.limits, this.head);
    if ((head.flags & HeaderFlags.Streaming) !== 0) {
      this.onStreamFrame(head, buf, end);
      return;
    }
    const protocol = thriftProtocolOf(head.protocolId);
    let type: number;
    let method: string;
    let bodyStart: number;
    let seq = head.seqId;
    if (protocol === undefined) {
      const meta = parseKitexMeta(buf, head.payloadStart, end, this.meta);
      type = meta.messageType;
      method = meta.method;
      bodyStart = meta.bodyStart;
    } else {
      const envelope = parseEnvelope(buf, head.payloadStart, end, protocol);
      type = envelope.type;
      method = envelope.name;
      bodyStart = envelope.bodyStart;
      if (head.framing === "framed") seq = envelope.seqId;
      if (head.framing !== "ttheader") this.apachePeer = true;
    }
    if (type !== MessageType.Call && type !== MessageType.Oneway) {
      throw new FrameError("BAD_PAYLOAD", `message type ${type} is not a call`);
    }
    if (this.quietTimer !== undefined) this.clearQuiet();
    const now = Date.now();
    // Time spent before this read (the client's queue, the kernel's buffers) counts against the
    // caller's budget: its deadline is when it gives up, not a timeout from now.
    const waited = head.sentAt >= 0 ? this.sendDelay.waited(head.sentAt, now) : 0;
    const deadline = head.timeoutMs > 0 ? now + head.timeoutMs - waited : undefined;
    // A call sent before the connection was last read again after being at its limit of calls
    // in flight waited in the socket for that limit, as HTTP/2's max_concurrent_streams makes a
    // gRPC client hold calls. The whole wait counts against its deadline, but admission judges
    // only the time since: shedding cannot shorten a wait the server imposed on purpose, and a
    // burst of 1000 calls on one connection to an idle server whose handlers wait on I/O had most
    // of its calls past the first 256 shed for having waited for the first ones to end.
    const queued = now - waited <= this.limitLiftedAt ? Math.min(waited, now - this.limitLiftedAt) : waited;
    const call = new TcpServerCall(
      this,
      seq,
      head.service,
      method,
      head.headers,
      new Uint8Array(buf.buffer, buf.byteOffset + bodyStart, end - bodyStart),
      deadline,
      this.fc.peer,
      type === MessageType.Oneway,
      now,
      queued,
    );
    if (protocol !== undefined) {
      call.protocol = protocol;
      call.framing = head.framing;
    }
    this.calls.add(call);
    call.bytes = end - start;
    this.held(call.bytes);
    dispatchCall(this.dispatch, call, this.replyTo, failedDispatch);
  }

  /**
   * A streaming frame: for a stream in flight, or a header frame opening a new one, which goes to
   * the stream dispatcher; its trailers end it. Frames of streams already over are dropped.
   */
  private onStreamFrame(head: FrameHead, buf: Buffer, end: number): void {
    const known = this.streams.get(head.seqId);
    if (known !== undefined) {
      known.onFrame(head, buf, end);
      return;
    }
    if (head.frameType !== StreamFrameType.Header) return;
    if (this.quietTimer !== undefined) this.clearQuiet();
    const method = head.intInfo?.[IntKey.ToMethod] ?? "";
    const deadline = head.timeoutMs > 0 ? Date.now() + head.timeoutMs : undefined;
    const refused = this.streams.size >= this.server.maxConcurrentStreams;
    const stream = new TcpServerStream(this, head.seqId, head.service, method, head.headers, deadline, this.fc.peer, this.identity);
    this.streams.set(head.seqId, stream);
    if (refused) {
      stream.end(statusToHeaders(new RpcError(Code.RESOURCE_EXHAUSTED, `this connection already has ${this.server.maxConcurrentStreams} streams open (maxConcurrentStreams); open the stream later or on another connection`), {}));
      return;
    }
    const dispatch = this.dispatchStream;
    if (dispatch === undefined) {
      stream.end(statusToHeaders(new RpcError(Code.UNIMPLEMENTED, `this server does not serve streams (${boundText(head.service)}/${boundText(method)})`), {}));
      return;
    }
    let result: Promise<Headers>;
    try {
      result = dispatch(stream);
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(
      (trailers) => stream.end(trailers),
      (e: unknown) => stream.end(errorHeaders(e)),
    );
  }

  /**
   * The call is answered: encodes the reply straight into the connection's slab. Never throws
   * (it runs in a promise continuation, where a throw would be an unhandled rejection): a reply
   * that cannot be encoded is rolled back and replaced by a small error reply, and if even that
   * fails the connection is closed.
   */
  /** The sink of this connection's calls (see ReplySink): never throws. */
  private readonly replyTo = (call: TcpServerCall, reply: OutgoingReply): void => this.reply(call, reply);

  private reply(call: TcpServerCall, reply: OutgoingReply): void {
    try {
      call.done();
      if (this.calls.delete(call)) this.held(-call.bytes);
      if (!this.fc.closed && !call.oneway) this.writeReply(call, reply);
      if (this.server.draining && this.busy === 0) this.armQuiet();
    } catch (e) {
      // Nothing above should throw; if it does, this connection's state is not to be trusted.
      this.fc.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private writeReply(call: TcpServerCall, reply: OutgoingReply): void {
    const fc = this.fc;
    const w = fc.writer;
    const limits = this.server.limits;
    let mark = w.pos - w.start;
    try {
      mark = this.encodeReply(call, reply, limits);
    } catch (e) {
      fc.rollback(mark);
      this.server.failedReplies++;
      try {
        mark = w.pos - w.start;
        mark = this.encodeReply(call, fallbackReply(e), limits);
      } catch (again) {
        fc.rollback(mark);
        fc.destroy(new Error(`cannot answer call ${call.seq}, not even with an error: ${again instanceof Error ? again.message : String(again)}`));
        return;
      }
    }
    fc.frameWritten();
  }

  /** Writes the reply frame of `call` and returns its mark (the frame is ended). */
  private encodeReply(call: TcpServerCall, reply: OutgoingReply, limits: FrameLimits): number {
    const w = this.fc.writer;
    const headers = boundStatus(reply.headers);
    const status = headers[STATUS];
    const failed = status !== undefined && status !== "0";
    // The method name is the peer's: echoed as Kitex does, but never more than boundText allows.
    const method = boundText(call.method);
    const protocol = call.protocol;
    if (protocol !== undefined) {
      const reset = this.server.draining ? ([StrKey.reset, "1"] as const) : undefined;
      const mark = beginThriftFrame(w, call.framing, protocol, call.seq, headers, limits, reset);
      if (failed) {
        writeThriftEnvelope(w, protocol, MessageType.Exception, method, call.seq);
        writeApplicationException(w, protocol, applicationErrorOf(Number(status)), headers[MESSAGE] ?? "");
      } else {
        writeThriftEnvelope(w, protocol, MessageType.Reply, method, call.seq);
        reply.encode?.(w, protocol);
      }
      endFrame(w, mark, limits);
      return mark;
    }
    const mark = beginFrame(w, call.seq);
    const count = this.server.draining ? writeStringInfo(w, headers, StrKey.reset, "1") : this.fc.stringInfo.write(w, headers);
    endHeader(w, mark, count, limits);
    if (failed) {
      writeKitexMeta(w, MessageType.Exception, method, call.seq);
      const typeId = status === String(Code.UNIMPLEMENTED) ? KitexErrorType.UnknownMethod : KitexErrorType.InternalError;
      writeErrorProto(w, typeId, headers[MESSAGE] ?? "");
    } else {
      writeKitexMeta(w, MessageType.Reply, method, call.seq);
      reply.encode?.(w);
    }
    endFrame(w, mark, limits);
    return mark;
  }

  /** Tells the client the server is going away: a control frame (sequence id 0) with `crrst`. */
  sendShutdownNotice(): void {
    if (this.fc.closed) return;
    if (this.apachePeer) {
      if (this.busy === 0) this.armQuiet();
      return;
    }
    const w = this.fc.writer;
    const mark = beginFrame(w, 0);
    const count = writeStringInfo(w, undefined, StrKey.reset, "1");
    endHeader(w, mark, count, this.server.limits);
    writeKitexMeta(w, MessageType.Reply, "", 0);
    endFrame(w, mark, this.server.limits);
    this.fc.frameWritten();
    if (this.busy === 0) this.armQuiet();
  }

  private armQuiet(): void {
    if (this.quietTimer !== undefined || this.fc.closed) return;
    this.quietTimer = setTimeout(() => {
      this.quietTimer = undefined;
      if (this.busy === 0) this.fc.end();
    }, timerDelay(this.server.drainQuietMs));
  }

  private clearQuiet(): void {
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
  }

  onCongested(): void {
    this.pause(PauseReason.Congested);
  }

  onDrain(): void {
    this.resume(PauseReason.Congested);
  }

  onQueued(delta: number): void {
    this.server.buffered(this, delta, true);
  }

  /** Bytes held for this connection's calls: requests in flight and replies queued. */
  get heldBytes(): number {
    return this.inflightBytes + this.fc.reportedQueuedBytes;
  }

  onClose(error: Error | undefined): void {
    if (this.quietTimer !== undefined) this.clearQuiet();
    const reason = new RpcError(Code.CANCELLED, `the connection from ${this.fc.peer} closed${error ? `: ${error.message}` : ""}`, {
      cause: error,
    });
    for (const call of this.calls.takeAll()) call.abort(reason);
    for (const stream of [...this.streams.values()]) stream.lost(reason);
    this.streams.clear();
    // What the calls held is no longer held for this connection.
    this.server.buffered(this, -this.inflightBytes, false);
    this.inflightBytes = 0;
    this.server.forget(this);
  }
}

/** The reply to a call whose dispatcher threw or rejected (which it should not). */
function failedDispatch(e: unknown): OutgoingReply {
  return { headers: errorHeaders(e) };
}

/**
 * What replaces a reply that could not be encoded (`e` says why): a status and a bounded message,
 * nothing else of the original (its headers may be what did not fit), so it cannot fail itself
 * unless the limits are absurdly small.
 */
function fallbackReply(e: unknown): OutgoingReply {
  const tooLarge = e instanceof FrameError && e.code === "FRAME_TOO_LARGE";
  const err =
    e instanceof RpcError
      ? e
      : tooLarge
        ? new RpcError(Code.RESOURCE_EXHAUSTED, `the response is too large: ${e.message}`)
        : new RpcError(Code.INTERNAL, `the response cannot be sent: ${e instanceof Error ? e.message : String(e)}`);
  return { headers: { [STATUS]: String(err.code), [MESSAGE]: boundText(err.message) } };
}

function ignore(): void {}

/** The frame refusing a connection: a `crrst` control frame with RESOURCE_EXHAUSTED and why. */
function refusalFrame(maxConnections: number, limits: FrameLimits): Buffer {
  const w = new Writer(256);
  const mark = beginFrame(w, 0);
  const count = writeStringInfo(
    w,
    { [STATUS]: String(Code.RESOURCE_EXHAUSTED), [MESSAGE]: `the server is at its limit of ${maxConnections} connections (maxConnections); try another instance or later` },
    StrKey.reset,
    "1",
  );
  endHeader(w, mark, count, limits);
  writeKitexMeta(w, MessageType.Reply, "", 0);
  endFrame(w, mark, limits);
  return Buffer.from(w.finish());
}

/**
 * The server half of Meridian's TCP transport: accepts connections, splits TTHeader frames,
 * hands each call to the dispatcher and writes replies on the same connection, in any order;
 * streams go to the stream dispatcher (docs/tcp.md, "Streams").
 */
export class TcpServerTransport implements ServerTransport {
  readonly limits: FrameLimits;
  /** Receive window of each stream, in messages. */
  readonly streamWindow: number;
  readonly connection: ConnectionOptions;
  readonly deadlines = new DeadlineQueue();
  readonly drainQuietMs: number;
  /** Graceful shutdown has begun: replies carry `crrst`. */
  draining = false;
  private server: Server | TlsServer | undefined;
  /** TLS handshakes that failed (bad or missing client certificate, not TLS at all, timeout). */
  tlsFailures = 0;
  /** The limits against hostile peers in effect (options, or DEFAULT_SERVER_LIMITS): see TcpServerOptions. */
  readonly maxConcurrentCalls: number;
  readonly maxConcurrentStreams: number;
  readonly maxConnections: number;
  readonly maxPartialFrameBytes: number;
  readonly frameTimeoutMs: number;
  readonly maxInflightBytes: number;
  readonly maxServerBufferedBytes: number;
  /** Replies replaced by an error reply because they could not be encoded. */
  failedReplies = 0;
  private readonly conns = new Set<ServerConnection>();
  private closing: Promise<void> | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private frameSweeper: NodeJS.Timeout | undefined;
  private readonly idleTimeoutMs: number;
  /** Connections receiving a partial frame, oldest partial frame first (a Set keeps insertion order). */
  private readonly partials = new Set<ServerConnection>();
  private partialBytes = 0;
  /** Reply bytes queued over all connections (their last reports). */
  private queuedBytes = 0;
  /** Request bytes of the unary calls in flight over all connections. */
  private inflightBytes = 0;
  /** Connections not read because the server's buffered bytes are over budget. */
  private readonly queuePaused = new Set<ServerConnection>();
  private refused = 0;
  private closedOverBudget = 0;
  private closedTimeout = 0;
  /** The frame that refuses a connection past `maxConnections`, encoded once. */
  private refusal: Buffer | undefined;

  constructor(private options: TcpServerOptions = {}) {
    this.connection = connectionOptions(options);
    this.limits = this.connection.limits;
    this.drainQuietMs = options.drainQuietMs ?? 100;
    this.streamWindow = Math.max(1, options.streamWindow ?? STREAM_INITIAL_WINDOW);
    this.idleTimeoutMs = options.idleTimeoutMs ?? 600_000;
    const d = DEFAULT_SERVER_LIMITS;
    this.maxConcurrentCalls = Math.max(1, options.maxConcurrentCalls ?? d.maxConcurrentCalls);
    this.maxConcurrentStreams = Math.max(1, options.maxConcurrentStreams ?? d.maxConcurrentStreams);
    this.maxConnections = Math.max(1, options.maxConnections ?? d.maxConnections);
    // A budget below one frame would close every connection that receives a large frame.
    this.maxPartialFrameBytes = Math.max(this.limits.maxFrameSize, options.maxPartialFrameBytes ?? d.maxPartialFrameBytes);
    this.frameTimeoutMs = Math.max(0, options.frameTimeoutMs ?? d.frameTimeoutMs);
    this.maxInflightBytes = Math.max(this.limits.maxFrameSize, options.maxInflightBytes ?? d.maxInflightBytes);
    this.maxServerBufferedBytes = Math.max(this.connection.maxQueuedBytes, options.maxServerBufferedBytes ?? d.maxServerBufferedBytes);
    if (options.tls !== undefined) serverSecureOptions(options.tls);
    else if (options.plaintext !== true && !isLoopbackHost(options.host ?? "127.0.0.1")) {
      throw new ConfigError(
        "INVALID_OPTION",
        `TcpServerTransport: listening on ${options.host} without TLS would take unencrypted calls from the network. Set tls: { cert, key }, or plaintext: true to do so on purpose`,
      );
    }
  }

  /**
   * Replaces the certificate, key and client CA without a restart: handshakes from now on use
   * them, open connections keep theirs. `requireClientCert` stays as the server started.
   */
  updateTls(tls: ServerTls): void {
    const server = this.server;
    if (this.options.tls === undefined) throw new ConfigError("INVALID_OPTION", "TcpServerTransport.updateTls: this server was started without tls");
    const secure = serverSecureOptions(tls);
    if (server !== undefined) (server as TlsServer).setSecureContext(secure);
    this.options = { ...this.options, tls };
  }

  /** Open client connections. */
  get connectionCount(): number {
    return this.conns.size;
  }

  /** What the server counts about peers it held back (see {@link TcpServerStats}). */
  get stats(): TcpServerStats {
    let paused = 0;
    for (const c of this.conns) if (c.fc.paused) paused++;
    return {
      connections: this.conns.size,
      refusedConnections: this.refused,
      closedOverPartialBudget: this.closedOverBudget,
      closedFrameTimeout: this.closedTimeout,
      partialFrameBytes: this.partialBytes,
      queuedReplyBytes: this.queuedBytes,
      inflightRequestBytes: this.inflightBytes,
      pausedConnections: paused,
      failedReplies: this.failedReplies,
    };
  }

  /** A partial frame begins on `c` (or its reading resumed): its clock starts now, last in line. */
  partialStarted(c: ServerConnection): void {
    c.partialSince = Date.now();
    this.partials.delete(c);
    this.partials.add(c);
  }

  /**
   * `c` needs `bytes` more for its partial frame. Over budget, the connections with the oldest
   * partial frames are closed until it fits; false when `c` itself is the oldest (the caller
   * closes it). Well-behaved peers finish their frames quickly, so the oldest is the one stalling.
   */
  reservePartial(c: ServerConnection, bytes: number): boolean {
    while (this.partialBytes + bytes > this.maxPartialFrameBytes) {
      const oldest = this.partials.values().next().value;
      this.closedOverBudget++;
      if (oldest === undefined || oldest === c) return false;
      this.partials.delete(oldest);
      oldest.fc.destroy(new FrameError("OVER_BUDGET", `closed to keep partially received frames under ${this.maxPartialFrameBytes} bytes: its frame was the oldest`));
    }
    this.partialBytes += bytes;
    return true;
  }

  /** `c`'s partial frame is complete or dropped. */
  partialEnded(c: ServerConnection, bytes: number): void {
    this.partialBytes -= bytes;
    c.partialSince = 0;
    this.partials.delete(c);
  }

  /** Closes connections whose partial frame has been arriving for longer than `frameTimeoutMs`. */
  private sweepFrames(): void {
    const cutoff = Date.now() - this.frameTimeoutMs;
    for (const c of this.partials) {
      if (c.partialSince > cutoff) break; // in order of age: the rest are younger
      if (c.fc.paused) continue; // not its fault: the server stopped reading it
      this.closedTimeout++;
      this.partials.delete(c);
      c.fc.destroy(new FrameError("FRAME_TIMEOUT", `a frame did not complete within ${this.frameTimeoutMs} ms`));
    }
  }

  /**
   * `c` holds `delta` more bytes for calls: replies queued (`reply`) or requests in flight. Over
   * `maxServerBufferedBytes`, a connection that holds more than its share is not read until the
   * sum falls back under three quarters of the budget (or its own part under half its share), so
   * the peers that flood or do not read their replies stop adding to them and the others go on.
   */
  buffered(c: ServerConnection, delta: number, reply: boolean): void {
    if (reply) this.queuedBytes += delta;
    else this.inflightBytes += delta;
    const total = this.queuedBytes + this.inflightBytes;
    if (total > this.maxServerBufferedBytes) {
      if (!c.fc.pausedFor(PauseReason.ServerQueue) && c.heldBytes > this.fairShare()) {
        this.queuePaused.add(c);
        c.pause(PauseReason.ServerQueue);
      }
    } else if (this.queuePaused.size > 0 && total <= this.maxServerBufferedBytes * 0.75) {
      for (const p of this.queuePaused) p.resume(PauseReason.ServerQueue);
      this.queuePaused.clear();
    }
    if (delta < 0 && c.fc.pausedFor(PauseReason.ServerQueue) && c.heldBytes < this.fairShare() / 2) {
      this.queuePaused.delete(c);
      c.resume(PauseReason.ServerQueue);
    }
  }

  private fairShare(): number {
    return this.maxServerBufferedBytes / Math.max(1, this.conns.size);
  }

  /** Refuses a connection past `maxConnections`: a `crrst` control frame saying why, then close. */
  private refuse(socket: Socket): void {
    this.refused++;
    socket.on("error", ignore);
    this.refusal ??= refusalFrame(this.maxConnections, this.limits);
    socket.end(this.refusal, () => socket.destroy());
  }

  listen(dispatch: CallDispatcher, streams?: StreamDispatcher): Promise<{ address: string }> {
    if (this.server !== undefined) return Promise.reject(new Error("TcpServerTransport.listen() called twice"));
    const tls = this.options.tls;
    /** Connections (`address:port`) whose TLS handshake is done. */
    const secured = new Set<string>();
    const accept = (socket: Socket): void => {
      if (tls !== undefined) secured.add(`${socket.remoteAddress}:${socket.remotePort}`);
      if (this.draining) {
        socket.on("error", ignore);
        socket.destroy();
        return;
      }
      if (this.conns.size >= this.maxConnections) {
        this.refuse(socket);
        return;
      }
      this.conns.add(new ServerConnection(socket, this, dispatch, streams));
    };
    let server: Server | TlsServer;
    if (tls === undefined) server = createServer(accept);
    else {
      const handshakeMs = this.options.tlsHandshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS;
      server = createTlsServer({ ...serverSecureOptions(tls), handshakeTimeout: handshakeMs }, accept);
      // A failed handshake closes that socket; count it, and keep it away from the process.
      server.on("tlsClientError", () => this.tlsFailures++);
      // node:tls times a handshake only once the client has begun one: a connection that sends
      // nothing at all is timed here.
      server.on("connection", (raw: Socket) => {
        const key = `${raw.remoteAddress}:${raw.remotePort}`;
        const timer = setTimeout(() => {
          // Counted by the tlsClientError this raises.
          if (!secured.has(key)) raw.destroy();
        }, handshakeMs);
        timer.unref();
        raw.once("close", () => {
          clearTimeout(timer);
          secured.delete(key);
        });
      });
    }
    this.server = server;
    if (this.frameTimeoutMs > 0) {
      this.frameSweeper = setInterval(() => this.sweepFrames(), Math.max(20, Math.min(1000, Math.floor(this.frameTimeoutMs / 4))));
      this.frameSweeper.unref();
    }
    if (this.idleTimeoutMs > 0) {
      const seen = new Map<ServerConnection, { activity: number; since: number }>();
      this.sweeper = setInterval(() => {
        const now = Date.now();
        for (const c of this.conns) {
          const s = seen.get(c);
          if (s === undefined || s.activity !== c.fc.activity || c.busy > 0) seen.set(c, { activity: c.fc.activity, since: now });
          else if (now - s.since >= this.idleTimeoutMs) c.fc.end();
        }
        for (const c of seen.keys()) if (!this.conns.has(c)) seen.delete(c);
      }, timerDelay(Math.max(5, Math.floor(this.idleTimeoutMs / 4))));
      this.sweeper.unref();
    }
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port ?? 0, this.options.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        // Errors of a listening server are accept failures (EMFILE, ECONNABORTED): libuv goes on
        // accepting once it can, and with no listener Node would end the process.
        server.on("error", ignore);
        const a = server.address();
        if (a === null || typeof a === "string") return resolve({ address: String(a) });
        resolve({ address: a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}` });
      });
    });
  }

  /**
   * Graceful shutdown: stops accepting, sends every connection a shutdown notice (a `crrst`
   * control frame; every later reply, stream header and trailer carries `crrst` too), lets calls
   * and streams in flight finish, closes connections as they drain, and after `graceMs` closes
   * whatever is left (aborting the calls and streams).
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.draining = true;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    if (this.frameSweeper !== undefined) clearInterval(this.frameSweeper);
    const server = this.server;
    const stopped = new Promise<void>((resolve) => {
      if (server === undefined) return resolve();
      server.close(() => resolve());
    });
    for (const c of this.conns) c.sendShutdownNotice();
    const timer = startTimer(graceMs, () => {
      for (const c of this.conns) c.fc.destroy(new Error(`graceful shutdown: calls still running after ${graceMs} ms`));
    });
    await stopped;
    timer.cancel();
    this.deadlines.stop();
  }

  /** Called by a connection once it is closed. */
  forget(c: ServerConnection): void {
    this.conns.delete(c);
    this.queuePaused.delete(c);
  }
}
