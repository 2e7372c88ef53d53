import { BizError, Code, ConfigError, RpcError } from "../errors.js";
import type { Middleware } from "../middleware.js";
import { observeStream, streamsResponses } from "../streaming.js";

/** Where a circuit breaker sits: per method of the service, or per instance (address). */
export type BreakerScope = "service" | "instance";

/**
 * The error of a call refused by an open circuit breaker: UNAVAILABLE, `notSent` (nothing went
 * out, so retrying it elsewhere is safe).
 */
export class CircuitOpenError extends RpcError {
  override readonly name: string = "CircuitOpenError";

  constructor(
    readonly key: string,
    readonly scope: BreakerScope,
  ) {
    super(Code.UNAVAILABLE, `circuit open for ${scope} ${key}: too many recent failures; calls resume after the cooldown`, {
      notSent: true,
    });
  }
}

/** How a call's outcome counts for a breaker. */
export type BreakerOutcome = "success" | "failure" | "ignore";

/** The states of a circuit breaker. */
export type BreakerState = "closed" | "open" | "half-open";

/** Options of circuit breakers. */
export interface BreakerOptions {
  /** Length of the sliding window the error rate is measured over. Default 10000 ms. */
  windowMs?: number;
  /** Buckets the window is divided into (its resolution). Default 10. */
  buckets?: number;
  /** Calls the window must hold before the error rate can open the circuit. Default 20. */
  minRequests?: number;
  /** Error rate (0..1] at or above which the circuit opens. Default 0.5. */
  errorRate?: number;
  /** How long an open circuit refuses calls before letting probes through. Default 5000 ms. */
  cooldownMs?: number;
  /** Probe calls let through at once when half-open; that many successes close it. Default 1. */
  halfOpenProbes?: number;
  /** How an outcome counts; the default is `classifyOutcome`. */
  classify?: (err: RpcError | undefined) => BreakerOutcome;
  /** Called on every state change, for logs and metrics. */
  onStateChange?: (key: string, from: BreakerState, to: BreakerState) => void;
  /** The clock, for tests. Default Date.now. */
  now?: () => number;
}

/**
 * The default outcome of a call for a breaker: errors that say the instance or the path to it is
 * unhealthy (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN, DATA_LOSS)
 * are failures; business errors and other answers are successes (the server answered);
 * cancellations by the caller and refusals by another open breaker are ignored.
 */
export function classifyOutcome(err: RpcError | undefined): BreakerOutcome {
  if (err === undefined || err instanceof BizError) return "success";
  if (err instanceof CircuitOpenError || err.code === Code.CANCELLED) return "ignore";
  switch (err.code) {
    case Code.UNAVAILABLE:
    case Code.DEADLINE_EXCEEDED:
    case Code.RESOURCE_EXHAUSTED:
    case Code.INTERNAL:
    case Code.UNKNOWN:
    case Code.DATA_LOSS:
      return "failure";
    default:
      return "success";
  }
}

/** What `CircuitBreaker.acquire` grants: a normal call, or a probe of a half-open circuit. */
export type BreakerPermit = "call" | "probe";

/**
 * A circuit breaker on the error rate over a sliding window: closed, it lets calls through and
 * counts their outcomes in time buckets; when the window holds at least `minRequests` calls and
 * the failure share reaches `errorRate`, it opens and refuses calls for `cooldownMs`; then it is
 * half-open and lets `halfOpenProbes` calls through: that many successes close it (with a fresh
 * window), one failure opens it again.
 */
export class CircuitBreaker {
  private readonly bucketMs: number;
  private readonly epochs: Float64Array;
  private readonly successes: Uint32Array;
  private readonly failures: Uint32Array;
  private current: BreakerState = "closed";
  private openedAt = 0;
  private probes = 0;
  private probeSuccesses = 0;
  private readonly o: Required<Omit<BreakerOptions, "onStateChange" | "windowMs">>;

