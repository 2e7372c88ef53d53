import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { Code, ConfigError, RpcError } from "../../runtime/rpc/errors.js";
import { SendDelayEstimator } from "../../runtime/rpc/governance/admission.js";
import { Cancellation } from "../../runtime/rpc/signal.js";
import type { PeerIdentity, ServerTls } from "../../runtime/rpc/tls.js";
import { statusToHeaders } from "../../runtime/rpc/status.js";
import {
  HeaderKeys,
  type CallDispatcher,
  type CallSignal,
  type Headers,
  type IncomingCall,
  type OutgoingReply,
  type ServerTransport,
  type StreamDispatcher,
} from "../../runtime/rpc/transport.js";
import { connectionOptions, FrameConnection, type ConnectionHandler, type ConnectionOptions } from "./connection.js";
import { DeadlineQueue, type DeadlineEntry } from "./deadlines.js";
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
  writeErrorProto,
  writeKitexMeta,
  writeStringInfo,
  type FrameLimits,
} from "./framing.js";
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
}

const STATUS = HeaderKeys.status;
const MESSAGE = HeaderKeys.message;

/**
 * One call being served. Its `signal` is created only when something reads it: a call whose
 * cancellation nobody follows costs no signal and no deadline timer.
 */
class ServerCall implements IncomingCall, DeadlineEntry {
  dlAt = 0;
  dlPrev: DeadlineEntry | undefined = undefined;
  dlNext: DeadlineEntry | undefined = undefined;
  dlQueued = false;
  private cancellation: Cancellation | undefined;
  private abortReason: RpcError | undefined;

  constructor(
    private readonly conn: ServerConnection,
    readonly seq: number,
    readonly service: string,
    readonly method: string,
    readonly headers: Headers,
    readonly payload: Uint8Array,
    readonly deadline: number | undefined,
    readonly peer: string,
    readonly oneway: boolean,
    readonly receivedAt: number,
    readonly waitedMs: number,
  ) {}

  get peerIdentity(): PeerIdentity | undefined {
    return this.conn.identity;
  }

  get signal(): CallSignal {
    let c = this.cancellation;
    if (c === undefined) {
      c = this.cancellation = new Cancellation();
      if (this.abortReason !== undefined) c.abort(this.abortReason);
      else if (this.deadline !== undefined) {
        this.dlAt = this.deadline;
        this.conn.deadlines.add(this);
      }
    }
    return c;
  }

  expire(): void {
    this.abort(new RpcError(Code.DEADLINE_EXCEEDED, "the call's deadline passed"));
  }

  /** Aborts the call's signal (now, or when it is first read). */
  abort(reason: RpcError): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.conn.deadlines.remove(this);
    this.cancellation?.abort(reason);
  }

  /** The call is answered: its deadline no longer matters. */
  done(): void {
    if (this.dlQueued) this.conn.deadlines.remove(this);
  }
}

/** One client connection of the server: unary calls and streams, multiplexed. */
class ServerConnection implements ConnectionHandler, StreamHost {
  readonly fc: FrameConnection;
  readonly calls = new Set<ServerCall>();
  readonly streams = new Map<number, TcpServerStream>();
  /** The client's verified certificate identity (mutual TLS), if any. */
  readonly identity: PeerIdentity | undefined;
  private readonly head = new FrameHead();
  private readonly meta = new KitexMeta();
  private readonly sendDelay = new SendDelayEstimator();
  private quietTimer: NodeJS.Timeout | undefined;

