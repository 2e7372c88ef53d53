import {
  Metadata,
  Server,
  type sendUnaryData,
  type ServerCredentials,
  type ServerDuplexStream,
  type ServerOptions,
  type ServerUnaryCall,
  type status as GrpcStatus,
} from "@grpc/grpc-js";
import { Writer } from "../../runtime/index.js";
import {
  startTimer,
  ServerCall,
  errorHeaders,
  dispatchCall,
  type CallDispatcher,
  type IncomingStream,
  type OutgoingReply,
  type StreamDispatcher,
  settleCall,
} from "../../runtime/transport.js";
import {
  type ServiceDescriptor,
  Code,
  ConfigError,
  RpcError,
  Cancellation,
  HeaderKeys,
  type Headers,
  type ServerTransport,
} from "../../runtime/api.js";
import { serverCredentials, type GrpcServerTls } from "./tls.js";
import { DrainGate, PullReader } from "./stream.js";
import { fromMetadata, grpcPath, isStatusHeader, statusOf, toMetadata } from "./wire.js";

/** Options of {@link GrpcServerTransport}. */
export interface GrpcServerOptions {
  /**
   * The services this server answers. grpc-js routes a call by its path before anything else
   * sees it and needs every method registered up front, with its kind; the seam's dispatchers
   * do not list them, so the transport is told here (the same descriptors given to
   * `server.register`). Calls to other paths are answered UNIMPLEMENTED by grpc-js.
   */
  services: readonly ServiceDescriptor[];
  /** Interface to listen on. Default "127.0.0.1"; "0.0.0.0" or "::" for every interface. */
  host?: string;
  /** Port; 0 (default) picks a free one, reported by `listen()`. */
  port?: number;
  /** TLS (node:tls through grpc-js's `ServerCredentials.createSsl`); plaintext when neither this nor `credentials` is set. */
  tls?: GrpcServerTls;
  /** Any grpc-js server credentials, instead of `tls`. */
  credentials?: ServerCredentials;
  /**
   * grpc-js server options (keepalive, message size limits, ...). Meridian's default on top of
   * grpc-js's: `grpc.max_concurrent_streams` {@link DEFAULT_GRPC_MAX_CONCURRENT_STREAMS} (grpc-js
   * sets no limit), so one connection cannot hold an unbounded number of calls; see docs/grpc.md.
   */
  serverOptions?: ServerOptions;
}

/**
 * Calls (HTTP/2 streams) in flight per connection unless `serverOptions` says otherwise: past it a
 * client queues new calls on its side until one finishes, as HTTP/2 prescribes.
 */
export const DEFAULT_GRPC_MAX_CONCURRENT_STREAMS = 100;

/** Request bytes go to the dispatcher as they arrived; reply bytes were encoded by the reply itself. */
const passBytes = (b: Buffer): Buffer => b;

/** How close to its deadline a cancelled call counts as having run out of time. */
const DEADLINE_SLACK_MS = 50;

/** A status grpc-js sends: Meridian's codes are gRPC's, one to one. */
interface SendStatus {
  code: GrpcStatus;
  details: string;
  metadata: Metadata;
}

/**
 * The status of reply headers carrying `rpc-status`: the code, `rpc-message` as details, every
 * other header as trailers. Headers that cannot be metadata turn it into INTERNAL.
 */
function failureStatus(headers: Headers): SendStatus {
  try {
    const metadata = toMetadata(headers, new Metadata(), isStatusHeader);
    return { code: statusOf(headers) as number as GrpcStatus, details: headers[HeaderKeys.message] ?? "", metadata };
  } catch (e) {
    return { code: Code.INTERNAL as number as GrpcStatus, details: `bad response headers: ${(e as Error).message}`, metadata: new Metadata() };
  }
}

/** Response headers the handler set that are not valid metadata: the server's fault, so INTERNAL. */
function internal(e: unknown): Headers {
  return errorHeaders(new RpcError(Code.INTERNAL, `bad response headers: ${e instanceof Error ? e.message : String(e)}`));
}

/** A grpc-js deadline as Meridian's: absolute ms, undefined for none. */
function deadlineOf(d: Date | number): number | undefined {
  const ms = typeof d === "number" ? d : d.getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * One unary call being served: the runtime's ServerCall (its signal created only when something
 * reads it), aborted when grpc-js reports the call cancelled (by the peer, or at its deadline).
 */