  constructor(
    readonly key: string,
    private readonly options: BreakerOptions = {},
  ) {
    this.o = {
      buckets: options.buckets ?? 10,
      minRequests: options.minRequests ?? 20,
      errorRate: options.errorRate ?? 0.5,
      cooldownMs: options.cooldownMs ?? 5000,
      halfOpenProbes: options.halfOpenProbes ?? 1,
      classify: options.classify ?? classifyOutcome,
      now: options.now ?? Date.now,
    };
    const windowMs = options.windowMs ?? 10_000;
    if (!(this.o.buckets >= 1) || !(windowMs > 0) || !(this.o.errorRate > 0 && this.o.errorRate <= 1) || !(this.o.halfOpenProbes >= 1)) {
      throw new ConfigError("INVALID_OPTION", "breaker: windowMs must be > 0, buckets and halfOpenProbes >= 1, errorRate in (0, 1]");
    }
    this.bucketMs = windowMs / this.o.buckets;
    this.epochs = new Float64Array(this.o.buckets).fill(-1);
    this.successes = new Uint32Array(this.o.buckets);
    this.failures = new Uint32Array(this.o.buckets);
  }

  /** The state now (an open circuit whose cooldown has passed reads as half-open). */
  get state(): BreakerState {
    if (this.current === "open" && this.o.now() - this.openedAt >= this.o.cooldownMs) this.moveTo("half-open");
    return this.current;
  }

  /** Asks to make a call: a permit, or undefined when the circuit refuses it. */
  acquire(): BreakerPermit | undefined {
    const state = this.state;
    if (state === "closed") return "call";
    if (state === "open" || this.probes >= this.o.halfOpenProbes) return undefined;
    this.probes++;
    return "probe";
  }

  /** Reports how a call made under `permit` ended (its error, or undefined on success). */
  release(permit: BreakerPermit, err: RpcError | undefined): void {
    const outcome = this.o.classify(err);
    if (permit === "probe") {
      if (this.probes > 0) this.probes--;
      if (this.current !== "half-open" || outcome === "ignore") return;
      if (outcome === "failure") this.trip();
      else if (++this.probeSuccesses >= this.o.halfOpenProbes) this.moveTo("closed");
      return;
    }
    if (this.current !== "closed" || outcome === "ignore") return;
    this.record(outcome === "failure");
  }

  /** Calls and failures in the current window. */
  counts(): { calls: number; failures: number } {
    const oldest = Math.floor(this.o.now() / this.bucketMs) - this.o.buckets;
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < this.o.buckets; i++) {
      if ((this.epochs[i] as number) <= oldest) continue;
      calls += (this.successes[i] as number) + (this.failures[i] as number);
      failures += this.failures[i] as number;
    }
    return { calls, failures };
  }

  private record(failure: boolean): void {
    const epoch = Math.floor(this.o.now() / this.bucketMs);
    const slot = epoch % this.o.buckets;
    if (this.epochs[slot] !== epoch) {
      this.epochs[slot] = epoch;
      this.successes[slot] = 0;
      this.failures[slot] = 0;
    }
    if (failure) this.failures[slot]++;
    else this.successes[slot]++;
    const { calls, failures } = this.counts();
    if (calls >= this.o.minRequests && failures / calls >= this.o.errorRate) this.trip();
  }

  private trip(): void {
    this.openedAt = this.o.now();
    this.moveTo("open");
  }

  private moveTo(to: BreakerState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.probes = 0;
    this.probeSuccesses = 0;
    if (to === "closed") this.epochs.fill(-1);
    this.options.onStateChange?.(this.key, from, to);
  }
}

/**
 * Circuit breaking as middleware (client side). `service` scope keys a breaker by service and
 * method (`feed.FeedService/GetFeed`, like Kitex's service breaker); `instance` scope keys it by
 * the address load balancing picked, and passes calls without an endpoint through. An open
 * circuit rejects with CircuitOpenError. A streaming call counts with how its stream ended.
 */
export function breakerMiddleware(scope: BreakerScope, options: BreakerOptions = {}): Middleware {
  const breakers = new Map<string, CircuitBreaker>();
  return (next) => async (req) => {
    const key = scope === "service" ? `${req.service.typeName}/${req.method.name}` : req.ctx.endpoint?.address;
    if (key === undefined) return next(req);
    let breaker = breakers.get(key);
    if (breaker === undefined) breakers.set(key, (breaker = new CircuitBreaker(key, options)));
    const permit = breaker.acquire();
    if (permit === undefined) throw new CircuitOpenError(key, scope);
    try {
      const res = await next(req);
      if (streamsResponses(req.method)) return observeStream(res, req.ctx, (err) => breaker.release(permit, err));
      breaker.release(permit, undefined);
      return res;
    } catch (e) {
      const err = RpcError.from(e);
      breaker.release(permit, err);
      throw err;
    }
  };
}
