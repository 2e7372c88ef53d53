import type { Socket } from "node:net";
import {
  ReceivedResponse,
  abortError,
  raceDeadline,
  raceSignal,
  type CallSignal,
  type ClientStream,
  type DeadlineEntry,
  DeadlineQueue,
  thriftInfo,
  timerDelay,
  type TransportRequest,
  type TransportResponse,
  type TransportStreamRequest,
  warmUpAll,
  writeThriftEnvelope,
} from "../../runtime/transport.js";
import {
  Code,
  RpcError,
  type ClientTls,
  HeaderKeys,
  type ClientTransport,
  type Endpoint,
  type EndpointHealth,
  type Headers,
  type PayloadProtocol,
} from "../../runtime/api.js";
import { CallTable } from "./calls.js";
import { connectionOptions, FrameConnection, type ConnectionHandler, type ConnectionOptions } from "./connection.js";
import { wireTimeout } from "./deadlines.js";
import {
  FrameError,
  FrameHead,
  HeaderFlags,
  KitexErrorType,
  KitexMeta,
  MessageType,
  StrKey,
  beginFrame,
  endFrame,
  endHeader,
  parseErrorProto,
  parseFrame,
  parseKitexMeta,
  writeKitexMeta,
  writeRequestInfo,
  type FrameLimits,
  type Framing,
} from "./wire.js";
import { AddressPool, dial, type PoolOptions } from "./pool.js";
import { checkClientTls, tlsErrorText } from "./tls.js";
import { applicationExceptionError, beginThriftFrame, parseEnvelope, thriftProtocolOf, type ThriftWireOptions } from "./thrift.js";
import { STREAM_INITIAL_WINDOW, TcpClientStream, type ClientStreamHost, type StreamTransport, type TcpStream } from "./stream.js";

/** Options of {@link TcpClientTransport}. */
export interface TcpClientOptions {
  /** Where calls go when the request names no endpoint (`host:port`). */
  address?: string;
  /** Multiplexed connections per address. Default 1: one connection batches best. */
  connectionsPerAddress?: number;
  /** Default 2000 ms; a call's own deadline shortens it. */
  connectTimeoutMs?: number;
  /** Reconnect backoff: first delay (default 100 ms), doubling up to `backoffMaxMs` (default 10 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Close connections idle this long (no call in flight, no traffic). Default 60 s; 0 never. */
  idleTimeoutMs?: number;
  /** TCP keepalive initial delay. Default 30 s; 0 disables keepalive. */
  keepAliveMs?: number;
  /** Bound on bytes queued per connection; past it calls fail with RESOURCE_EXHAUSTED. Default 16 MiB. */
  maxQueuedBytes?: number;
  /** Frame size, header count and header size limits (defaults: 4 MiB, 1024, 64 KiB). */
  limits?: Partial<FrameLimits>;
  /** See ConnectionOptions.batching. Default "tick". */
  batching?: "tick" | "none";
  /**
   * Streams: how many response messages a stream may have in flight (sent by the server, not yet
   * taken by the consumer); the server waits for credit past it. Default 32.
   */
  streamWindow?: number;
  /**
   * TLS for every connection: the server's certificate is verified against `ca` (Node's roots by
   * default) and the address's host or `serverName`; `cert` and `key` present a client
   * certificate (mutual TLS). Change it later with `updateTls` (new connections use it).
   */
  tls?: ClientTls;
  /**
   * Send calls to non-loopback addresses without TLS. Default false: without `tls`, only
   * loopback addresses (127.0.0.0/8, ::1, localhost) are called, and any other fails with
   * FAILED_PRECONDITION before anything is sent. Plaintext across machines is a choice.
   */
  plaintext?: boolean;
  /**
   * How calls of Thrift functions (descriptors generated from .thrift) are framed and encoded;
   * protobuf calls on the same transport are not affected. Default: TTHeader with Thrift Binary,
   * as Kitex sends (docs/thrift.md).
   */
  thrift?: ThriftWireOptions;
}

const STATUS = HeaderKeys.status;
const MESSAGE = HeaderKeys.message;
const MAX_SEQ = 0x7fffffff;

/** The result struct of a oneway call, which has no reply: empty (a stop byte, in either protocol). */
const ONEWAY_RESULT = new Uint8Array([0]);

/** A call waiting for its response: in its connection's map, the deadline queue and its signal. */
class PendingCall implements DeadlineEntry {
  dlAt = 0;
  dlPrev: DeadlineEntry | undefined = undefined;
  dlNext: DeadlineEntry | undefined = undefined;
  dlQueued = false;
  resolve!: (r: TransportResponse) => void;
  reject!: (e: RpcError) => void;