class GrpcIncomingCall extends ServerCall {
  /** The reply has been handed to grpc-js: grpc-js's later 'cancelled' is not a cancellation. */
  replied = false;

  constructor(
    private readonly server: GrpcServerTransport,
    private readonly call: ServerUnaryCall<Buffer, Buffer>,
    service: string,
    method: string,
  ) {
    super(service, method, fromMetadata(call.metadata), deadlineOf(call.getDeadline()));
  }

  get payload(): Uint8Array {
    return this.call.request;
  }

  get peer(): string {
    return this.call.getPeer();
  }

  protected override follow(): void {
    if (this.call.cancelled) this.abort(this.server.cancelReason(this.deadline));
    else {
      this.call.once("cancelled", () => {
        if (!this.replied) this.abort(this.server.cancelReason(this.deadline));
      });
    }
  }
}

/** One streaming call being served (any of the three streaming kinds: all are bidi on grpc-js). */
class GrpcIncomingStream implements IncomingStream {
  readonly headers: Headers;
  readonly deadline: number | undefined;
  readonly peer: string;
  readonly signal = new Cancellation();
  readonly requests: PullReader<Uint8Array>;
  private readonly gate: DrainGate;
  private done = false;

  constructor(
    private readonly server: GrpcServerTransport,
    private readonly call: ServerDuplexStream<Buffer, Buffer>,
    readonly service: string,
    readonly method: string,
  ) {
    this.headers = fromMetadata(call.metadata);
    this.deadline = deadlineOf(call.getDeadline());
    this.peer = call.getPeer();
    this.gate = new DrainGate(call);
    // A handler that stops reading early just stops pulling; the call goes on.
    this.requests = new PullReader(call, () => {});
    // A cancelled call may first look half-closed: Node's HTTP/2 client ends its side of the
    // stream (END_STREAM) before it resets it, and the reset can arrive a little later. The
    // signal aborts when it does (unless the handler has finished by then).
    call.on("end", () => this.requests.finish());
    call.once("cancelled", () => {
      if (this.done) return;
      this.done = true;
      const reason = server.cancelReason(this.deadline);
      this.signal.abort(reason);
      this.requests.abort(reason);
      this.gate.settle(reason);
    });
  }

  sendHeaders(headers: Headers): void {
    if (this.done) return;
    this.call.sendMetadata(toMetadata(headers));
  }

  send(encode: (writer: Writer) => void): Promise<void> {
    if (this.signal.aborted) return Promise.reject(this.signal.reason);
    if (this.done) return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, "send() after the call ended"));
    const w = this.server.writer;
    try {
      encode(w);
    } catch (e) {
      w.discard();
      return Promise.reject(e);
    }
    return this.gate.write(w.finish());
  }

  /** Ends the call with the dispatcher's trailers: OK with trailers, or the status they carry. */
  end(trailers: Headers): void {
    if (this.done) return;
    this.done = true;
    this.requests.finish();
    if (statusOf(trailers) === Code.OK) {
      let md: Metadata | undefined;
      try {
        md = toMetadata(trailers, new Metadata(), isStatusHeader);
      } catch (e) {
        this.fail(internal(e));
        return;
      }
      this.gate.settle(undefined);
      this.call.end(md);
    } else {
      this.fail(trailers);
    }
  }

  private fail(trailers: Headers): void {
    this.gate.settle(new RpcError(statusOf(trailers), trailers[HeaderKeys.message] ?? ""));
    // grpc-js's own 'error' listener turns this into the call's status, after queued messages.
    this.call.emit("error", failureStatus(trailers));
  }
}

/**
 * The server half of Meridian's gRPC transport, on a @grpc/grpc-js Server: every method of the
 * configured services is registered under `/<package.Service>/<Method>`; unary calls go to the
 * call dispatcher with their raw payload, streaming calls to the stream dispatcher. Replies are
 * encoded by the reply's own `encode(writer)` and handed to grpc-js as bytes.
 */
export class GrpcServerTransport implements ServerTransport {
  /** The writer replies are encoded into (its slabs are only appended to: handed-out bytes stay valid). */
  readonly writer = new Writer();
  private server: Server | undefined;
  private closing: Promise<void> | undefined;
  /** Graceful shutdown has begun. */
  private draining = false;

  constructor(private readonly options: GrpcServerOptions) {
    if (options === undefined || !Array.isArray(options.services) || options.services.length === 0) {
      throw new ConfigError(
        "INVALID_OPTION",
        "GrpcServerTransport needs the services it serves: new GrpcServerTransport({ services: [FeedService] }) (grpc-js routes by path and must know every method up front)",
      );
    }
  }

