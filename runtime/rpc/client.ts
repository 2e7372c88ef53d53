import type { AnyMessageCodec, PayloadProtocol } from "../codec/types.js";
import { CallContext, ContextValues, currentContext, type Consistency } from "./context.js";
import { abortError, deadlineAfter, earliest, raceSignal } from "./deadline.js";
import type { InputOf, MethodDescriptor, OutputOf, ServiceDescriptor } from "./descriptors.js";
import { BizError, Code, ConfigError, RpcError } from "./errors.js";
import { breakerMiddleware, type BreakerOptions } from "./governance/breaker.js";
import { loadBalancerMiddleware, WeightedRoundRobin, type LoadBalancer, type Resolver } from "./governance/loadbalance.js";
import { backupMiddleware, requeueMiddleware, retryMiddleware, type BackupPolicy, type RetryPolicy } from "./governance/retry.js";
import { timeoutMiddleware } from "./governance/timeout.js";
import { Metainfo } from "./metainfo.js";
import { composeDirect, Later, settle, type DirectAnswer, type DirectHandler, type LaterStep } from "./direct.js";
import { CallRequest, CallResponse, type Middleware, type RpcRequest, type RpcResponse } from "./middleware.js";
import { observabilityMiddleware, type ObservabilityOptions } from "./observability/index.js";
import { statusFromHeaders, statusHeaders, statusToHeaders } from "./status.js";
import { RequestStream, resumeStream, streamsRequests, type ResponseStream, type StreamInput } from "./streaming.js";
import { thriftInfo, unwrapResult, type ThriftResult } from "./thrift.js";
import { copyHeaders, HeaderKeys, type CallSignal, type ClientStream, type ClientTransport, type Endpoint, type Headers, type TransportRequest, type TransportResponse, type WriteMessage } from "./transport.js";

/** Options of one call. */
export interface CallOptions {
  /** Timeout of this call, ms (overrides the client's `timeoutMs`; a parent's deadline still bounds it). */
  timeoutMs?: number;
  /** Cancels the call. */
  signal?: AbortSignal;
  /** Extra request headers. */
  headers?: Headers;
  /** The caller's region for this call (default: the client's `region`). */
  region?: string;
  /** Read consistency (default: the parent call's, else the client's). */
  consistency?: Consistency;
  /**
   * The server call this call is made for: the call inherits what is left of its deadline, its
   * cancellation, consistency, persistent metainfo and context values. When omitted, the server
   * call being handled in this async flow is used (see ClientOptions.inheritContext); `null`
   * inherits nothing.
   */
  parent?: CallContext | null;
  /** Metainfo to send (transient and persistent); the response's backward values are stored into it. */
  metainfo?: Metainfo;
  /**
   * Receives the response headers (on success and on error). Streaming calls: once, when the
   * call is over, with the headers and the trailers merged.
   */
  onHeaders?: (headers: Headers) => void;
}

/** A typed unary method of a client: the request as a full message or a Partial of one. */
export type UnaryCall<D> = (request?: Partial<InputOf<D>>, options?: CallOptions) => Promise<OutputOf<D>>;

/** A typed server-streaming method of a client: one request in, a stream of responses out. */
export type ServerStreamingCall<D> = (request?: Partial<InputOf<D>>, options?: CallOptions) => ResponseStream<OutputOf<D>>;

/** A typed client-streaming method of a client: a stream (or array) of requests in, one response out. */
export type ClientStreamingCall<D> = (requests: StreamInput<Partial<InputOf<D>>>, options?: CallOptions) => Promise<OutputOf<D>>;

/** A typed bidi-streaming method of a client: a stream of requests in, a stream of responses out. */
export type BidiStreamingCall<D> = (requests: StreamInput<Partial<InputOf<D>>>, options?: CallOptions) => ResponseStream<OutputOf<D>>;

/**
 * The typed client method of descriptor `D`, by its kind. A descriptor whose kind is not a
 * literal (typed as the whole MethodKind) gets the unary form.
 */
export type MethodCall<D> = D extends { readonly kind: infer K }
  ? [K] extends ["server_streaming"]
    ? ServerStreamingCall<D>
    : [K] extends ["client_streaming"]
      ? ClientStreamingCall<D>
      : [K] extends ["bidi_streaming"]
        ? BidiStreamingCall<D>
        : UnaryCall<D>
  : never;

