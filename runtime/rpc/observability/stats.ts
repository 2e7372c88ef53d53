import type { CallContext, Side } from "../context.js";
import { Code, RpcError } from "../errors.js";
import type { Middleware, RpcResponse } from "../middleware.js";
import { observeStream, streamsResponses } from "../streaming.js";

/** What a stats hook learns when a call ends. */
export interface CallStats {
  readonly side: Side;
  /** Fully qualified service name. */
  readonly service: string;
  /** The method's wire name (`GetFeed`). */
  readonly method: string;
  /** The other end's address, when known. */
  readonly peer: string | undefined;
  /** When the call started (Date.now() clock, ms). */
  readonly startTime: number;
  /** How long it took, in ms (performance.now() precision). */
  readonly durationMs: number;
  /** OK, or the error's code. */
  readonly code: Code;
  /** The error, when the call failed. */
  readonly error: RpcError | undefined;
}

/**
 * A stats/tracer hook (Kitex's Tracer): told when a call starts and when it ends, with its
 * timings and status code. Hooks must not throw; keep per-call state in `ctx.values`.
 */
export interface StatsHook {
  start?(ctx: CallContext): void;
  finish(ctx: CallContext, stats: CallStats): void;
}

/**
 * Calls `hooks` around every call, in the order given for start and for finish. A streaming
 * call finishes when its response stream ends (its duration is the stream's). Written with
 * `then` rather than as an async function: on the hot path of every call, one promise instead
 * of two (each one also costs AsyncLocalStorage's promise hooks on a server).
 */
export function statsMiddleware(hooks: readonly StatsHook[]): Middleware {
  return (next) => (req) => {
    const ctx = req.ctx;
    let startTime: number;
    let t0: number;
    try {
      for (const h of hooks) h.start?.(ctx);
      startTime = Date.now();
      t0 = performance.now();
    } catch (e) {
      return Promise.reject(e);
    }
    const finish = (error: RpcError | undefined): void => {
      const stats: CallStats = {
        side: ctx.side,
        service: req.service.typeName,
        method: req.method.name,
        peer: ctx.peer,
        startTime,
        durationMs: performance.now() - t0,
        code: error === undefined ? Code.OK : error.code,
        error,
      };
      for (const h of hooks) h.finish(ctx, stats);
    };
    const failed = (e: unknown): never => {
      const error = RpcError.from(e);
      finish(error);
      throw error;
    };
    let res: Promise<RpcResponse>;
    try {
      res = next(req);
    } catch (e) {
      return Promise.reject(e).catch(failed);
    }
    return res.then((r) => {
      if (streamsResponses(req.method)) return observeStream(r, ctx, finish);
      finish(undefined);
      return r;
    }, failed);
  };
}