  async listen(dispatch: CallDispatcher, streams?: StreamDispatcher): Promise<{ address: string }> {
    if (this.server !== undefined) throw new ConfigError("ALREADY_LISTENING", "GrpcServerTransport.listen() called twice");
    const credentials = serverCredentials(this.options);
    const server = (this.server = new Server({ "grpc.max_concurrent_streams": DEFAULT_GRPC_MAX_CONCURRENT_STREAMS, ...this.options.serverOptions }));
    for (const service of this.options.services) {
      for (const method of Object.values(service.methods)) {
        const path = grpcPath(service.typeName, method.name);
        if (method.kind === "unary") server.register(path, this.unaryHandler(service.typeName, method.name, dispatch), passBytes, passBytes, "unary");
        else server.register(path, this.streamHandler(service.typeName, method.name, streams), passBytes, passBytes, "bidi");
      }
    }
    const host = this.options.host ?? "127.0.0.1";
    const hostPart = host.includes(":") ? `[${host}]` : host;
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${hostPart}:${this.options.port ?? 0}`, credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    return { address: `${hostPart}:${port}` };
  }

  /**
   * Graceful shutdown: grpc-js stops accepting calls and sends GOAWAY, calls in flight may
   * finish for `graceMs`, then every connection is closed (aborting what is left).
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.draining = true;
      const server = this.server;
      if (server === undefined) return resolve();
      const timer = startTimer(graceMs, () => server.forceShutdown());
      server.tryShutdown(() => {
        timer.cancel();
        resolve();
      });
    });
    return this.closing;
  }

  /**
   * Why a call's signal aborts when grpc-js reports it cancelled. The client's deadline timer
   * and the server's fire at about the same moment (the server's a network latency later), and
   * the client's RST_STREAM often wins: a cancellation that close to the deadline is the deadline.
   */
  cancelReason(deadline: number | undefined): RpcError {
    if (deadline !== undefined && Date.now() >= deadline - DEADLINE_SLACK_MS) return new RpcError(Code.DEADLINE_EXCEEDED, "the call's deadline passed");
    if (this.draining) return new RpcError(Code.CANCELLED, "the server is shutting down");
    return new RpcError(Code.CANCELLED, "the client cancelled the call or the connection was lost");
  }

  private unaryHandler(service: string, method: string, dispatch: CallDispatcher) {
    return (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>): void => {
      const incoming = new GrpcIncomingCall(this, call, service, method);
      dispatchCall(
        dispatch,
        incoming,
        (_, reply) => this.reply(incoming, call, callback, reply.headers, reply.encode),
        (e) => ({ headers: errorHeaders(e) }),
        // grpc-js refused the reply itself: a bare INTERNAL cannot fail for the same reason.
        () => callback({ code: Code.INTERNAL as number as GrpcStatus, details: "internal error: the reply could not be sent", metadata: new Metadata() }),
      );
    };
  }

  private reply(
    incoming: GrpcIncomingCall,
    call: ServerUnaryCall<Buffer, Buffer>,
    callback: sendUnaryData<Buffer>,
    headers: Headers,
    encode: OutgoingReply["encode"],
  ): void {
    incoming.replied = true;
    if (call.cancelled) return;
    if (statusOf(headers) !== Code.OK) return callback(failureStatus(headers));
    let md: Metadata;
    try {
      md = toMetadata(headers, new Metadata(), isStatusHeader);
    } catch (e) {
      return callback(failureStatus(internal(e)));
    }
    const w = this.writer;
    let bytes: Buffer;
    try {
      encode?.(w);
      bytes = w.finish();
    } catch (e) {
      w.discard();
      return callback(failureStatus(errorHeaders(e)));
    }
    call.sendMetadata(md);
    callback(null, bytes);
  }

  private streamHandler(service: string, method: string, streams: StreamDispatcher | undefined) {
    return (call: ServerDuplexStream<Buffer, Buffer>): void => {
      const incoming = new GrpcIncomingStream(this, call, service, method);
      if (streams === undefined) {
        incoming.end(errorHeaders(new RpcError(Code.UNIMPLEMENTED, `${service}/${method} is a streaming method and this server serves no streaming calls`)));
        return;
      }
      settleCall(
        () => streams(incoming),
        (trailers) => incoming.end(trailers),
        errorHeaders,
        () => call.destroy(),
      );
    };
  }
}
