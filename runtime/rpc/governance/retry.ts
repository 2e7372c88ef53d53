import type { CallContext } from "../context.js";
import { sleep, startTimer, type Timer } from "../deadline.js";
import type { MethodDescriptor } from "../descriptors.js";
import { Code, ConfigError, RpcError } from "../errors.js";
import { directMiddleware, mapNext, promised, type DirectMiddleware, type LaterStep } from "../direct.js";
import type { Handler, Middleware, RpcRequest, RpcResponse } from "../middleware.js";
import { HeaderKeys, type Endpoint } from "../transport.js";
import { observeStream, requestsTaken, streamsResponses } from "../streaming.js";
import { CircuitOpenError } from "./breaker.js";
import { failedEndpoints } from "./loadbalance.js";

/** Failure retry: how many attempts, how long to back off between them. */
export interface RetryPolicy {
  /** Attempts in all, the first included. Default 3. */
  maxAttempts?: number;
  /** Backoff before the first retry. Default 10 ms. */
  initialBackoffMs?: number;
  /** Upper bound of any backoff. Default 1000 ms. */
  maxBackoffMs?: number;
  /** Growth of the backoff per retry. Default 2. */
  multiplier?: number;
  /**
   * Share of each backoff drawn at random, in [0, 1]: a delay `d` becomes one in
   * `[d * (1 - jitter), d]`, so delays never exceed `maxBackoffMs`. Default 0.2.
   */
  jitter?: number;
  /** Timeout of each attempt (within the call's deadline); an attempt timing out may be retried. */
  attemptTimeoutMs?: number;
  /**
   * Caps retries at a share of calls, so that retries cannot multiply the load of a service
   * that is already failing (gRPC's retry throttling, Finagle's RetryBudget). Default: a budget
   * of this client's own with the defaults of {@link RetryBudgetOptions}; pass a RetryBudget to
   * share one between clients, or `false` for none (not advised).
   */
  budget?: RetryBudget | RetryBudgetOptions | false;
  /** Random source in [0, 1), for tests. Default Math.random. */
  random?: () => number;
}

/** Options of a {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed per call made, over time. Default 0.1: at most one retry for ten calls. */
  ratio?: number;
  /** Retries allowed per second whatever the traffic, so that a quiet client can still retry. Default 10. */
  minPerSecond?: number;
  /** The clock, for tests. Default performance.now. */
  now?: () => number;
}

/**
 * A retry budget: a balance of retries that every call adds `ratio` to and every retry takes one
 * from, refilled by `minPerSecond` as time passes and holding at most ten seconds' worth of
 * `minPerSecond` plus what calls earned. A retry the balance cannot pay is not made, and the call
 * fails with its attempt's error. What keeps retries from turning an overload into a storm.
 */
export class RetryBudget {
  private readonly ratio: number;
  private readonly minPerSecond: number;
  private readonly max: number;
  private readonly now: () => number;
  private balance: number;
  private last: number;
  /** Retries refused for want of budget. */
  refused = 0;

  constructor(options: RetryBudgetOptions = {}) {
    this.ratio = options.ratio ?? 0.1;
    this.minPerSecond = options.minPerSecond ?? 10;
    if (!(this.ratio >= 0) || !(this.minPerSecond >= 0)) throw new ConfigError("INVALID_OPTION", "retry budget: ratio and minPerSecond must be >= 0");
    this.max = Math.max(1, 10 * this.minPerSecond + 100 * this.ratio);
    this.now = options.now ?? (() => performance.now());
    this.balance = Math.max(1, this.minPerSecond);
    this.last = this.now();
  }

  /**
   * A call was made: it earns `ratio` of a retry. The refill by time waits for the next
   * `withdraw` (capped sums of additions come out the same in any order), so a call that is not
   * retried reads no clock here.
   */
  deposit(): void {
    this.balance = Math.min(this.max, this.balance + this.ratio);
  }

  /** Takes one retry from the balance; false (and counted) when there is not a whole one. */
  withdraw(): boolean {
    this.refill();
    if (this.balance < 1) {
      this.refused++;
      return false;
    }
    this.balance -= 1;
    return true;
  }

  private refill(): void {
    const t = this.now();
    this.balance = Math.min(this.max, this.balance + ((t - this.last) / 1000) * this.minPerSecond);
    this.last = t;
  }
}

