import { describe, expect, it } from "vitest";
import { TokenBucket, limiterMiddleware } from "./limiter.js";

describe("limiter", () => {
  it("limiter - a token bucket admits a burst, then the rate", () => {
    let now = 0;
    const b = new TokenBucket(10, 3, () => now);
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([true, true, true, false]);
    now += 100;
    expect([b.take(), b.take()]).toEqual([true, false]);
    now += 10_000;
    expect(Array.from({ length: 5 }, () => b.take()).filter(Boolean)).toHaveLength(3);
  });

  it("limiter - invalid limits are a ConfigError", () => {
    expect(() => limiterMiddleware({ qps: 0 })).toThrow(/qps/);
    expect(() => limiterMiddleware({ maxConcurrency: 0 })).toThrow(/maxConcurrency/);
  });
});
