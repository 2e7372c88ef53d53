import {
  Client,
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type Metadata,
  type MethodDefinition,
  type ServiceError,
  type StatusObject,
} from "@grpc/grpc-js";
import { encodeShared } from "../../runtime/index.js";
import {
  ReceivedResponse,
  abortError,
  type ClientStream,
  type TransportRequest,
  type TransportResponse,
  type TransportStreamRequest,
  type WriteMessage,
  warmUpAll,
  copyHeaders,
} from "../../runtime/transport.js";
import { type MethodDescriptor, Code, RpcError, HeaderKeys, type ClientTransport, type Endpoint, type Headers } from "../../runtime/api.js";
import { clientCredentials, type GrpcClientTls } from "./tls.js";
import { DrainGate, PullReader } from "./stream.js";
import { fromMetadata, grpcPath, statusError, toMetadata } from "./wire.js";

/** Options of {@link GrpcClientTransport}. */
export interface GrpcClientOptions {
  /** Where calls go when the request names no endpoint (`host:port`). */
  address?: string;
  /** TLS (node:tls through grpc-js's `credentials.createSsl`); plaintext when neither this nor `credentials` is set. */
  tls?: GrpcClientTls;
  /** Any grpc-js channel credentials, instead of `tls`. */
  credentials?: ChannelCredentials;
  /**
   * grpc-js channel options (keepalive, message size limits, ...), for every channel. Meridian
   * sets `grpc.per_rpc_retry_buffer_size` to 64 KiB unless given here: grpc-js acknowledges
   * stream writes early while they fit in that buffer (1 MiB by default), which would let a
   * writer run that far ahead of a slow reader.
   */
  channelOptions?: ChannelOptions;
  /** How long `warmUp` waits for each channel to connect. Default 2000 ms. */
  connectTimeoutMs?: number;
}

/** grpc-js's per-call retry buffer: how far stream writes may run ahead of HTTP/2 flow control. */
const RETRY_BUFFER_BYTES = 64 * 1024;

/** Bytes as they are: grpc-js frames the request the runtime encoded and hands over the response's. */
const passBytes = (b: Buffer): Buffer => b;

/**
 * The grpc-js method definition of a Meridian method on the client side: bytes both ways. The
 * runtime encodes a request (`WriteMessage`) before grpc-js sees it, so a message that cannot be
 * encoded is an INVALID_ARGUMENT that was never sent and a bad message in a stream fails only its
 * own `send`; the runtime decodes the response bytes grpc-js hands back.
 */
export type ClientMethodDefinition = Pick<MethodDefinition<Buffer, Buffer>, "path" | "requestSerialize" | "responseDeserialize">;

const definitions = new WeakMap<MethodDescriptor, { service: string; def: ClientMethodDefinition }>();

/** The (cached) client method definition of `method` of `service`. */
export function clientDefinition(service: string, method: MethodDescriptor): ClientMethodDefinition {
  const hit = definitions.get(method);
  if (hit !== undefined && hit.service === service) return hit.def;
  const def: ClientMethodDefinition = { path: grpcPath(service, method.name), requestSerialize: passBytes, responseDeserialize: passBytes };
  definitions.set(method, { service, def });
  return def;
}

/** An error raised before grpc-js saw the call: nothing was sent. */
function notSent(e: unknown): RpcError {
  if (e instanceof RpcError) return e.notSent ? e : new RpcError(e.code, e.message, { cause: e, notSent: true, headers: e.headers });
  return new RpcError(Code.INTERNAL, `request not sent: ${e instanceof Error ? e.message : String(e)}`, { cause: e, notSent: true });
}

/**
 * The RpcError of a failed status. grpc-js fails a call that never got a connection with
 * UNAVAILABLE "No connection established": such a request was surely not sent.
 */
function callError(status: Pick<StatusObject, "code" | "details">, headers: Headers, sawHeaders: boolean): RpcError {
  const err = statusError(status, headers);
  if (err.code === Code.UNAVAILABLE && !sawHeaders && status.details.includes("No connection established")) {
    return new RpcError(err.code, err.message, { headers: err.headers, notSent: true });
  }
  return err;
}

/**
 * Longest timeout sent, in ms: just under 2^31. grpc-js servers read `grpc-timeout` into a 32-bit
 * integer, and a longer one wraps negative there and fails the call at once. grpc-js writes a
 * timeout this long in whole seconds, rounded up, so this is a whole number of seconds. A
 * deadline further away (about 24.8 days) is sent as this much.
 */