/** A RetryPolicy with every default filled in. */
export type ResolvedRetryPolicy = Required<Omit<RetryPolicy, "attemptTimeoutMs" | "budget">> & {
  attemptTimeoutMs: number | undefined;
  budget: RetryBudget | undefined;
};

/** Fills in a retry policy's defaults and checks its values. */
export function resolveRetryPolicy(policy: RetryPolicy = {}): ResolvedRetryPolicy {
  const p: ResolvedRetryPolicy = {
    maxAttempts: policy.maxAttempts ?? 3,
    initialBackoffMs: policy.initialBackoffMs ?? 10,
    maxBackoffMs: policy.maxBackoffMs ?? 1000,
    multiplier: policy.multiplier ?? 2,
    jitter: policy.jitter ?? 0.2,
    attemptTimeoutMs: policy.attemptTimeoutMs,
    random: policy.random ?? Math.random,
    budget: policy.budget === false ? undefined : policy.budget instanceof RetryBudget ? policy.budget : new RetryBudget(policy.budget),
  };
  if (!(p.maxAttempts >= 1) || !(p.initialBackoffMs >= 0) || !(p.maxBackoffMs >= 0) || !(p.multiplier >= 1) || !(p.jitter >= 0 && p.jitter <= 1)) {
    throw new ConfigError(
      "INVALID_OPTION",
      "retry: maxAttempts must be >= 1, backoffs >= 0, multiplier >= 1 and jitter in [0, 1]",
    );
  }
  return p;
}

/** The backoff before retry number `retry` (1 for the first retry): exponential, jittered, bounded. */
export function backoffDelay(retry: number, p: ResolvedRetryPolicy): number {
  const base = Math.min(p.maxBackoffMs, p.initialBackoffMs * p.multiplier ** (retry - 1));
  return base * (1 - p.jitter * p.random());
}

/** Whether the method may run twice: its idempotency level is NO_SIDE_EFFECTS or IDEMPOTENT. */
export function isIdempotent(method: MethodDescriptor): boolean {
  return method.idempotency === "NO_SIDE_EFFECTS" || method.idempotency === "IDEMPOTENT";
}

/**
 * Whether a failed attempt may be retried: never once the call itself is over (cancelled or past
 * its deadline) or when the service's circuit is open; UNAVAILABLE and an attempt's own
 * DEADLINE_EXCEEDED when the method is idempotent or the request surely never left (`notSent`);
 * RESOURCE_EXHAUSTED only when no handler saw the call (`notSent`: shed by an overloaded server,
 * refused at its limit), so another instance may take it; nothing else.
 */
export function isRetrySafe(err: RpcError, method: MethodDescriptor, call: CallContext): boolean {
  if (call.cancellation.aborted) return false;
  if (err instanceof CircuitOpenError && err.scope === "service") return false;
  if (err.code === Code.RESOURCE_EXHAUSTED) return err.notSent;
  if (err.code !== Code.UNAVAILABLE && err.code !== Code.DEADLINE_EXCEEDED) return false;
  return err.notSent || isIdempotent(method);
}

/**
 * Remembers that an attempt failed on its instance (`address`), so load balancing picks another
 * one for the next attempt (the attempts share the call's values).
 */
function rememberFailed(call: CallContext, address: string | undefined): void {
  if (address === undefined) return;
  const before = call.values.get(failedEndpoints);
  if (before?.has(address) === true) return;
  call.values.set(failedEndpoints, new Set(before).add(address));
}

/** Copies what the winning attempt learned (where it went) onto the call's context. */
function adopt(call: CallContext, won: CallContext): void {
  call.endpoint = won.endpoint;
  call.peer = won.peer;
  call.attempt = won.attempt;
}

/**
 * Failure retry (client side): retries an attempt that failed in a way `isRetrySafe` allows,
 * after an exponential, jittered backoff, up to `maxAttempts`, only while the backoff ends before
 * the call's deadline, and only while the retry budget allows (retries capped at a share of
 * calls, see RetryBudget). Each retry runs in a forked context, so load balancing picks again
 * (another instance than those the call failed on, while there is one); an attempt with its own
 * timeout runs in one too. A unary call's first attempt without one runs in the call's context.
 *
 * Streaming calls: an attempt is retried only while it has delivered no response message (its
 * `next` rejected) and, for client-streaming and bidi calls, took no request message from the
 * caller (a stream cannot be replayed). `attemptTimeoutMs` does not apply to them (it would cut
 * a healthy long stream); the call's deadline does. The attempt's context lives until its
 * response stream ends.
 */
