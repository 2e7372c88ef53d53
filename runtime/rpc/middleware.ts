import type { CallContext } from "./context.js";
import type { MethodDescriptor, ServiceDescriptor } from "./descriptors.js";
import type { Headers } from "./transport.js";

/**
 * A call as middleware sees it, on the client and on the server alike. `headers` is the same
 * object as `ctx.headers`: middleware may add to it on the client before the transport sends it.
 *
 * Streaming calls go through the same chain (docs/rpc.md, "Streaming"): for client-streaming and
 * bidi methods `message` is an AsyncIterable of the requests (on the client a RequestStream),
 * and for server-streaming and bidi methods the response's `message` is an AsyncIterable of the
 * responses; `next(req)` then resolves once the first response message is there (or the stream
 * ended without one) and the call is over when that iterable ends. Middleware that needs the
 * end of a call wraps the response with `observeStream`.
 */
export interface RpcRequest {
  readonly service: ServiceDescriptor;
  readonly method: MethodDescriptor;
  /**
   * The request message (a full message of `method.input`'s type), or for client-streaming and
   * bidi methods an AsyncIterable of them.
   */
  readonly message: unknown;
  readonly headers: Headers;
  readonly ctx: CallContext;
}

/**
 * The answer to a call: the response message and the response headers. For server-streaming
 * and bidi methods `message` is an AsyncIterable of the responses and `trailers` (client side)
 * resolves with the trailers once the stream ended.
 */
export interface RpcResponse {
  readonly message: unknown;
  readonly headers: Headers;
  /** Streaming responses, client side: the trailers, once the stream ended. Never rejects. */
  readonly trailers?: Promise<Headers>;
}

/**
 * The request the runtime makes for each call. A class rather than an object literal, as every
 * record the runtime makes per call and keeps while the call is in flight: V8 watches each
 * object literal in the code (an allocation site), and when one garbage collection finds nearly
 * all of a literal's objects alive (a burst of calls in flight at a fresh process, as after a
 * deploy), it creates every later object of that literal in the old generation, for the life of
 * the process. Those die young all the same, so only full collections reclaim them, and every
 * store of a young object into one pays a write barrier: a server whose first burst did that spent
 * 2.7 times the CPU per call from then on (docs/profile.md, "Sixth pass"). Objects made by `new`
 * are never moved out of the young generation that way. The fields are assigned in the
 * constructor, not declared: an ES2022 class field is first defined as undefined, by an
 * initializer V8 runs on every `new`.
 */
export class CallRequest implements RpcRequest {
  declare readonly service: ServiceDescriptor;
  declare readonly method: MethodDescriptor;
  declare readonly message: unknown;
  declare readonly headers: Headers;
  declare readonly ctx: CallContext;

  constructor(service: ServiceDescriptor, method: MethodDescriptor, message: unknown, headers: Headers, ctx: CallContext) {
    this.service = service;
    this.method = method;
    this.message = message;
    this.headers = headers;
    this.ctx = ctx;
  }
}

/** The response the runtime makes for each call: a class for the reason {@link CallRequest} gives. */
export class CallResponse implements RpcResponse {
  declare readonly message: unknown;
  declare readonly headers: Headers;
  declare readonly trailers: Promise<Headers> | undefined;

  constructor(message: unknown, headers: Headers, trailers?: Promise<Headers> | undefined) {
    this.message = message;
    this.headers = headers;
    this.trailers = trailers;
  }
}

/** Handles a call: the transport at the end of a client chain, the user's handler on a server. */
export type Handler = (req: RpcRequest) => Promise<RpcResponse>;

/**
 * Wraps a handler into another, for client and server alike (`(next) => next`, Kitex's
 * Middleware, connect-es's Interceptor). Errors are thrown RpcErrors.
 */
export type Middleware = (next: Handler) => Handler;

/** Builds the chain: the first middleware in the list is the outermost, `last` runs innermost. */
export function compose(middleware: readonly Middleware[], last: Handler): Handler {
  let h = last;
  for (let i = middleware.length - 1; i >= 0; i--) h = (middleware[i] as Middleware)(h);
  return h;
}