export const MAX_GRPC_TIMEOUT_MS = 2_147_483_000;

/** A call's deadline as grpc-js takes it: none, or no further away than MAX_GRPC_TIMEOUT_MS. */
function callOptions(deadline: number | undefined): CallOptions {
  return deadline === undefined ? {} : { deadline: Math.min(deadline, Date.now() + MAX_GRPC_TIMEOUT_MS) };
}

function deadlinePassed(): RpcError {
  return new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded before the call was sent", { notSent: true });
}

/**
 * The client half of Meridian's gRPC transport, on @grpc/grpc-js: one grpc-js channel per
 * address (HTTP/2, calls multiplexed), Meridian's generated codecs as the serializers, headers
 * as metadata, deadlines as `grpc-timeout`. See docs/grpc.md.
 */
export class GrpcClientTransport implements ClientTransport {
  /** `unary` rejects as soon as the call's signal aborts, whatever it is waiting for (ClientTransport.settlesOnAbort). */
  readonly settlesOnAbort = true;
  private readonly clients = new Map<string, Client>();
  private readonly credentials: ChannelCredentials;
  private readonly channelOptions: ChannelOptions;
  private closed = false;

  constructor(private readonly options: GrpcClientOptions = {}) {
    const { credentials, channelOptions } = clientCredentials(options);
    this.credentials = credentials;
    this.channelOptions = { "grpc.per_rpc_retry_buffer_size": RETRY_BUFFER_BYTES, ...options.channelOptions, ...channelOptions };
  }

  unary(req: TransportRequest): Promise<TransportResponse> {
    const signal = req.signal;
    if (signal.aborted) return Promise.reject(abortError(signal, true));
    const deadline = req.deadline;
    if (deadline !== undefined && !(deadline > Date.now())) return Promise.reject(deadlinePassed());
    let client: Client;
    let md: Metadata;
    let bytes: Buffer;
    try {
      client = this.client(req.endpoint);
      md = toMetadata(req.headers);
      bytes = encodeShared(req.encode);
    } catch (e) {
      return Promise.reject(notSent(e));
    }
    const def = clientDefinition(req.service, req.method);
    const options = callOptions(deadline);
    return new Promise<TransportResponse>((resolve, reject) => {
      let headers: Headers | undefined;
      let payload: Buffer | undefined;
      let failure: ServiceError | null = null;
      let settled = false;
      const call = client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, bytes, md, options, (err, value) => {
        failure = err;
        payload = value;
      });
      const onAbort = (): void => {
        if (settled) return;
        settled = true;
        reject(abortError(signal));
        call.cancel();
      };
      call.on("metadata", (m: Metadata) => (headers = fromMetadata(m)));
      call.on("status", (status: StatusObject) => {
        signal.removeEventListener("abort", onAbort);
        if (settled) return;
        settled = true;
        const all = fromMetadata(status.metadata, copyHeaders(headers));
        // The callback's error wins: grpc-js reports an OK status without a message as an error there.
        const f: ServiceError | null = failure;
        if (f === null && status.code === 0 && payload !== undefined) resolve(new ReceivedResponse(payload, all));
        else reject(callError(f ?? status, all, headers !== undefined));
      });
      signal.addEventListener("abort", onAbort);
    });
  }

  stream(req: TransportStreamRequest): ClientStream {
    return new GrpcClientStream(this, req);
  }

  /** Connects a channel to each endpoint, failing with UNAVAILABLE if one is not ready in time. */
  async warmUp(endpoints: readonly Endpoint[]): Promise<void> {
    const timeout = this.options.connectTimeoutMs ?? 2000;
    await warmUpAll(
      endpoints,
      (e) =>
        new Promise<void>((resolve, reject) =>
          this.client(e).waitForReady(Date.now() + timeout, (err) =>
            err === undefined || err === null
              ? resolve()
              : reject(new RpcError(Code.UNAVAILABLE, `cannot connect to ${e.address}: ${err.message}`, { cause: err, notSent: true })),
          ),
        ),
    );
  }

  /** Closes every channel; calls still in flight fail with CANCELLED or UNAVAILABLE. */
  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /** The grpc-js client (channel) of an endpoint, created on first use. */
  client(endpoint: Endpoint | undefined): Client {
    const address = endpoint?.address ?? this.options.address;
    if (address === undefined) {
      throw new RpcError(Code.INVALID_ARGUMENT, "no address: pass an endpoint or set the transport's address option", { notSent: true });
    }
    let c = this.clients.get(address);
    if (c === undefined) {
      if (this.closed) throw new RpcError(Code.UNAVAILABLE, "the gRPC client transport is closed", { notSent: true });
      c = new Client(address, this.credentials, this.channelOptions);
      this.clients.set(address, c);
    }
    return c;
  }
}