export function retryMiddleware(policy: RetryPolicy = {}): DirectMiddleware {
  return retrying(resolveRetryPolicy(policy), isRetrySafe);
}

/**
 * Whether a server refused the attempt before any handler saw it (`rpc-refused`: shed by an
 * overloaded server, refused at a limit, or turned away while shutting down), so that sending it
 * again cannot run it twice: Finagle's "requeue" of a nack.
 */
export function isRefused(err: RpcError, _method: MethodDescriptor, call: CallContext): boolean {
  if (call.cancellation.aborted || !err.notSent || err.headers[HeaderKeys.refused] === undefined) return false;
  return err.code === Code.RESOURCE_EXHAUSTED || err.code === Code.UNAVAILABLE;
}

/**
 * Requeue (client side, on by default): sends again, after the same backoff as `retry` and
 * within the same kind of budget, an attempt a server refused before any handler saw it
 * (`isRefused`), preferring another instance. Any method qualifies, since none ran. What keeps a
 * brief overload or a rolling restart from failing calls that a second instance (or the same one
 * a few ms later) would serve; the budget keeps it from adding load to a service that stays
 * overloaded.
 */
export function requeueMiddleware(policy: RetryPolicy = {}): DirectMiddleware {
  return retrying(resolveRetryPolicy(policy), isRefused);
}

/** The attempt loop of retry and requeue: `safe` says which failures may be sent again. */
function retrying(p: ResolvedRetryPolicy, safe: RetrySafe): DirectMiddleware {
  return directMiddleware((next) => {
    const nextPromised = promised(next);
    return (req) => {
      p.budget?.deposit();
      const attempts = new Attempts(p, safe, nextPromised, req);
      // A first attempt that nothing cancels alone (a unary call without an attempt timeout) runs in
      // the call's own context: a call that succeeds at once costs no fork, no second deadline timer,
      // no listener on the call's cancellation, no promise of this middleware's own (a direct link:
      // `attempts` is a step of the transport's Later, its recovery) and that one object. What the
      // attempt leaves on the call is undone if it fails.
      if (req.method.kind !== "unary" || p.attemptTimeoutMs !== undefined || req.ctx.attempt !== 1) return attempts.from(1);
      return mapNext(next, req, attempts);
    };
  });
}

/** Which failures of an attempt may be sent again: `isRetrySafe` for retry, `isRefused` for requeue. */
type RetrySafe = (err: RpcError, method: MethodDescriptor, call: CallContext) => boolean;

/**
 * The attempts of one call. As a step after the first attempt, run in the call's own context: its
 * response passes, its failure is recovered from by the attempts after it, each in a forked
 * context (as every attempt is when the first cannot run in the call's).
 */
class Attempts implements LaterStep {
  next: LaterStep | undefined = undefined;
  /** Where the call was before its first attempt, which load balancing changes. */
  private readonly endpoint: Endpoint | undefined;
  private readonly peer: string | undefined;

  constructor(
    private readonly p: ResolvedRetryPolicy,
    private readonly safe: RetrySafe,
    private readonly downstream: Handler,
    private readonly req: RpcRequest,
  ) {
    this.endpoint = req.ctx.endpoint;
    this.peer = req.ctx.peer;
  }

  /** The first attempt's response, handed on as it is. */
  ok(res: unknown): unknown {
    return res;
  }

  /** The first attempt failed with `e`: the call put back as it was, then the next attempt after the backoff. */
  failed(e: unknown): Promise<RpcResponse> {
    const call = this.req.ctx;
    const failedOn = call.endpoint?.address;
    call.endpoint = this.endpoint;
    call.peer = this.peer;
    return this.after(1, e, failedOn);
  }

  /** After attempt `n` failed with `e` on `failedOn`: attempt `n + 1` once the backoff is over. */
  private async after(n: number, e: unknown, failedOn: string | undefined): Promise<RpcResponse> {
    await this.again(n, e, failedOn);
    return this.from(n + 1);
  }

