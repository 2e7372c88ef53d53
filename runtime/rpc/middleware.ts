import type { CallContext } from "./context.js";
import type { MethodDescriptor, ServiceDescriptor } from "./descriptors.js";
import type { Headers } from "./transport.js";

/**
 * A unary call as middleware sees it, on the client and on the server alike. `headers` is the
 * same object as `ctx.headers`: middleware may add to it on the client before the transport
 * sends it.
 */
export interface RpcRequest {
  readonly service: ServiceDescriptor;
  readonly method: MethodDescriptor;
  /** The request message (a full message of `method.input`'s type). */
  readonly message: unknown;
  readonly headers: Headers;
  readonly ctx: CallContext;
}

/** The answer to a unary call: the response message and the response headers. */
export interface RpcResponse {
  readonly message: unknown;
  readonly headers: Headers;
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