/**
 * One streaming call on the client: a grpc-js bidi stream whatever the method's kind (on the
 * wire the four kinds differ only in how many messages each side sends).
 */
class GrpcClientStream implements ClientStream {
  readonly responses: PullReader<Uint8Array>;
  readonly headers: Promise<Headers>;
  readonly trailers: Promise<Headers>;
  private resolveHeaders!: (h: Headers) => void;
  private resolveTrailers!: (h: Headers) => void;
  private readonly call: ClientDuplexStream<Buffer, Buffer> | undefined;
  private readonly gate: DrainGate | undefined;
  private receivedHeaders: Headers | undefined;
  private ended = false;
  private sendClosed = false;
  private failure: RpcError | undefined;
  private finished: (() => void)[] = [];

  constructor(
    transport: GrpcClientTransport,
    private readonly req: TransportStreamRequest,
  ) {
    this.headers = new Promise((r) => (this.resolveHeaders = r));
    this.trailers = new Promise((r) => (this.resolveTrailers = r));
    const signal = req.signal;
    let call: ClientDuplexStream<Buffer, Buffer> | undefined;
    try {
      if (signal.aborted) throw abortError(signal, true);
      if (req.deadline !== undefined && !(req.deadline > Date.now())) throw deadlinePassed();
      const client = transport.client(req.endpoint);
      const md = toMetadata(req.headers);
      const def = clientDefinition(req.service, req.method);
      call = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, md, callOptions(req.deadline));
    } catch (e) {
      this.call = undefined;
      this.gate = undefined;
      this.responses = new PullReader(undefined, () => {});
      this.end(notSent(e), {});
      return;
    }
    this.call = call;
    this.gate = new DrainGate(call);
    this.responses = new PullReader(call, () => this.cancel(new RpcError(Code.CANCELLED, "the response stream was abandoned")));
    call.on("metadata", (m: Metadata) => {
      this.receivedHeaders = fromMetadata(m);
      this.resolveHeaders(this.receivedHeaders);
    });
    call.on("status", (status: StatusObject) => this.onStatus(status));
    // Failures are read from 'status'; the 'error' grpc-js also emits must not go unhandled.
    call.on("error", () => {});
    call.on("finish", () => this.flushFinished());
    signal.addEventListener("abort", this.onAbort);
  }

  send(encode: WriteMessage): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.sendClosed) return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, "send() after closeSend(): the request side is closed"));
    // The server already ended the call with OK: it reads nothing more, and the outcome is in `responses`.
    if (this.ended) return Promise.resolve();
    let bytes: Buffer;
    try {
      bytes = encodeShared(encode);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.gate!.write(bytes);
  }

  closeSend(): Promise<void> {
    if (this.sendClosed || this.ended) return Promise.resolve();
    this.sendClosed = true;
    return new Promise((resolve) => {
      this.finished.push(resolve);
      this.call!.end();
    });
  }

  cancel(reason?: unknown): void {
    if (this.ended) return;
    const err = abortError({ reason });
    this.end(err, {}, true);
    this.call?.cancel();
  }

  private readonly onAbort = (): void => this.cancel(this.req.signal.reason);

  private onStatus(status: StatusObject): void {
    if (this.ended) return;
    const trailers = fromMetadata(status.metadata);
    if (status.code === 0) this.end(undefined, trailers);
    else this.end(callError(status, copyHeaders(trailers, copyHeaders(this.receivedHeaders)), this.receivedHeaders !== undefined), trailers);
  }

  /** The call is over: settle everything that waits on it. */
  private end(error: RpcError | undefined, trailers: Headers, local = false): void {
    this.ended = true;
    this.failure = error;
    this.req.signal.removeEventListener("abort", this.onAbort);
    if (error !== undefined) {
      trailers[HeaderKeys.status] = String(error.code);
      trailers[HeaderKeys.message] = error.message;
    }
    this.resolveHeaders(this.receivedHeaders ?? {});
    this.resolveTrailers(trailers);
    if (local) this.responses.abort(error);
    else this.responses.finish(error);
    this.gate?.settle(error);
    this.flushFinished();
  }

  private flushFinished(): void {
    const f = this.finished;
    this.finished = [];
    for (const r of f) r();
  }
}