  constructor(
    readonly conn: ClientConnection,
    readonly seq: number,
    readonly signal: CallSignal,
    /** The connection's write batch the request was encoded in. */
    readonly batch: number,
  ) {}

  /** Deadline passed. */
  expire(): void {
    this.conn.fail(this, new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded while waiting for the response"));
  }

  /**
   * The call's signal aborted (EventListenerObject: no closure per call). The request may still
   * leave with this tick's batch, so the error never claims notSent.
   */
  handleEvent(): void {
    this.conn.fail(this, abortError(this.signal, false));
  }

  /** The request has been handed to the socket. */
  get sent(): boolean {
    return this.conn.fc.batch > this.batch;
  }
}

/**
 * One multiplexed connection of the client: calls matched to responses by sequence id, streams
 * to their frames by stream id (the same counter numbers both).
 */
class ClientConnection implements ConnectionHandler, ClientStreamHost {
  readonly fc: FrameConnection;
  readonly pending = new CallTable<PendingCall>();
  readonly streams = new Map<number, TcpStream>();
  /** The server said it is going away (crrst): no new calls; closed once the last one is answered. */
  draining = false;
  private seq = 0;
  private readonly head = new FrameHead();
  private readonly meta = new KitexMeta();
  private closeReason: string | undefined;

  constructor(
    socket: Socket,
    private readonly transport: TcpClientTransport,
    private readonly pool: AddressPool<ClientConnection>,
  ) {
    this.fc = new FrameConnection(socket, transport.connection, this);
  }

  get retired(): boolean {
    return this.draining || this.fc.closed;
  }
  get congested(): boolean {
    return this.fc.congested;
  }
  get inflight(): number {
    return this.pending.size + this.streams.size;
  }
  get activity(): number {
    return this.fc.activity;
  }
  get limits(): FrameLimits {
    return this.transport.limits;
  }
  get deadlines(): DeadlineQueue {
    return this.transport.deadlines;
  }
  get streamWindow(): number {
    return this.transport.streamWindow;
  }

  private nextSeq(): number {
    let seq = ++this.seq;
    if (seq > MAX_SEQ) seq = this.seq = 1;
    return seq;
  }

  /** ClientStreamHost: registers a stream under a fresh id. */
  open(stream: TcpStream): number {
    const sid = this.nextSeq();
    this.streams.set(sid, stream);
    return sid;
  }

  /** ClientStreamHost: a stream is over. */
  forget(stream: TcpStream): void {
    if (this.streams.get(stream.sid) !== stream) return;
    this.streams.delete(stream.sid);
    if (this.draining && this.inflight === 0) this.close("drained after the server's shutdown notice");
  }

