import { Code, ConfigError, RpcError } from "../errors.js";
import type { Middleware } from "../middleware.js";
import { observeStream, streamsResponses } from "../streaming.js";

/** Options of the server-side limiter; each limit is off when unset. */
export interface LimiterOptions {
  /** Calls admitted per second on average (token bucket rate). */
  qps?: number;
  /** Calls admitted at once after a quiet spell (bucket size). Default `qps` (one second's worth). */
  burst?: number;
  /** Calls handled at the same time; more are refused until one finishes. */
  maxConcurrency?: number;
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
 * The server-side limiter: refuses calls over the QPS rate or over the concurrency limit with
 * RESOURCE_EXHAUSTED, before the handler runs. One limiter per server, across its methods. A
 * streaming call holds its place in the concurrency limit until its stream ends.
 */
export function limiterMiddleware(options: LimiterOptions): Middleware {
  const { qps, maxConcurrency } = options;
  if ((qps !== undefined && !(qps > 0)) || (maxConcurrency !== undefined && !(maxConcurrency >= 1))) {
    throw new ConfigError("INVALID_OPTION", "limiter: qps must be > 0 and maxConcurrency >= 1 when set");
  }
  const bucket = qps === undefined ? undefined : new TokenBucket(qps, Math.max(1, options.burst ?? qps), options.now);
  let active = 0;
  return (next) => async (req) => {
    if (maxConcurrency !== undefined && active >= maxConcurrency) {
      throw new RpcError(Code.RESOURCE_EXHAUSTED, `server busy: ${maxConcurrency} calls already in progress; retry later`);
    }
    if (bucket !== undefined && !bucket.take()) {
      throw new RpcError(Code.RESOURCE_EXHAUSTED, `rate limit exceeded: more than ${qps} calls per second; retry later`);
    }
    active++;
    let held = false;
    try {
      const res = await next(req);
      if (!streamsResponses(req.method)) return res;
      held = true;
      return observeStream(res, req.ctx, () => active--);
    } finally {
      if (!held) active--;
    }
  };
}
