import type { CallContext, Side } from "../context.js";
import { wallClock } from "../deadline.js";
import { Code, RpcError } from "../errors.js";
import { directMiddleware, isThenable, Later, mapAnswer, type DirectAnswer, type DirectHandler, type DirectMiddleware } from "../direct.js";
import type { RpcRequest, RpcResponse } from "../middleware.js";
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
  /**
   * When the call started (Date.now() clock, ms): on a server, when its run queue started it
   * (`CallContext.startedAt`), else when the stats middleware saw it.
   */
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
 * `then` rather than as an async function, and with a direct form (`composeDirect`) that answers
 * at once when the rest of the chain did: a promise costs a microtask and, on a server,
 * AsyncLocalStorage's promise hooks.
 */
export function statsMiddleware(hooks: readonly StatsHook[]): DirectMiddleware {
  const direct = (next: DirectHandler): DirectHandler => (req) => {
    const ctx = req.ctx;
    for (const h of hooks) h.start?.(ctx);
    const t0 = ctx.startedAt ?? performance.now();
    let res: DirectAnswer;
    try {
      res = next(req);
    } catch (e) {
      throw failed(hooks, req, t0, e);
    }
    if (!(res instanceof Later) && !isThenable(res)) return answered(hooks, req, t0, res);
    const ok = (r: RpcResponse): RpcResponse => answered(hooks, req, t0, r);
    const fail = (e: unknown): never => {
      throw failed(hooks, req, t0, e);
    };
    return mapAnswer(res, ok, fail);
  };
  return directMiddleware(direct);
}

/** Tells `hooks` that the call of `req`, begun at `t0` (performance.now()), ended with `error` (or none). */
function finish(hooks: readonly StatsHook[], req: RpcRequest, t0: number, error: RpcError | undefined): void {
  const ctx = req.ctx;
  const stats: CallStats = {
    side: ctx.side,
    service: req.service.typeName,
    method: req.method.name,
    peer: ctx.peer,
    startTime: Math.floor(wallClock(t0)),
    durationMs: performance.now() - t0,
    code: error === undefined ? Code.OK : error.code,
    error,
  };
  for (const h of hooks) h.finish(ctx, stats);
}

/** The response of a call that answered: finished now, or for a stream when the stream ends. */
function answered(hooks: readonly StatsHook[], req: RpcRequest, t0: number, res: RpcResponse): RpcResponse {
  if (streamsResponses(req.method)) return observeStream(res, req.ctx, (error) => finish(hooks, req, t0, error));
  finish(hooks, req, t0, undefined);
  return res;
}

/** The error a failed call ends with, its hooks told: the caller throws it. */
function failed(hooks: readonly StatsHook[], req: RpcRequest, t0: number, e: unknown): RpcError {
  const error = RpcError.from(e);
  finish(hooks, req, t0, error);
  return error;
}