  constructor(
    socket: Socket,
    private readonly server: TcpServerTransport,
    private readonly dispatch: CallDispatcher,
    private readonly dispatchStream: StreamDispatcher | undefined,
  ) {
    this.fc = new FrameConnection(socket, server.connection, this);
    this.identity = socketIdentity(socket);
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
    const meta = parseKitexMeta(buf, head.payloadStart, end, this.meta);
    const type = meta.messageType;
    if (type !== MessageType.Call && type !== MessageType.Oneway) {
      throw new FrameError("BAD_PAYLOAD", `message type ${type} is not a call`);
    }
    if (this.quietTimer !== undefined) this.clearQuiet();
    const now = Date.now();
    // Time spent before this read (the client's queue, the kernel's buffers) counts against the
    // caller's budget: its deadline is when it gives up, not a timeout from now.
    const waited = head.sentAt >= 0 ? this.sendDelay.waited(head.sentAt, now) : 0;
    const deadline = head.timeoutMs > 0 ? now + head.timeoutMs - waited : undefined;
    const call = new ServerCall(
      this,
      head.seqId,
      head.service,
      meta.method,
      head.headers,
      new Uint8Array(buf.buffer, buf.byteOffset + meta.bodyStart, end - meta.bodyStart),
      deadline,
      this.fc.peer,
      type === MessageType.Oneway,
      now,
      waited,
    );
    this.calls.add(call);
    let result: Promise<OutgoingReply>;
    try {
      result = this.dispatch(call);
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(
      (reply) => this.reply(call, reply),
      (e: unknown) => this.reply(call, errorReply(e)),
    );
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
    const stream = new TcpServerStream(this, head.seqId, head.service, method, head.headers, deadline, this.fc.peer, this.identity);
    this.streams.set(head.seqId, stream);
    const dispatch = this.dispatchStream;
    if (dispatch === undefined) {
      stream.end(statusToHeaders(new RpcError(Code.UNIMPLEMENTED, `this server does not serve streams (${head.service}/${method})`), {}));
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
      (e: unknown) => stream.end(errorReply(e).headers),
    );
  }

  /** Encodes the reply straight into the connection's slab. */
  private reply(call: ServerCall, reply: OutgoingReply): void {
    call.done();
    this.calls.delete(call);
    const fc = this.fc;
    if (!fc.closed && !call.oneway) {
      const limits = this.server.limits;
      const w = fc.writer;
      const mark = beginFrame(w, call.seq);
      try {
        this.encodeReply(call, reply, mark, limits);
      } catch (e) {
        fc.rollback(mark);
        const tooLarge = e instanceof FrameError && e.code === "FRAME_TOO_LARGE";
        const fallback = errorReply(
          tooLarge ? new RpcError(Code.RESOURCE_EXHAUSTED, `the response is too large: ${(e as Error).message}`) : e,
        );
        const again = beginFrame(w, call.seq);
        this.encodeReply(call, fallback, again, limits);
      }
      fc.frameWritten();
    }
    if (this.server.draining && this.busy === 0) this.armQuiet();
  }

  private encodeReply(call: ServerCall, reply: OutgoingReply, mark: number, limits: FrameLimits): void {
    const w = this.fc.writer;
    const headers = reply.headers;
    const status = headers[STATUS];
    const failed = status !== undefined && status !== "0";
    const count = this.server.draining ? writeStringInfo(w, headers, StrKey.reset, "1") : writeStringInfo(w, headers);
    endHeader(w, mark, count, limits);
    if (failed) {
      writeKitexMeta(w, MessageType.Exception, call.method, call.seq);
      const typeId = status === String(Code.UNIMPLEMENTED) ? KitexErrorType.UnknownMethod : KitexErrorType.InternalError;
      writeErrorProto(w, typeId, headers[MESSAGE] ?? "");
    } else {
      writeKitexMeta(w, MessageType.Reply, call.method, call.seq);
      reply.encode?.(w);
    }
    endFrame(w, mark, limits);
  }

  /** Tells the client the server is going away: a control frame (sequence id 0) with `crrst`. */
  sendShutdownNotice(): void {
    if (this.fc.closed) return;
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
    }, this.server.drainQuietMs);
  }

  private clearQuiet(): void {
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
  }

  onCongested(): void {
    this.fc.pause();
  }

  onDrain(): void {
    this.fc.resume();
  }

  onClose(error: Error | undefined): void {
    if (this.quietTimer !== undefined) this.clearQuiet();
    const reason = new RpcError(Code.CANCELLED, `the connection from ${this.fc.peer} closed${error ? `: ${error.message}` : ""}`, {
      cause: error,
    });
    for (const call of this.calls) call.abort(reason);
    this.calls.clear();
    for (const stream of [...this.streams.values()]) stream.lost(reason);
    this.streams.clear();
    this.server.forget(this);
  }
}

/** The reply for an error thrown past the dispatcher (which should not happen): INTERNAL, no details. */
function errorReply(e: unknown): OutgoingReply {
  const err = e instanceof RpcError ? e : new RpcError(Code.INTERNAL, "internal error");
  return { headers: { ...err.headers, [STATUS]: String(err.code), [MESSAGE]: err.message } };
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
  private readonly conns = new Set<ServerConnection>();
  private closing: Promise<void> | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly idleTimeoutMs: number;

  constructor(private options: TcpServerOptions = {}) {
    this.connection = connectionOptions(options);
    this.limits = this.connection.limits;
    this.drainQuietMs = options.drainQuietMs ?? 100;
    this.streamWindow = Math.max(1, options.streamWindow ?? STREAM_INITIAL_WINDOW);
    this.idleTimeoutMs = options.idleTimeoutMs ?? 600_000;
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

  listen(dispatch: CallDispatcher, streams?: StreamDispatcher): Promise<{ address: string }> {
    if (this.server !== undefined) return Promise.reject(new Error("TcpServerTransport.listen() called twice"));
    const tls = this.options.tls;
    /** Connections (`address:port`) whose TLS handshake is done. */
    const secured = new Set<string>();
    const accept = (socket: Socket): void => {
      if (tls !== undefined) secured.add(`${socket.remoteAddress}:${socket.remotePort}`);
      if (this.draining) {
        socket.destroy();
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
      }, Math.max(5, Math.floor(this.idleTimeoutMs / 4)));
      this.sweeper.unref();
    }
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port ?? 0, this.options.host ?? "127.0.0.1", () => {
        server.off("error", reject);
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
    const server = this.server;
    const stopped = new Promise<void>((resolve) => {
      if (server === undefined) return resolve();
      server.close(() => resolve());
    });
    for (const c of this.conns) c.sendShutdownNotice();
    const timer = setTimeout(() => {
      for (const c of this.conns) c.fc.destroy(new Error(`graceful shutdown: calls still running after ${graceMs} ms`));
    }, graceMs);
    await stopped;
    clearTimeout(timer);
    this.deadlines.stop();
  }

  /** Called by a connection once it is closed. */
  forget(c: ServerConnection): void {
    this.conns.delete(c);
  }
}