/** A typed client of service `S`: one method per RPC, keyed as in `S.methods` (`getFeed`). */
export type Client<S extends ServiceDescriptor> = { readonly [K in keyof S["methods"]]: MethodCall<S["methods"][K]> };

/** Options of createClient. */
export interface ClientOptions extends ObservabilityOptions {
  transport: ClientTransport;
  /** User middleware, outermost first; they run outside every built-in one. */
  middleware?: readonly Middleware[];
  /** A fixed list of instances to balance over. */
  endpoints?: readonly Endpoint[];
  /** Where to find instances when they change (a registry); instead of `endpoints`. */
  resolver?: Resolver;
  /** How to pick an instance. Default: smooth weighted round robin. */
  loadBalancer?: LoadBalancer;
  /** This client's region, sent as `x-region-id`. */
  region?: string;
  /** Default read consistency, sent as `x-consistency-level`. */
  consistency?: Consistency;
  /** Default timeout of a whole call, ms (retries included). */
  timeoutMs?: number;
  /** Failure retry; off unless set (`{}` takes the defaults). Exclusive with `backup`. */
  retry?: RetryPolicy;
  /** Backup request; off unless set. Exclusive with `retry`. */
  backup?: BackupPolicy;
  /**
   * Requeue: a call a server refused before any handler saw it (shed under overload, refused at
   * a limit, turned away while shutting down) is sent again, to another instance while there is
   * one, with `retry`'s backoff and budget (defaults as {@link RetryPolicy}). On by default;
   * `false` turns it off; ignored when `retry` is set (which retries such calls already).
   */
  requeue?: RetryPolicy | false;
  /** Circuit breaker per service method; off unless set. */
  breaker?: BreakerOptions;
  /** Circuit breaker per instance; off unless set. */
  instanceBreaker?: BreakerOptions;
  /** Headers sent with every call. */
  headers?: Headers;
  /**
   * Whether a call made while handling a server call inherits from it automatically (through
   * AsyncLocalStorage, when the server has `asyncContext` on). Default true.
   */
  inheritContext?: boolean;
}

/**
 * The client middleware in their fixed order, outermost first: the user's, observability
 * (stats, tracing), the whole-call timeout, retry or backup request, requeue of refused calls
 * (unless retry is on), the service breaker, load
 * balancing (skipping instances the transport's `health` reports going away or unreachable),
 * the instance breaker. The transport runs below the last. docs/governance.md explains the order.
 */
export function clientMiddleware(options: Omit<ClientOptions, "transport"> & { transport?: ClientTransport }): Middleware[] {
  if (options.retry !== undefined && options.backup !== undefined) {
    throw new ConfigError("CONFLICTING_OPTIONS", "createClient: set either retry or backup, not both (a backup request is already a retry)");
  }
  if (options.endpoints !== undefined && options.resolver !== undefined) {
    throw new ConfigError("CONFLICTING_OPTIONS", "createClient: set either endpoints or resolver, not both");
  }
  const source = options.resolver ?? options.endpoints;
  const chain: Middleware[] = [...(options.middleware ?? []), ...observabilityMiddleware(options), timeoutMiddleware(options.transport?.timesCalls === true)];
  if (options.retry !== undefined) chain.push(retryMiddleware(options.retry));
  if (options.backup !== undefined) chain.push(backupMiddleware(options.backup));
  if (options.retry === undefined && options.requeue !== false) chain.push(requeueMiddleware(options.requeue));
  if (options.breaker !== undefined) chain.push(breakerMiddleware("service", options.breaker));
  if (source !== undefined) chain.push(loadBalancerMiddleware(source, options.loadBalancer ?? new WeightedRoundRobin(), options.transport?.health));
  if (options.instanceBreaker !== undefined) chain.push(breakerMiddleware("instance", options.instanceBreaker));
  return chain;
}

/**
 * Turns what a transport threw into the call's RpcError: RpcErrors as they are (a business
 * error as a BizError even from a transport that only knows `rpc-status`; one the server marked
 * `rpc-refused` as `notSent`), anything else as its signal's abort reason when the call was
 * aborted.
 */
