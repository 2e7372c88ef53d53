import { describe, expect, it } from "vitest";
import { composeDirect, Later, type DirectHandler } from "../direct.js";
import { Code, ConfigError, RpcError } from "../errors.js";
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

describe("limiter - concurrency by priority", () => {
  /** Runs `limiter` around handlers that wait until released; returns how each call ended. */
  async function fill(options: Parameters<typeof limiterMiddleware>[0], priorities: string[]) {
    const release: (() => void)[] = [];
    const chain = limiterMiddleware(options)(() => new Promise((resolve) => release.push(() => resolve({ message: {}, headers: {} }))));
    const method = { kind: "unary" } as never;
    const outcomes = priorities.map((p) =>
      chain({ headers: { "x-priority": p }, method } as never).then(
        () => "ok",
        (e: unknown) => (e instanceof RpcError ? `refused ${p}` : String(e)),
      ),
    );
    await new Promise((r) => setImmediate(r));
    for (const r of release) r();
    return Promise.all(outcomes);
  }

  it("limiter - critical calls get past a full limit, sheddable ones only use half of it", async () => {
    const got = await fill({ maxConcurrency: 4 }, ["sheddable", "sheddable", "sheddable", "normal", "normal", "normal", "critical", "critical"]);
    expect(got).toEqual(["ok", "ok", "refused sheddable", "ok", "ok", "refused normal", "ok", "refused critical"]);
  });

  it("limiter - an adaptive limit refuses past its current value", async () => {
    const got = await fill({ adaptiveConcurrency: { initialLimit: 4, minLimit: 1 } }, ["normal", "normal", "normal", "normal", "normal"]);
    expect(got).toEqual(["ok", "ok", "ok", "ok", "refused normal"]);
    expect(() => limiterMiddleware({ maxConcurrency: 4, adaptiveConcurrency: true })).toThrow(ConfigError);
  });
});

describe("limiter - direct form", () => {
  const req = { headers: {}, method: { kind: "unary" } } as never;
  const response = { message: {}, headers: {} };

  it("limiter - a call that answers at once leaves its place at once; one that answers Later holds it until it settles", async () => {
    let release: (() => void) | undefined;
    let awaiting = false;
    const last: DirectHandler = () => {
      if (!awaiting) return response;
      return new Later(
        new Promise((resolve) => (release = () => resolve(undefined))),
        () => response,
        (e) => {
          throw e;
        },
      );
    };
    const chain = composeDirect([limiterMiddleware({ maxConcurrency: 1 })], last);
    expect(chain(req)).toBe(response);
    expect(chain(req)).toBe(response);
    awaiting = true;
    const held = chain(req);
    expect(held).toBeInstanceOf(Later);
    expect(() => chain(req)).toThrow(expect.objectContaining({ code: Code.RESOURCE_EXHAUSTED }));
    release!();
    await (held as Later).settle();
    awaiting = false;
    expect(chain(req)).toBe(response);
  });

  it("limiter - a failed call leaves its place, its error passed on", async () => {
    const chain = composeDirect([limiterMiddleware({ maxConcurrency: 1 })], () => {
      throw new RpcError(Code.ABORTED, "conflict");
    });
    expect(() => chain(req)).toThrow(expect.objectContaining({ code: Code.ABORTED }));
    expect(() => chain(req)).toThrow(expect.objectContaining({ code: Code.ABORTED }));
    const failingLater = composeDirect([limiterMiddleware({ maxConcurrency: 1 })], () =>
      new Later(Promise.reject(new RpcError(Code.UNAVAILABLE, "down")), () => response, (e) => {
        throw e;
      }),
    );
    await expect((failingLater(req) as Later).settle()).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    await expect((failingLater(req) as Later).settle()).rejects.toMatchObject({ code: Code.UNAVAILABLE });
  });
});
