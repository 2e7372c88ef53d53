import type { CallContext, Side } from "../context.js";
import { Code, RpcError } from "../errors.js";
import type { Middleware } from "../middleware.js";
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
 * call finishes when its response stream ends (its duration is the stream's).
 */
export function statsMiddleware(hooks: readonly StatsHook[]): Middleware {
  return (next) => async (req) => {
    const ctx = req.ctx;
    for (const h of hooks) h.start?.(ctx);
    const startTime = Date.now();
    const t0 = performance.now();
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
    let res;
    try {
      res = await next(req);
    } catch (e) {
      const error = RpcError.from(e);
      finish(error);
      throw error;
    }
    if (streamsResponses(req.method)) return observeStream(res, ctx, finish);
    finish(undefined);
    return res;
  };
}