  /** Attempts `first` and on, each in a forked context. */
  async from(first: number): Promise<RpcResponse> {
    const { req, p } = this;
    const call = req.ctx;
    for (let n = first; ; n++) {
      const ctx = call.fork(n);
      let keep = false;
      try {
        const res = await this.attempt(ctx, req.method.kind !== "unary" ? undefined : p.attemptTimeoutMs);
        adopt(call, ctx);
        if (!streamsResponses(req.method)) return res;
        keep = true;
        return observeStream(res, ctx, () => ctx.dispose());
      } catch (e) {
        await this.again(n, e, ctx.endpoint?.address);
      } finally {
        if (!keep) ctx.dispose();
      }
    }
  }

  /** Throws when attempt `n`, failed with `e` on `failedOn`, may not be sent again; else waits the backoff. */
  private async again(n: number, e: unknown, failedOn: string | undefined): Promise<void> {
    const { req, p } = this;
    const call = req.ctx;
    const err = RpcError.from(e);
    if (n >= p.maxAttempts || !this.safe(err, req.method, call) || requestsTaken(req.message)) throw err;
    const delay = backoffDelay(n, p);
    if (call.deadline !== undefined && Date.now() + delay >= call.deadline) throw err;
    if (p.budget !== undefined && !p.budget.withdraw()) throw err;
    rememberFailed(call, failedOn);
    await sleep(delay, call.cancellation);
  }

  /** Runs one attempt in its forked context `ctx`, bounded by the attempt timeout. */
  private async attempt(ctx: CallContext, timeoutMs: number | undefined): Promise<RpcResponse> {
    if (timeoutMs === undefined) return this.send(ctx);
    ctx.expireAt(Date.now() + timeoutMs);
    return ctx.race(this.send(ctx));
  }

  /** The call's request sent in `ctx`. */
  private send(ctx: CallContext): Promise<RpcResponse> {
    return ctx === this.req.ctx ? this.downstream(this.req) : this.downstream({ ...this.req, ctx });
  }
}

/** Backup request: a second attempt when the first has not answered after a delay. */
export interface BackupPolicy {
  /** How long to wait for the first attempt before sending the next. */
  delayMs: number;
  /** Attempts in all, the first included. Default 2. */
  maxAttempts?: number;
}

/**
 * Backup request (client side, Kitex's BackupPolicy): when an attempt has not answered after
 * `delayMs`, another is sent (to an instance load balancing picks again); the first success wins
 * and the others are cancelled. An attempt that fails while others are out waits for them; the
 * call fails when every attempt sent has failed and none is due. Only for idempotent unary
 * methods: others pass through untouched, since a duplicate could apply a write twice, and a
 * stream cannot be sent twice.
 */
export function backupMiddleware(policy: BackupPolicy): Middleware {
  const maxAttempts = policy.maxAttempts ?? 2;
  if (!(policy.delayMs >= 0) || !(maxAttempts >= 1)) {
    throw new ConfigError("INVALID_OPTION", "backup: delayMs must be >= 0 and maxAttempts >= 1");
  }
  return (next) => (req) => {
    if (!isIdempotent(req.method) || req.method.kind !== "unary") return next(req);
    const call = req.ctx;
    return new Promise<RpcResponse>((resolve, reject) => {
      const attempts: CallContext[] = [];
      let pending = 0;
      let settled = false;
      let firstError: RpcError | undefined;
      let timer: Timer | undefined;
      const settle = (winner: CallContext | undefined): void => {
        settled = true;
        timer?.cancel();
        for (const a of attempts) {
          if (a !== winner) a.abort(new RpcError(Code.CANCELLED, "backup request: another attempt answered first"));
          a.dispose();
        }
      };
      const start = (): void => {
        if (settled || call.cancellation.aborted) return;
        const ctx = call.fork(attempts.length + 1);
        attempts.push(ctx);
        pending++;
        if (attempts.length < maxAttempts) timer = startTimer(policy.delayMs, start);
        next({ ...req, ctx }).then(
          (res) => {
            if (settled) return;
            adopt(call, ctx);
            settle(ctx);
            resolve(res);
          },
          (e: unknown) => {
            if (settled) return;
            firstError ??= RpcError.from(e);
            if (--pending > 0) return;
            settle(undefined);
            reject(firstError);
          },
        );
      };
      start();
    });
  };
}