function callError(e: unknown, signal: CallSignal): RpcError {
  if (!(e instanceof RpcError)) return signal.aborted ? abortError(signal) : RpcError.from(e);
  if (!e.notSent && e.headers[HeaderKeys.refused] !== undefined) {
    // The server refused the call before any handler saw it (shutting down): as good as never sent.
    return new RpcError(e.code, e.message, { headers: e.headers, cause: e, notSent: true });
  }
  const biz = !(e instanceof BizError) && e.headers[HeaderKeys.bizStatus] !== undefined;
  return biz ? (statusFromHeaders(e.headers) ?? e) : e;
}

/**
 * How the runtime hands a request message to a transport: a WriteMessage that encodes it with
 * `codec` straight into the transport's frame. A message the codec refuses (a value out of its
 * field's range, a string that is not UTF-16) fails the call with INVALID_ARGUMENT; `notSent`
 * for a unary request (nothing left), not for a message of a stream already open.
 */
export function messageWriter(codec: AnyMessageCodec, message: unknown, notSent = true): WriteMessage {
  return (w, protocol) => {
    try {
      codec.encodeTo(message, w, protocol);
    } catch (e) {
      throw new RpcError(Code.INVALID_ARGUMENT, `request not sent: ${e instanceof Error ? e.message : String(e)}`, { cause: e, notSent });
    }
  };
}

/**
 * Decodes a response payload a transport returned, the one place a client maps a payload that
 * does not decode: INTERNAL "cannot decode the response of S/M: why", with the response's
 * headers. Bytes fields of the message are views into `payload` (transports never reuse it).
 */
export function decodeResponse(method: MethodDescriptor, service: string, payload: Uint8Array, headers: Headers = {}, protocol?: PayloadProtocol): unknown {
  try {
    return method.output.decode(payload, protocol);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new RpcError(Code.INTERNAL, `cannot decode the response of ${service}/${method.name}: ${why}`, { cause: e, headers });
  }
}

/** A unary call as the runtime hands it to a transport: a class for the reason `CallRequest` gives. */
class UnaryRequest implements TransportRequest {
  declare readonly service: string;
  declare readonly method: MethodDescriptor;
  declare readonly encode: WriteMessage;
  declare readonly headers: Headers;
  declare readonly deadline: number | undefined;
  declare readonly signal: CallSignal;
  declare readonly endpoint: Endpoint | undefined;

  constructor(service: string, method: MethodDescriptor, encode: WriteMessage, headers: Headers, deadline: number | undefined, signal: CallSignal, endpoint: Endpoint | undefined) {
    this.service = service;
    this.method = method;
    this.encode = encode;
    this.headers = headers;
    this.deadline = deadline;
    this.signal = signal;
    this.endpoint = endpoint;
  }
}

/**
 * The end of a client chain: hands the call to the transport, the request encoded by
 * `messageWriter` and the response decoded by `decodeResponse`. Errors come out as RpcErrors, a
 * business error as a BizError even from a transport that only knows `rpc-status`, and an
 * aborted call as its signal's reason.
 */
function transportHandler(transport: ClientTransport): DirectHandler {
  // A call over a transport that does not say it settles as soon as the call's signal aborts is
  // raced against it here, so that the call ends at its deadline whatever the transport does.
  const raced = transport.settlesOnAbort !== true;
  const timesCalls = transport.timesCalls === true;
  // A direct link (runtime/rpc/direct.ts): the transport's promise and the decoding as a Later, to
  // which the links around add their steps; the caller waits with one `then`.
  return (req) => {
    const ctx = req.ctx;
    const method = req.method;
    // A transport that times its calls gets the cancellation without the deadline: no timer of
    // the context's own for a unary call (see ClientTransport.timesCalls).
    const signal = timesCalls && method.kind === "unary" ? ctx.untimedCancellation : ctx.cancellation;
    if (signal.aborted) throw abortError(signal, true);
    const service = req.service.typeName;
    let sent: Promise<TransportResponse>;
    try {
      if (method.kind !== "unary") {
        return raceSignal(openStream(transport, req, signal), signal).then(undefined, (e: unknown) => {
          throw callError(e, signal);
        });
      }
      sent = transport.unary(new UnaryRequest(service, method, messageWriter(method.input, req.message), req.headers, ctx.deadline, signal, ctx.endpoint));
    } catch (e) {
      throw callError(e, signal);
    }
    return new Later(raced ? raceSignal(sent, signal) : sent, new Decoding(method, service, signal));
  };
}