  /** Encodes the request into the connection's slab and registers it. */
  call(req: TransportRequest): Promise<TransportResponse> {
    const fc = this.fc;
    const w = fc.writer;
    const limits = this.transport.limits;
    const seq = this.nextSeq();
    const deadline = req.deadline;
    const now = Date.now();
    let timeoutMs = -1;
    if (deadline !== undefined) {
      timeoutMs = wireTimeout(deadline, now);
      // Not a number counts as passed: a NaN deadline has nothing to send and nothing to wait for.
      if (!(timeoutMs > 0)) {
        return Promise.reject(new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded before the call was sent", { notSent: true }));
      }
    }
    const thrift = thriftInfo(req.method);
    let mark = w.pos - w.start;
    try {
      if (thrift === undefined) {
        mark = beginFrame(w, seq);
        const count = fc.stringInfo.write(w, req.headers, StrKey.service, req.service) + writeRequestInfo(w, timeoutMs, now);
        endHeader(w, mark, count, limits);
        writeKitexMeta(w, MessageType.Call, req.method.name, seq);
        req.encode(w);
      } else {
        const { framing, protocol } = this.transport.thrift;
        mark = beginThriftFrame(w, framing, protocol, seq, req.headers, limits, [StrKey.service, req.service], (w) => writeRequestInfo(w, timeoutMs, now));
        writeThriftEnvelope(w, protocol, thrift.oneway ? MessageType.Oneway : MessageType.Call, req.method.name, seq);
        req.encode(w, protocol);
      }
      endFrame(w, mark, limits);
    } catch (e) {
      fc.rollback(mark);
      return Promise.reject(requestError(e));
    }
    if (thrift?.oneway === true) {
      // Nothing comes back: the call is done once its frame is on its way.
      fc.frameWritten();
      return Promise.resolve(new ReceivedResponse(ONEWAY_RESULT, {}, this.transport.thrift.protocol));
    }
    const p = new PendingCall(this, seq, req.signal, fc.batch);
    const promise = new Promise<TransportResponse>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    this.pending.add(p);
    if (deadline !== undefined) {
      p.dlAt = deadline;
      this.transport.deadlines.add(p);
    }
    req.signal.addEventListener("abort", p);
    fc.frameWritten();
    return promise;
  }

  /** Ends a pending call with an error (deadline, abort, connection loss). Late responses are dropped. */
  fail(p: PendingCall, e: RpcError): void {
    if (this.pending.get(p.seq) !== p) return;
    this.settle(p);
    p.reject(e);
  }

  private settle(p: PendingCall): void {
    this.pending.delete(p);
    this.transport.deadlines.remove(p);
    p.signal.removeEventListener("abort", p);
    if (this.draining && this.inflight === 0) this.close("drained after the server's shutdown notice");
  }

  onFrame(buf: Buffer, start: number, end: number): void {
    const head = parseFrame(buf, start, end, this.transport.limits, this.head);
    if (head.reset && !this.draining) this.startDraining();
    if ((head.flags & HeaderFlags.Streaming) !== 0) {
      // A frame of a stream; one of a stream already over (or never ours) is dropped.
      this.streams.get(head.seqId)?.onFrame(head, buf, end);
      return;
    }
    const protocol = thriftProtocolOf(head.protocolId);
    if (protocol !== undefined) {
      this.onThriftReply(head, buf, end, protocol);
      return;
    }
    const p = this.pending.get(head.seqId);
    if (p === undefined) return; // a control frame (seq 0), or the answer to a call given up on
    const meta = parseKitexMeta(buf, head.payloadStart, end, this.meta);
    const headers = head.headers;
    this.settle(p);
    const status = headers[STATUS];
    if (meta.messageType === MessageType.Exception || (status !== undefined && status !== "0")) {
      p.reject(responseError(headers, buf, meta.bodyStart, end));
      return;
    }
    // A view into the frame's buffer, which is never reused: the runtime decodes it without a copy.
    p.resolve(new ReceivedResponse(new Uint8Array(buf.buffer, buf.byteOffset + meta.bodyStart, end - meta.bodyStart), headers));
  }

  /** The reply to a Thrift call: its sequence id is the envelope's (a framed reply has no other). */
  private onThriftReply(head: FrameHead, buf: Buffer, end: number, protocol: PayloadProtocol): void {
    const envelope = parseEnvelope(buf, head.payloadStart, end, protocol);
    const p = this.pending.get(envelope.seqId);
    if (p === undefined) return; // the answer to a call given up on
    const headers = head.headers;
    this.settle(p);
    if (envelope.type === MessageType.Exception) {
      p.reject(applicationExceptionError(buf, envelope.bodyStart, end, protocol, headers));
      return;
    }
    if (envelope.type !== MessageType.Reply) {
      p.reject(new RpcError(Code.INTERNAL, `the server answered with Thrift message type ${envelope.type}, not a reply`, { headers }));
      return;
    }
    p.resolve(new ReceivedResponse(new Uint8Array(buf.buffer, buf.byteOffset + envelope.bodyStart, end - envelope.bodyStart), headers, protocol));
  }

  private startDraining(): void {
    this.draining = true;
    this.pool.release(this, false);
    this.pool.markDraining();
    if (this.inflight === 0) this.close("the server is shutting down");
  }

  onClose(error: Error | undefined): void {
    this.pool.release(this, !this.draining && this.closeReason === undefined && !this.pool.closed);
    const reason = this.closeReason ?? (error instanceof FrameError ? `bad frame from the server: ${error.message}` : error !== undefined ? tlsErrorText(error) : this.silentClose());
    for (const p of this.pending.values()) {
      this.settle(p);
      p.reject(
        new RpcError(Code.UNAVAILABLE, `connection to ${this.pool.address} lost: ${reason}`, { cause: error, notSent: !p.sent }),
      );
    }
    const lost = new RpcError(Code.UNAVAILABLE, `connection to ${this.pool.address} lost: ${reason}`, { cause: error });
    for (const s of [...this.streams.values()]) s.lost(lost);
    this.streams.clear();
  }

  /**
   * Why the server closed without a word. Over TLS 1.3 a server that refuses the client's
   * certificate does so after the client's side of the handshake is done, often by just closing.
   */
  private silentClose(): string {
    if (this.fc.framesRead === 0 && (this.fc.socket as { encrypted?: boolean }).encrypted === true) {
      return "closed by the server before any answer: over TLS this is how a server refuses a client certificate it does not trust (check the client's tls.cert against the server's tls.ca)";
    }
    return "closed by the server";
  }

  close(reason: string): void {
    this.closeReason ??= reason;
    this.fc.end();
  }

  destroy(reason: string): void {
    this.closeReason ??= reason;
    this.fc.destroy();
  }
}

/**
 * The RpcError for a request that could not be framed: nothing was sent. The request's encoder
 * throws RpcErrors of its own (a message the codec refuses); a frame over the limits is
 * RESOURCE_EXHAUSTED or INVALID_ARGUMENT.
 */
function requestError(e: unknown): RpcError {
  if (e instanceof RpcError) return e.notSent ? e : new RpcError(e.code, e.message, { cause: e, headers: e.headers, notSent: true });
  if (e instanceof FrameError) {
    const code = e.code === "FRAME_TOO_LARGE" ? Code.RESOURCE_EXHAUSTED : Code.INVALID_ARGUMENT;
    return new RpcError(code, `request not sent: ${e.message}`, { cause: e, notSent: true });
  }
  return new RpcError(Code.INTERNAL, `request not sent: ${e instanceof Error ? e.message : String(e)}`, { cause: e, notSent: true });
}

/** The RpcError of an error response: Meridian's rpc-status, or else Kitex's exception payload. */
function responseError(headers: Headers, buf: Buffer, start: number, end: number): RpcError {
  const status = headers[STATUS];
  if (status !== undefined && status !== "0") {
    const code = Number(status);
    return new RpcError(Number.isInteger(code) && code > 0 && code <= 16 ? code : Code.UNKNOWN, headers[MESSAGE] ?? "", {
      headers,
      notSent: headers[HeaderKeys.refused] !== undefined,
    });
  }
  const { typeId, message } = parseErrorProto(buf, start, end);
  const code =
    typeId === KitexErrorType.UnknownMethod || typeId === KitexErrorType.UnknownService
      ? Code.UNIMPLEMENTED
      : typeId === KitexErrorType.UnknownApplicationException
        ? Code.UNKNOWN
        : Code.INTERNAL;
  return new RpcError(code, message, { headers });
}

/**
 * The client half of Meridian's TCP transport: TTHeader frames over pooled, multiplexed
 * connections, unary calls and streams side by side (see docs/tcp.md for the wire format and
 * behaviour).
 */
export class TcpClientTransport implements ClientTransport, StreamTransport {
  /** `unary` rejects as soon as the call's signal aborts, whatever it is waiting for (ClientTransport.settlesOnAbort). */
  readonly settlesOnAbort = true;
  /**
   * `unary` rejects with DEADLINE_EXCEEDED once the call's deadline passes, whatever it is
   * waiting for (ClientTransport.timesCalls): a connection (see `unary`), the response (the
   * connections' DeadlineQueue).
   */
  readonly timesCalls = true;
  readonly limits: FrameLimits;
  readonly connection: ConnectionOptions;
  /** Receive window of each stream, in messages. */
  readonly streamWindow: number;
  /** Deadlines of every call in flight, on one timer. */
  readonly deadlines = new DeadlineQueue();
  private readonly states = { version: 0, avoidUntil: (address: string, now: number) => this.pools.get(address)?.avoidUntil(now) ?? 0 };
  /**
   * Which addresses load balancing should avoid: those whose server sent `crrst` (graceful
   * shutdown) or whose last connect failed, until a background connect to them succeeds.
   */
  readonly health: EndpointHealth = this.states;
  private readonly pools = new Map<string, AddressPool<ClientConnection>>();
  private readonly poolOptions: PoolOptions;
  private readonly defaultAddress: string | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  private tls: ClientTls | undefined;
  /** How Thrift calls are framed and encoded. */
  readonly thrift: { readonly framing: Framing; readonly protocol: PayloadProtocol };

