import { Code, ConfigError, RpcError } from "../errors.js";
import { directMiddleware, mapNext, type DirectHandler, type DirectMiddleware } from "../direct.js";
import type { RpcResponse } from "../middleware.js";
import { observeStream, streamsResponses } from "../streaming.js";
import { AdaptiveLimit, type AdaptiveLimitOptions } from "./adaptive.js";
import { priorityOf, shareOf } from "./priority.js";

/** Options of the server-side limiter; each limit is off when unset. */
export interface LimiterOptions {
  /** Calls admitted per second on average (token bucket rate). */
  qps?: number;
  /** Calls admitted at once after a quiet spell (bucket size). Default `qps` (one second's worth). */
  burst?: number;
  /**
   * Calls handled at the same time; more are refused until one finishes. By priority (the
   * `x-priority` header): sheddable calls get half of it, critical ones a quarter more.
   */
  maxConcurrency?: number;
  /**
   * A concurrency limit that adapts to the handlers' latency instead of a fixed `maxConcurrency`
   * (see AdaptiveLimit): `true` for the defaults. Shared by priority as `maxConcurrency` is.
   */
  adaptiveConcurrency?: AdaptiveLimitOptions | true;
  /** The clock, for tests. Default performance.now. */
  now?: () => number;
}

/**
 * A token bucket: holds up to `burst` tokens, refilled at `rate` per second (lazily, on take);
 * each admitted call takes one.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes a token if there is one. */
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.rate) / 1000);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * The server-side limiter: refuses calls over the QPS rate or over the concurrency limit (fixed,
 * or adaptive) with RESOURCE_EXHAUSTED, before the handler runs. One limiter per server, across
 * its methods. A streaming call holds its place in the concurrency limit until its stream ends.
 */
export function limiterMiddleware(options: LimiterOptions): DirectMiddleware {
  const { qps, maxConcurrency, adaptiveConcurrency } = options;
  if ((qps !== undefined && !(qps > 0)) || (maxConcurrency !== undefined && !(maxConcurrency >= 1))) {
    throw new ConfigError("INVALID_OPTION", "limiter: qps must be > 0 and maxConcurrency >= 1 when set");
  }
  if (maxConcurrency !== undefined && adaptiveConcurrency !== undefined) {
    throw new ConfigError("INVALID_OPTION", "limiter: set maxConcurrency or adaptiveConcurrency, not both (adaptiveConcurrency's maxLimit caps it)");
  }
  const bucket = qps === undefined ? undefined : new TokenBucket(qps, Math.max(1, options.burst ?? qps), options.now);
  const adaptive = adaptiveConcurrency === undefined ? undefined : new AdaptiveLimit(adaptiveConcurrency === true ? {} : adaptiveConcurrency);
  const now = options.now ?? (() => performance.now());
  let active = 0;
  // A direct link (runtime/rpc/direct.ts): no promise of its own per call.
  const direct = (next: DirectHandler): DirectHandler => (req) => {
    const limit = adaptive?.limit ?? maxConcurrency;
    if (limit !== undefined) {
      const priority = priorityOf(req.headers);
      const share = shareOf(limit, priority);
      if (active >= share) {
        const what = adaptive === undefined ? "" : " (adaptive limit)";
        throw new RpcError(Code.RESOURCE_EXHAUSTED, `server busy: ${active} calls already in progress, the limit for ${priority} calls is ${share}${what}; retry later`);
      }
    }
    if (bucket !== undefined && !bucket.take()) {
      throw new RpcError(Code.RESOURCE_EXHAUSTED, `rate limit exceeded: more than ${qps} calls per second; retry later`);
    }
    const inflight = ++active;
    const started = now();
    // The call holds its place until it is answered, or for a response stream until the stream ends.
    const ok = (res: RpcResponse): RpcResponse => {
      if (streamsResponses(req.method)) return observeStream(res, req.ctx, () => active--);
      active--;
      adaptive?.sample(now() - started, inflight, false);
      return res;
    };
    const failed = (e: unknown): never => {
      active--;
      adaptive?.sample(now() - started, inflight, e instanceof RpcError && (e.code === Code.RESOURCE_EXHAUSTED || e.code === Code.DEADLINE_EXCEEDED));
      throw e;
    };
    return mapNext(next, req, ok, failed);
  };
  return directMiddleware(direct);
}