/**
 * The transport's end of a unary call, as the first step of its Later: the response decoded, a
 * failure made the call's error (`callError`). One object per call where two closures and their
 * scope would be three.
 */
class Decoding implements LaterStep {
  next: LaterStep | undefined = undefined;

  constructor(
    private readonly method: MethodDescriptor,
    private readonly service: string,
    private readonly signal: CallSignal,
  ) {}

  ok(res: unknown): RpcResponse {
    const r = res as TransportResponse;
    try {
      return new CallResponse(decodeResponse(this.method, this.service, r.payload, r.headers, r.protocol), r.headers);
    } catch (e) {
      return this.failed(e);
    }
  }

  failed(e: unknown): never {
    throw callError(e, this.signal);
  }
}

/**
 * The responses of a client stream, decoded as they are pulled (`decodeResponse`); one that
 * does not decode cancels the call with that error and throws it.
 */
export function decodedResponses(stream: ClientStream, method: MethodDescriptor, service: string): AsyncIterator<unknown> {
  const it = stream.responses[Symbol.asyncIterator]();
  return {
    async next(): Promise<IteratorResult<unknown>> {
      const r = await it.next();
      if (r.done === true) return r;
      try {
        return { done: false, value: decodeResponse(method, service, r.value) };
      } catch (e) {
        stream.cancel(e);
        throw e;
      }
    },
    async return(): Promise<IteratorResult<unknown>> {
      await it.return?.();
      return DONE;
    },
  };
}

/**
 * A streaming call through the transport: sends the requests (one, or the request stream) as
 * the transport has room, and resolves once the first response message is there or the stream
 * ended without one (a client-streaming call: once its one response and the trailers are in).
 * Errors until then reject, so retry and breakers see them as they see a unary call's.
 */
async function openStream(transport: ClientTransport, req: RpcRequest, signal: CallSignal): Promise<RpcResponse> {
  const { method, service, ctx } = req;
  if (transport.stream === undefined) {
    throw new RpcError(Code.UNIMPLEMENTED, `${service.typeName}.${method.name} is a ${method.kind} method and this transport does not stream`, {
      notSent: true,
    });
  }
  const stream = transport.stream({ service: service.typeName, method, headers: req.headers, deadline: ctx.deadline, signal, endpoint: ctx.endpoint });
  void sendRequests(stream, method.input, streamsRequests(method) ? (req.message as AsyncIterable<unknown>) : [req.message]);
  const responses = decodedResponses(stream, method, service.typeName);
  const first = await responses.next();
  if (method.kind !== "client_streaming") {
    return new CallResponse(
      resumeStream(first, responses, () => stream.cancel(new RpcError(Code.CANCELLED, "the response stream was closed before its end"))),
      await stream.headers,
      stream.trailers,
    );
  }
  const what = `${service.typeName}.${method.name} is client-streaming`;
  if (first.done === true) throw new RpcError(Code.INTERNAL, `${what}, but the server ended the call without a response`, { headers: await stream.trailers });
  const rest = await responses.next();
  if (rest.done !== true) {
    const err = new RpcError(Code.INTERNAL, `${what}, but the server sent more than one response`);
    stream.cancel(err);
    throw err;
  }
  return new CallResponse(first.value, { ...(await stream.headers), ...(await stream.trailers) });
}

/**
 * Sends `messages` on `stream` as the transport has room, then half-closes. Stops (closing the
 * caller's iterable) once the call is over: a server may finish before it read every request.
 * A request stream that throws cancels the call (CANCELLED, saying why); a failed send means the
 * call failed, and its error comes out of the responses.
 */
