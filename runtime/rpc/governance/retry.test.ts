import { describe, expect, it } from "vitest";
import { CallContext, ContextValues } from "../context.js";
import type { IdempotencyLevel, MethodDescriptor, ServiceDescriptor } from "../descriptors.js";
import { Code, RpcError } from "../errors.js";
import { Metainfo } from "../metainfo.js";
import { CircuitOpenError } from "./breaker.js";
import { backoffDelay, isRetrySafe, resolveRetryPolicy } from "./retry.js";

function method(idempotency: IdempotencyLevel): MethodDescriptor {
  return { name: "M", kind: "unary", idempotency } as unknown as MethodDescriptor;
}

function call(): CallContext {
  const m = method("IDEMPOTENT");
  const service: ServiceDescriptor = { typeName: "t.S", methods: { m } };
  return new CallContext({ side: "client", service, method: m, headers: {}, metainfo: new Metainfo(), values: new ContextValues() });
}

describe("retry", () => {
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
});