  constructor(options: TcpClientOptions = {}) {
    this.thrift = {
      framing: options.thrift?.framing ?? "ttheader",
      protocol: options.thrift?.protocol === "compact" ? "thrift-compact" : "thrift-binary",
    };
    this.connection = connectionOptions(options);
    this.limits = this.connection.limits;
    if (options.tls !== undefined) checkClientTls(options.tls);
    this.tls = options.tls;
    const plaintext = options.plaintext === true;
    this.poolOptions = {
      dial: (address, timeoutMs) => dial(address, timeoutMs, this.tls, plaintext),
      size: Math.max(1, options.connectionsPerAddress ?? 1),
      connectTimeoutMs: options.connectTimeoutMs ?? 2000,
      backoffBaseMs: options.backoffBaseMs ?? 100,
      backoffMaxMs: options.backoffMaxMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    };
    this.defaultAddress = options.address;
    this.streamWindow = Math.max(1, options.streamWindow ?? STREAM_INITIAL_WINDOW);
    const idle = this.poolOptions.idleTimeoutMs;
    if (idle > 0) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(5, timerDelay(Math.floor(idle / 4))));
      this.sweeper.unref();
    }
  }

  unary(req: TransportRequest): Promise<TransportResponse> {
    if (req.signal.aborted) return Promise.reject(abortError(req.signal, true));
    let conn: ClientConnection | Promise<ClientConnection>;
    try {
      conn = this.connectionOrWait(req);
    } catch (e) {
      return Promise.reject(e);
    }
    if (!(conn instanceof Promise)) return conn.call(req);
    // Waiting for a connection (shared with other calls, bounded by the first one's deadline):
    // the call's signal and its own deadline end its own wait (settlesOnAbort, timesCalls), and
    // the request never left.
    let wait = raceSignal(conn, req.signal, true);
    if (req.deadline !== undefined) wait = raceDeadline(wait, req.deadline, "deadline exceeded while waiting for a connection", true);
    return wait.then((c) => (req.signal.aborted ? Promise.reject(abortError(req.signal, true)) : c.call(req)));
  }