async function sendRequests(stream: ClientStream, codec: AnyMessageCodec, messages: StreamInput<unknown>): Promise<void> {
  let sending = false;
  let over = false;
  const end = (): void => void (over = true);
  stream.trailers.then(end, end);
  try {
    for await (const m of messages) {
      if (over) return;
      sending = true;
      await stream.send(messageWriter(codec, m, false));
      sending = false;
      if (over) return;
    }
    sending = true;
    await stream.closeSend();
  } catch (e) {
    try {
      stream.cancel(
        sending ? RpcError.from(e) : new RpcError(Code.CANCELLED, `the request stream threw: ${e instanceof Error ? e.message : String(e)}`, { cause: e }),
      );
    } catch {
      // A transport whose cancel throws: the call's outcome still comes out of its responses.
    }
  }
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * What a server-streaming or bidi method returns: the response stream of one call, started at
 * once (the chain runs when the method is called). Ends the call's context when the stream is
 * over, reporting the headers and trailers (onHeaders, backward metainfo).
 */
class CallResponseStream implements ResponseStream<unknown>, AsyncIterator<unknown> {
  readonly headers: Promise<Headers>;
  readonly trailers: Promise<Headers>;
  private resolveTrailers!: (t: Headers) => void;
  private res: RpcResponse | undefined;
  private it: AsyncIterator<unknown> | undefined;
  private over = false;
  private error: RpcError | undefined;

  constructor(
    private readonly ctx: CallContext,
    private readonly opened: Promise<RpcResponse>,
    private readonly received: (h: Headers) => void,
  ) {
    this.trailers = new Promise((r) => (this.resolveTrailers = r));
    this.headers = opened.then(
      (res) => {
        this.res = res;
        return res.headers;
      },
      (e: unknown) => {
        const err = callError(e, ctx.cancellation);
        this.finish(err);
        return statusHeaders(err);
      },
    );
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return this;
  }

  async next(): Promise<IteratorResult<unknown>> {
    if (this.over) {
      if (this.error !== undefined) throw this.error;
      return DONE;
    }
    try {
      if (this.it === undefined) {
        const res = await this.ctx.race(this.opened);
        this.it = (res.message as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      }
      const r = await this.ctx.race(this.it.next());
      if (r.done === true) this.finish(undefined);
      return r;
    } catch (e) {
      const err = callError(e, this.ctx.cancellation);
      this.cancel(err);
      throw this.error ?? err;
    }
  }

  async return(): Promise<IteratorResult<unknown>> {
    this.cancel(new RpcError(Code.CANCELLED, "the response stream was closed before its end"));
    return DONE;
  }

  cancel(reason?: unknown): void {
    if (this.over) return;
    const err = reason instanceof RpcError ? reason : new RpcError(Code.CANCELLED, "call cancelled", { cause: reason });
    this.ctx.abort(err);
    const it = this.it;
    this.finish(err);
    void it?.return?.()?.catch(() => undefined);
  }

  /** The call is over: settle the trailers, report what came back, release the context. */
  private finish(error: RpcError | undefined): void {
    if (this.over) return;
    this.over = true;
    this.error = error;
    const res = this.res;
    const trailers = error !== undefined ? Promise.resolve(statusHeaders(error)) : (res?.trailers ?? Promise.resolve({}));
    void trailers
      .catch((e: unknown) => statusToHeaders(RpcError.from(e), {}))
      .then((t) => {
        this.received(copyHeaders(t, copyHeaders(res?.headers)));
        this.resolveTrailers(t);
        this.ctx.dispose();
      });
  }
}

/** What a call does with the headers that came back: the backward metainfo, then `onHeaders`. */
function received(opts: CallOptions, headers: Headers): void {
  opts.metainfo?.readHeaders(headers, "backward");
  opts.onHeaders?.(headers);
}

/** Ends a call with `e` as its RpcError, after reporting the error's headers (see `received`). */
function failed(opts: CallOptions, e: unknown): never {
  const err = RpcError.from(e);
  received(opts, err.headers);
  throw err;
}

/**
 * The last step of a unary call: what came back reported (`received`), the response's message
 * (or the call's RpcError) handed to the caller, the context released.
 */
class Finishing implements LaterStep {
  next: LaterStep | undefined = undefined;

  constructor(
    private readonly opts: CallOptions,
    private readonly ctx: CallContext,
  ) {}

  ok(res: unknown): unknown {
    try {
      received(this.opts, (res as RpcResponse).headers);
      return (res as RpcResponse).message;
    } catch (e) {
      return failed(this.opts, e);
    } finally {
      this.ctx.dispose();
    }
  }

  failed(e: unknown): never {
    try {
      return failed(this.opts, e);
    } finally {
      this.ctx.dispose();
    }
  }
}

/**
 * Creates a typed client of `service` over `options.transport`: one method per RPC of the
 * descriptor, under the key of `service.methods` (`client.getFeed(req, callOptions)`). Unary and
 * client-streaming methods return a Promise of the response; server-streaming and bidi methods a
 * ResponseStream. Requests may be full messages or Partial ones (completed with the codec's
 * `create`).
 */
export function createClient<S extends ServiceDescriptor>(service: S, options: ClientOptions): Client<S> {
  const chain = composeDirect(clientMiddleware(options), transportHandler(options.transport));
  const inherit = options.inheritContext !== false;
  const defaults = options.headers ?? {};

  /** The context of a new call. */
  function begin(method: MethodDescriptor, opts: CallOptions): CallContext {
    const parent = opts.parent === undefined ? (inherit ? currentContext() : undefined) : (opts.parent ?? undefined);
    // A call that inherits none and is given none carries no metainfo: its context makes an empty
    // one if something asks.
    let metainfo: Metainfo | undefined;
    if (parent !== undefined) metainfo = new Metainfo().copyFrom(parent.metainfo, "persistent");
    if (opts.metainfo !== undefined) metainfo = (metainfo ?? new Metainfo()).copyFrom(opts.metainfo, "transient").copyFrom(opts.metainfo, "persistent");
    const headers = copyHeaders(opts.headers, copyHeaders(defaults));
    const region = opts.region ?? options.region;
    const consistency = opts.consistency ?? parent?.consistency ?? options.consistency;
    if (region !== undefined) headers[HeaderKeys.region] = region;
    if (consistency !== undefined) headers[HeaderKeys.consistency] = consistency;
    metainfo?.writeHeaders(headers, "transient", "persistent");
    const ctx = new CallContext({
      side: "client",
      service,
      method,
      headers,
      metainfo,
      values: new ContextValues(parent?.values),
      deadline: earliest(deadlineAfter(opts.timeoutMs ?? options.timeoutMs), parent?.deadline),
      region,
      consistency,
    });
    ctx.follow(opts.signal);
    ctx.follow(parent?.cancellation);
    return ctx;
  }

  /**
   * A call with one response (unary, client-streaming): the chain, then the context released.
   * The chain is direct (runtime/rpc/direct.ts): over a transport that answers through a promise,
   * the whole call costs that promise and one `then`, this one.
   */
  function invoke(method: MethodDescriptor, message: unknown, opts: CallOptions): Promise<unknown> {
    let ctx: CallContext;
    try {
      ctx = begin(method, opts);
    } catch (e) {
      return Promise.reject(e);
    }
    const end = new Finishing(opts, ctx);
    let running: DirectAnswer;
    try {
      running = chain(new CallRequest(service, method, message, ctx.headers, ctx));
    } catch (e) {
      running = Promise.reject(e);
    }
    if (running instanceof Later) return running.settleAs(end);
    return Promise.resolve(running).then(
      (res) => end.ok(res),
      (e: unknown) => end.failed(e),
    );
  }

  /** A call with a response stream (server-streaming, bidi): started now, ended by its stream. */
  function open(method: MethodDescriptor, message: unknown, opts: CallOptions): ResponseStream<unknown> {
    const ctx = begin(method, opts);
    let opened: Promise<RpcResponse>;
    try {
      opened = settle(chain(new CallRequest(service, method, message, ctx.headers, ctx)));
    } catch (e) {
      opened = Promise.reject(e);
    }
    return new CallResponseStream(ctx, opened, (h) => received(opts, h));
  }

  const requests = (method: MethodDescriptor, source: StreamInput<unknown>): RequestStream =>
    new RequestStream(source, (m) => method.input.create(m as object));
  const client: Record<string, (request?: unknown, opts?: CallOptions) => unknown> = {};
  for (const [key, method] of Object.entries(service.methods)) {
    switch (method.kind) {
      case "server_streaming":
        client[key] = (request, opts = {}) => open(method, method.input.create(request as object | undefined), opts);
        break;
      case "client_streaming":
        client[key] = (source, opts = {}) => invoke(method, requests(method, source as StreamInput<unknown>), opts);
        break;
      case "bidi_streaming":
        client[key] = (source, opts = {}) => open(method, requests(method, source as StreamInput<unknown>), opts);
        break;
      default: {
        const thrift = thriftInfo(method);
        client[key] =
          thrift === undefined
            ? (request, opts = {}) => invoke(method, method.input.create(request as object | undefined), opts)
            : (request, opts = {}) =>
                invoke(method, method.input.create(request as object | undefined), opts).then((r) => unwrapResult(thrift, r as ThriftResult));
      }
    }
  }
  return client as Client<S>;
}
