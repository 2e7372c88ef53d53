import { afterEach, describe, expect, it, vi } from "vitest";
import { CallContext, ContextValues } from "../context.js";
import type { IdempotencyLevel, MethodDescriptor, ServiceDescriptor } from "../descriptors.js";
import { Code, RpcError } from "../errors.js";
import { Metainfo } from "../metainfo.js";
import { CircuitOpenError } from "./breaker.js";
import type { RpcRequest, RpcResponse } from "../middleware.js";
import { failedEndpoints } from "./loadbalance.js";
import { backoffDelay, isRetrySafe, resolveRetryPolicy, retryMiddleware } from "./retry.js";

function method(idempotency: IdempotencyLevel): MethodDescriptor {
  return { name: "M", kind: "unary", idempotency } as unknown as MethodDescriptor;
}

function call(deadline?: number): CallContext {
  const m = method("IDEMPOTENT");
  const service: ServiceDescriptor = { typeName: "t.S", methods: { m } };
  return new CallContext({ side: "client", service, method: m, headers: {}, metainfo: new Metainfo(), values: new ContextValues(), deadline });
}

/**
 * Runs `ctx` through retry middleware whose next step is `attempt`: what load balancing and the
 * transport do (pick an endpoint, follow the cancellation), then answer or throw.
 */
function retried(ctx: CallContext, attempt: (ctx: CallContext, n: number) => void): { seen: CallContext[]; done: Promise<RpcResponse> } {
  const seen: CallContext[] = [];
  const next = (req: RpcRequest): Promise<RpcResponse> => {
    seen.push(req.ctx);
    req.ctx.endpoint = { address: `a${seen.length}` };
    req.ctx.peer = `a${seen.length}`;
    void req.ctx.cancellation;
    try {
      attempt(req.ctx, seen.length);
      return Promise.resolve({ message: {}, headers: {} });
    } catch (e) {
      return Promise.reject(e);
    }
  };
  const chain = retryMiddleware({ maxAttempts: 3, initialBackoffMs: 0, budget: false })(next);
  return { seen, done: chain({ service: ctx.service, method: ctx.method, message: {}, headers: ctx.headers, ctx }) };
}

describe("retry", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("retry - backoff grows exponentially up to maxBackoffMs, jitter only shortens it", () => {
    const p = (random: number) => resolveRetryPolicy({ initialBackoffMs: 10, multiplier: 2, maxBackoffMs: 100, jitter: 0.5, random: () => random });
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, p(0)))).toEqual([10, 20, 40, 80, 100, 100]);
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, p(0.999999)))).toEqual([1, 2, 3, 4, 5, 6].map((n) => expect.closeTo(Math.min(100, 10 * 2 ** (n - 1)) / 2, 3)));
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(1 + (i % 12), resolveRetryPolicy({ maxBackoffMs: 50 }));
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(50);
    }
  });

  it("retry - only UNAVAILABLE and DEADLINE_EXCEEDED, only when idempotent or not sent", () => {
    const c = call();
    const unavailable = new RpcError(Code.UNAVAILABLE, "x");
    const notSent = new RpcError(Code.UNAVAILABLE, "x", { notSent: true });
    const timeout = new RpcError(Code.DEADLINE_EXCEEDED, "x");
    expect(isRetrySafe(unavailable, method("IDEMPOTENT"), c)).toBe(true);
    expect(isRetrySafe(unavailable, method("NO_SIDE_EFFECTS"), c)).toBe(true);
    expect(isRetrySafe(unavailable, method("IDEMPOTENCY_UNKNOWN"), c)).toBe(false);
    expect(isRetrySafe(notSent, method("IDEMPOTENCY_UNKNOWN"), c)).toBe(true);
    expect(isRetrySafe(timeout, method("IDEMPOTENT"), c)).toBe(true);
    expect(isRetrySafe(timeout, method("IDEMPOTENCY_UNKNOWN"), c)).toBe(false);
    expect(isRetrySafe(new RpcError(Code.INTERNAL, "x", { notSent: true }), method("IDEMPOTENT"), c)).toBe(false);
    expect(isRetrySafe(new CircuitOpenError("k", "service"), method("IDEMPOTENT"), c), "the whole service is open").toBe(false);
    expect(isRetrySafe(new CircuitOpenError("k", "instance"), method("IDEMPOTENCY_UNKNOWN"), c), "another instance may do").toBe(true);
    c.abort(new RpcError(Code.DEADLINE_EXCEEDED, "call over"));
    expect(isRetrySafe(unavailable, method("IDEMPOTENT"), c), "never once the call is over").toBe(false);
  });

  it("retry - invalid policies are a ConfigError", () => {
    expect(() => resolveRetryPolicy({ maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => resolveRetryPolicy({ jitter: 2 })).toThrow(/jitter/);
  });

  it("retry - a first attempt that succeeds runs in the call's context: no fork, one deadline timer", async () => {
    const timers = vi.spyOn(globalThis, "setTimeout");
    const c = call(Date.now() + 10_000);
    void c.cancellation; // what the timeout middleware does: the call's deadline timer
    const { seen, done } = retried(c, () => undefined);
    await done;
    expect(seen).toEqual([c]);
    expect(timers).toHaveBeenCalledTimes(1);
    expect([c.attempt, c.endpoint?.address, c.peer]).toEqual([1, "a1", "a1"]);
    c.dispose();
  });

  it("retry - a retry runs in a fork, and a failed first attempt leaves nothing on the call", async () => {
    const unavailable = (): never => {
      throw new RpcError(Code.UNAVAILABLE, "down", { notSent: true });
    };
    const c = call();
    const { seen, done } = retried(c, (_ctx, n) => (n === 1 ? unavailable() : undefined));
    await done;
    expect([seen[0] === c, seen[1] === c, seen[1]?.attempt]).toEqual([true, false, 2]);
    expect([c.attempt, c.endpoint?.address, c.peer], "the winning attempt's").toEqual([2, "a2", "a2"]);
    expect([...(c.values.get(failedEndpoints) ?? [])]).toEqual(["a1"]);

    const failing = call();
    const all = retried(failing, unavailable);
    await expect(all.done).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    expect([all.seen.length, failing.attempt, failing.endpoint, failing.peer]).toEqual([3, 1, undefined, undefined]);
  });
});