  /**
   * A ready connection of the endpoint's pool when there is one (the hot path stays
   * synchronous), else a promise of one within the call's deadline. Throws for a bad endpoint.
   */
  private connectionOrWait(req: TransportStreamRequest): ClientConnection | Promise<ClientConnection> {
    const pool = this.pool(req.endpoint);
    const conn = pool.pick();
    if (conn !== undefined) return conn;
    const left = req.deadline === undefined ? Infinity : req.deadline - Date.now();
    // Not a number counts as passed, as in `call`: no connection is worth opening for it.
    if (!(left > 0)) throw new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded before the call was sent", { notSent: true });
    return pool.acquire(left);
  }

  /**
   * Opens a stream: on a connection of the pool (connecting if needed), multiplexed with unary
   * calls and other streams, with per-stream credit-based flow control (docs/tcp.md, "Streams").
   */
  stream(req: TransportStreamRequest): ClientStream {
    return new TcpClientStream(this, req);
  }

  /** StreamTransport: a connection for a new stream. */
  connectionFor(req: TransportStreamRequest): Promise<ClientConnection> {
    try {
      return Promise.resolve(this.connectionOrWait(req));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Replaces the TLS options (a renewed client certificate, a new CA) without a restart:
   * connections opened from now on use them; open ones keep theirs until they close.
   */
  updateTls(tls: ClientTls): void {
    checkClientTls(tls);
    this.tls = tls;
  }

  async warmUp(endpoints: readonly Endpoint[]): Promise<void> {
    await warmUpAll(endpoints, (e) => this.pool(e).warmUp());
  }

  /** Fails calls still in flight with UNAVAILABLE and closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.deadlines.stop();
    const closing: Promise<void>[] = [];
    for (const pool of this.pools.values()) {
      pool.close();
      for (const c of [...pool.conns]) {
        closing.push(new Promise((resolve) => c.fc.socket.once("close", () => resolve())));
        c.destroy("the client transport was closed");
      }
    }
    this.pools.clear();
    await Promise.all(closing);
  }

  /** Number of open connections per address (for tests and metrics). */
  connectionCount(address: string): number {
    return this.pools.get(address)?.conns.length ?? 0;
  }

  private pool(endpoint: Endpoint | undefined): AddressPool<ClientConnection> {
    const address = endpoint?.address ?? this.defaultAddress;
    if (address === undefined) {
      throw new RpcError(Code.INVALID_ARGUMENT, "no address: pass an endpoint or set the transport's address option", { notSent: true });
    }
    let pool = this.pools.get(address);
    if (pool === undefined) {
      if (this.closed) throw new RpcError(Code.UNAVAILABLE, "the TCP client transport is closed", { notSent: true });
      pool = new AddressPool(
        address,
        this.poolOptions,
        (socket, p) => new ClientConnection(socket, this, p),
        () => this.states.version++,
      );
      this.pools.set(address, pool);
    }
    return pool;
  }

  private sweep(): void {
    const now = Date.now();
    for (const pool of this.pools.values()) pool.sweep(now);
  }
}
