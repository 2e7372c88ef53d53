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
