import type { CallContext } from "./context.js";
import { abortError } from "./deadline.js";
import type { MethodDescriptor } from "./descriptors.js";
import { Code, RpcError } from "./errors.js";
import type { RpcResponse } from "./middleware.js";
import type { Headers } from "./transport.js";

/**
 * Streaming calls as the runtime sees them: what a client gets back, how a request stream is
 * taken from the caller, and how middleware learns when a stream ends. See docs/rpc.md,
 * "Streaming".
 */

/** The requests of a client-streaming or bidi call: messages (full or Partial), sync or async. */
export type StreamInput<T> = AsyncIterable<T> | Iterable<T>;

/**
 * The responses of a server-streaming or bidi call on the client: iterate it with `for await`.
 * It ends when the server finishes with OK and throws an RpcError when the call fails (a status
 * in the trailers, the deadline, a lost connection, a cancellation). Leaving the loop early
 * (`break`, `return`, a throw) cancels the call: the server's `ctx.signal` aborts.
 */
export interface ResponseStream<T> extends AsyncIterable<T> {
  /**
   * The response headers, once known: with the first response message, or at the end of a call
   * that sent none (then they hold the trailers, and on failure the error's headers). Never rejects.
   */
  readonly headers: Promise<Headers>;
  /** The trailers, once the call has ended (`rpc-status` and `rpc-message` on failure). Never rejects. */
  readonly trailers: Promise<Headers>;
  /** Cancels the call (CANCELLED, or `reason` when it is an RpcError); iteration then throws it. */
  cancel(reason?: unknown): void;
}

/** Whether the client of `method` sends a stream of requests (client-streaming, bidi). */
export function streamsRequests(method: MethodDescriptor): boolean {
  return method.kind === "client_streaming" || method.kind === "bidi_streaming";
}

/** Whether the server of `method` answers with a stream of responses (server-streaming, bidi). */
export function streamsResponses(method: MethodDescriptor): boolean {
  return method.kind === "server_streaming" || method.kind === "bidi_streaming";
}

/**
 * The requests of a client-streaming or bidi call, as the client chain carries them in
 * `RpcRequest.message`: the caller's messages completed with the codec's `create`, pulled one
 * at a time as the transport has room. `started` tells retry whether any was taken (a stream
 * cannot be replayed, so a call whose requests started is never retried).
 */
export class RequestStream<T = unknown> implements AsyncIterable<T> {
  private taken = false;

  constructor(
    private readonly source: StreamInput<unknown>,
    private readonly create: (partial: unknown) => T,
  ) {}

  /** Whether the first message was taken from the caller. */
  get started(): boolean {
    return this.taken;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    this.taken = true;
    for await (const m of this.source) yield this.create(m);
  }
}

/** Whether `message` is a request stream that has already given up a message (so no retry). */
export function requestsTaken(message: unknown): boolean {
  return message instanceof RequestStream && message.started;
}

/**
 * For middleware: `res` with its stream of messages observed, so that `onEnd` runs exactly once
 * when the stream is over: `undefined` when it ended with OK, the error when it failed, and the
 * call's abort reason (or CANCELLED) when its consumer stopped early. Messages and errors pass
 * through unchanged. This is how stats, tracing, breakers and the limiter see the end of a
 * server-streaming or bidi call instead of its start.
 */
export function observeStream(res: RpcResponse, ctx: CallContext, onEnd: (error: RpcError | undefined) => void): RpcResponse {
  const source = res.message as AsyncIterable<unknown>;
  let over = false;
  const end = (error: RpcError | undefined): void => {
    if (over) return;
    over = true;
    onEnd(error);
  };
  const message: AsyncIterable<unknown> = {
    [Symbol.asyncIterator](): AsyncIterator<unknown> {
      const it = source[Symbol.asyncIterator]();
      return {
        async next() {
          try {
            const r = await it.next();
            if (r.done === true) end(undefined);
            return r;
          } catch (e) {
            end(RpcError.from(e));
            throw e;
          }
        },
        async return(value?: unknown) {
          const signal = ctx.cancellation;
          end(signal.aborted ? abortError(signal) : new RpcError(Code.CANCELLED, "the stream was closed before its end"));
          await it.return?.(value).catch(ignore);
          return { done: true, value: undefined };
        },
      };
    },
  };
  return { ...res, message };
}

/**
 * An async iterable that yields `first` (unless the stream had already ended) and then the rest
 * of `it`; `return()` reaches `it` and calls `onReturn` (to cancel what produces it).
 */
export function resumeStream<T>(first: IteratorResult<T>, it: AsyncIterator<T>, onReturn: () => void): AsyncIterable<T> {
  let pending: IteratorResult<T> | undefined = first;
  let used = false;
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      if (used) throw new RpcError(Code.FAILED_PRECONDITION, "a response stream can be iterated once");
      used = true;
      return {
        next() {
          const p = pending;
          if (p !== undefined) {
            pending = undefined;
            return Promise.resolve(p);
          }
          return it.next();
        },
        async return() {
          pending = undefined;
          onReturn();
          await it.return?.().catch(ignore);
          return { done: true, value: undefined };
        },
      };
    },
  };
}

function ignore(): void {}
