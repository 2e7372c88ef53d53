import { afterEach, describe, expect, it } from "vitest";
import {
  CircuitOpenError,
  Code,
  ConfigError,
  ConsistentHash,
  HeaderKeys,
  RetryBudget,
  RpcError,
  createClient,
  type BreakerState,
  type CallContext,
  type ClientTransport,
  type Endpoint,
  type EndpointHealth,
  type Resolver,
} from "meridian-rpc";
import { MemoryClientTransport } from "meridian-rpc/transports/memory";
import { EchoService } from "./gen/echo.js";
import { Bed } from "./helpers.js";
import { sleep } from "meridian-rpc/transport";

const bed = new Bed();
afterEach(() => bed.close());

const fastRetry = { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2 };

/** Handlers for every unary method that fail with `code` while `failures()` says so. */
function failing(code: Code, failures: () => boolean) {
  let n = 0;
  const handle = () => {
    n++;
    if (failures()) throw new RpcError(code, `failure ${n}`);
    return { text: "ok", count: n };
  };
  return { echo: handle, get: handle, put: handle };
}

describe("retry", () => {
  it("retry - an idempotent method is retried on UNAVAILABLE until it succeeds", async () => {
    let left = 2;
    const { address } = await bed.echo({}, failing(Code.UNAVAILABLE, () => left-- > 0));
    const client = bed.client(address, { retry: fastRetry });
    expect(await client.get()).toMatchObject({ text: "ok", count: 3 });
    left = 2;
    expect(await client.put()).toMatchObject({ text: "ok", count: 6 });
  });

  it("retry - a method of unknown idempotency is not retried after it was sent", async () => {
    let calls = 0;
    const { address } = await bed.echo({}, failing(Code.UNAVAILABLE, () => ++calls > 0));
    await expect(bed.client(address, { retry: fastRetry }).echo()).rejects.toMatchObject({ code: Code.UNAVAILABLE, message: "failure 1" });
    expect(calls).toBe(1);
  });

  it("retry - a request that surely never left is retried even when not idempotent", async () => {
    const live = await bed.echo();
    const endpoints: Endpoint[] = [{ address: "memory://gone" }, { address: live.address }];
    const client = bed.client(undefined, { endpoints, retry: fastRetry });
    expect((await client.echo({ text: "w" })).servedBy).toBe(live.name);
    await expect(bed.client(undefined, { endpoints }).echo(), "without retry the first pick fails").rejects.toMatchObject({
      code: Code.UNAVAILABLE,
      notSent: true,
    });
  });

  it("retry - other codes are never retried", async () => {
    let calls = 0;
    const { address } = await bed.echo({}, failing(Code.INTERNAL, () => ++calls > 0));
    await expect(bed.client(address, { retry: fastRetry }).get()).rejects.toMatchObject({ code: Code.INTERNAL });
    expect(calls).toBe(1);
  });

  it("retry - an attempt's timeout is retried only for idempotent methods", async () => {
    // The first call hangs (until cancelled); later ones answer at once.
    let calls = 0;
    const hangFirst = async (_req: unknown, ctx: CallContext) => {
      if (++calls === 1) await sleep(5000, ctx.signal);
      return { text: "ok", count: calls };
    };
    const { address } = await bed.echo({}, { echo: hangFirst, get: hangFirst });
    const client = bed.client(address, { retry: { ...fastRetry, attemptTimeoutMs: 25 }, timeoutMs: 2000 });
    expect(await client.get()).toMatchObject({ text: "ok", count: 2 });
    calls = 0;
    const err = (await client.echo().catch((e: unknown) => e)) as RpcError;
    expect(err).toMatchObject({ code: Code.DEADLINE_EXCEEDED, message: "deadline exceeded" });
    expect(calls).toBe(1);
  });

  it("retry - stops when the next backoff would pass the call's deadline, with the last error", async () => {
    let calls = 0;
    const { address } = await bed.echo({}, failing(Code.UNAVAILABLE, () => ++calls > 0));
    const client = bed.client(address, { retry: { maxAttempts: 5, initialBackoffMs: 200, jitter: 0 }, timeoutMs: 100 });
    const t0 = Date.now();
    await expect(client.get()).rejects.toMatchObject({ code: Code.UNAVAILABLE, message: "failure 1" });
    expect(calls).toBe(1);
    expect(Date.now() - t0, "no 200 ms backoff was waited").toBeLessThan(190);
  });

  it("retry - retry and backup together are refused", () => {
    expect(() => bed.client(undefined, { retry: {}, backup: { delayMs: 1 } })).toThrow(ConfigError);
  });
});

describe("backup", () => {
  it("backup - the first answer wins and the slower attempt is cancelled", async () => {
    let slowCtx: CallContext | undefined;
    const slow = await bed.echo({}, {
      get: async (_req, ctx) => {
        slowCtx = ctx;
        await sleep(5000, ctx.signal);
        return { text: "slow" };
      },
    });
    const fast = await bed.echo();
    // Round robin sends the first attempt to `slow`; the backup, 10 ms later, goes to `fast`.
    const client = bed.client(undefined, { endpoints: [{ address: slow.address }, { address: fast.address }], backup: { delayMs: 10 } });
    const t0 = Date.now();
    const reply = await client.get();
    expect(reply.servedBy).toBe(fast.name);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(slowCtx?.signal.aborted).toBe(true);
    expect((slowCtx?.signal.reason as RpcError).code).toBe(Code.CANCELLED);
  });

  it("backup - a non-idempotent method gets no backup request", async () => {
    const a = await bed.echo();
    const b = await bed.echo();
    const client = bed.client(undefined, { endpoints: [{ address: a.address }, { address: b.address }], backup: { delayMs: 5 } });
    expect((await client.echo({ delayMs: 40 })).servedBy).toBe(a.name);
    expect(b.calls).toHaveLength(0);
  });
});

describe("breaker", () => {
  it("breaker - opens on the error rate, refuses without sending, half-opens after the cooldown, closes on success", async () => {
    let broken = true;
    let calls = 0;
    const { address } = await bed.echo({}, failing(Code.UNAVAILABLE, () => (calls++, broken)));
    const changes: BreakerState[] = [];
    const client = bed.client(address, {
      breaker: { minRequests: 4, errorRate: 0.5, cooldownMs: 200, onStateChange: (_k, _f, to) => changes.push(to) },
    });
    for (let i = 0; i < 4; i++) await expect(client.get()).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    const open = await client.get().catch((e: unknown) => e);
    expect(open).toBeInstanceOf(CircuitOpenError);
    expect(open).toMatchObject({ code: Code.UNAVAILABLE, notSent: true, scope: "service", key: "rpctest.EchoService/Get" });
    expect(calls).toBe(4);
    broken = false;
    await new Promise((r) => setTimeout(r, 220));
    expect((await client.get()).text).toBe("ok");
    expect((await client.get()).text).toBe("ok");
    expect(changes).toEqual(["open", "half-open", "closed"]);
    expect(calls).toBe(6);
  });

  it("breaker - an instance breaker isolates the failing instance while others serve", async () => {
    const bad = await bed.echo({}, failing(Code.UNAVAILABLE, () => true));
    const good = await bed.echo();
    const client = bed.client(undefined, {
      endpoints: [{ address: bad.address }, { address: good.address }],
      instanceBreaker: { minRequests: 2, errorRate: 0.5, cooldownMs: 10_000 },
      retry: fastRetry,
    });
    for (let i = 0; i < 10; i++) expect((await client.get()).servedBy).toBe(good.name);
    expect(bad.calls.length + good.calls.length).toBe(10);
    // Round robin alternates: `bad` got the first picks until its breaker opened after 2 failures.
    expect(good.calls).toHaveLength(10);
  });
});

describe("loadbalance", () => {
  it("loadbalance - weighted round robin spreads calls by weight", async () => {
    const servers = [await bed.echo(), await bed.echo(), await bed.echo()];
    const endpoints = servers.map((s, i) => ({ address: s.address, weight: i + 1 }));
    const client = bed.client(undefined, { endpoints });
    for (let i = 0; i < 60; i++) await client.get();
    expect(servers.map((s) => s.calls.length)).toEqual([10, 20, 30]);
  });

  it("loadbalance - consistent hash on a header keeps a key on one instance", async () => {
    const servers = [await bed.echo(), await bed.echo(), await bed.echo()];
    const client = bed.client(undefined, {
      endpoints: servers.map((s) => ({ address: s.address })),
      loadBalancer: new ConsistentHash({ key: { header: "x-user" } }),
    });
    const servedBy = new Map<string, Set<string>>();
    for (let i = 0; i < 60; i++) {
      const user = `user-${i % 12}`;
      const reply = await client.get({}, { headers: { "x-user": user } });
      servedBy.set(user, (servedBy.get(user) ?? new Set()).add(reply.servedBy));
    }
    for (const set of servedBy.values()) expect(set.size).toBe(1);
    expect(new Set([...servedBy.values()].flatMap((s) => [...s])).size).toBeGreaterThan(1);
  });

  it("loadbalance - a resolver's instances are used as they change; none is UNAVAILABLE notSent", async () => {
    const a = await bed.echo();
    const b = await bed.echo();
    let current: Endpoint[] = [{ address: a.address }];
    const resolver: Resolver = { resolve: async () => current };
    const client = bed.client(undefined, { resolver });
    expect((await client.get()).servedBy).toBe(a.name);
    current = [{ address: b.address }];
    expect((await client.get()).servedBy).toBe(b.name);
    current = [];
    await expect(client.get()).rejects.toMatchObject({ code: Code.UNAVAILABLE, notSent: true });
  });
});

describe("limiter", () => {
  it("limiter - calls over the QPS rate are refused with RESOURCE_EXHAUSTED", async () => {
    const { address, calls } = await bed.echo({ limiter: { qps: 1, burst: 5 } });
    const client = bed.client(address);
    const results = await Promise.all(Array.from({ length: 10 }, () => client.get().then(() => "ok", (e: RpcError) => Code[e.code])));
    expect(results.filter((r) => r === "ok")).toHaveLength(5);
    expect(results.filter((r) => r === "RESOURCE_EXHAUSTED")).toHaveLength(5);
    expect(calls).toHaveLength(5);
  });

  it("limiter - calls over the concurrency limit are refused until one finishes", async () => {
    const { address } = await bed.echo({ limiter: { maxConcurrency: 2 } });
    const client = bed.client(address);
    const slow = [client.get({ delayMs: 100 }), client.get({ delayMs: 100 })];
    await expect(client.get()).rejects.toMatchObject({ code: Code.RESOURCE_EXHAUSTED, message: expect.stringContaining("2 calls already in progress") });
    await Promise.all(slow);
    expect((await client.get()).text).toBe("");
  });
});

describe("instances going away", () => {
  /** A memory transport whose health avoids the addresses in `avoid` (until the time given). */
  function withHealth(avoid: Map<string, number>): { transport: ClientTransport; health: EndpointHealth & { version: number } } {
    const inner = new MemoryClientTransport({ network: bed.network });
    const health = { version: 0, avoidUntil: (address: string) => avoid.get(address) ?? 0 };
    const transport: ClientTransport = { unary: (req) => inner.unary(req), close: () => inner.close(), health };
    return { transport, health };
  }

  it("loadbalance - instances the transport's health says to avoid are skipped while others remain", async () => {
    const a = await bed.echo();
    const b = await bed.echo();
    const avoid = new Map<string, number>([[a.address, Infinity]]);
    const { transport, health } = withHealth(avoid);
    const client = createClient(EchoService, { transport, endpoints: [{ address: a.address }, { address: b.address }] });
    const servedBy = async (n: number) => Promise.all(Array.from({ length: n }, async () => (await client.get()).servedBy));
    expect(new Set(await servedBy(6))).toEqual(new Set([b.name]));
    // Asked again only once the version changes...
    avoid.delete(a.address);
    expect(new Set(await servedBy(6))).toEqual(new Set([b.name]));
    health.version++;
    expect(new Set(await servedBy(6))).toEqual(new Set([a.name, b.name]));
    // ...or once the time it gave has passed.
    avoid.set(a.address, Date.now() + 60);
    health.version++;
    expect(new Set(await servedBy(6))).toEqual(new Set([b.name]));
    avoid.delete(a.address);
    await sleep(80, new AbortController().signal);
    expect(new Set(await servedBy(6))).toEqual(new Set([a.name, b.name]));
    // When every instance is to be avoided, calls still go (to meet the transport's own answer).
    avoid.set(a.address, Infinity).set(b.address, Infinity);
    health.version++;
    expect(new Set(await servedBy(6))).toEqual(new Set([a.name, b.name]));
  });

  it("retry - the next attempt goes to another instance than the one the call failed on", async () => {
    let failedOnA = 0;
    const a = await bed.echo({}, { get: () => (failedOnA++, Promise.reject(new RpcError(Code.UNAVAILABLE, "a is failing"))) });
    const b = await bed.echo();
    // Smooth WRR over a:3, b:1 picks a, a, b, a: without avoiding a, the retry would go to a again.
    const endpoints = [
      { address: a.address, weight: 3 },
      { address: b.address, weight: 1 },
    ];
    const client = bed.client(undefined, { endpoints, retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 1 } });
    expect((await client.get()).servedBy).toBe(b.name);
    expect(failedOnA).toBe(1);
  });

  it("retry - an answer marked rpc-refused counts as never sent: a non-idempotent call is retried elsewhere", async () => {
    const refusing = (refused: boolean) => ({
      echo: (_req: unknown, ctx: CallContext) => {
        if (refused) ctx.responseHeaders[HeaderKeys.refused] = "1";
        throw new RpcError(Code.UNAVAILABLE, "the server is shutting down");
      },
    });
    const closing = await bed.echo({}, refusing(true));
    const live = await bed.echo();
    const client = bed.client(undefined, { endpoints: [{ address: closing.address }, { address: live.address }], retry: fastRetry });
    for (let i = 0; i < 4; i++) expect((await client.echo({ text: "w" })).servedBy).toBe(live.name);
    const e = await bed.client(closing.address).echo().catch((err: unknown) => err);
    expect(e).toMatchObject({ code: Code.UNAVAILABLE, notSent: true });
    // The same answer without the mark may have run: not retried.
    const unmarked = await bed.echo({}, refusing(false));
    const client2 = bed.client(undefined, { endpoints: [{ address: unmarked.address }], retry: fastRetry });
    await expect(client2.echo()).rejects.toMatchObject({ code: Code.UNAVAILABLE, notSent: false });
  });

  it("retry - a call an overloaded server shed (RESOURCE_EXHAUSTED, rpc-refused) is retried on another instance", async () => {
    let shedCalls = 0;
    const shedding = await bed.echo({}, {
      echo: (_req: unknown, ctx: CallContext) => {
        shedCalls++;
        ctx.responseHeaders[HeaderKeys.refused] = "1";
        throw new RpcError(Code.RESOURCE_EXHAUSTED, "the server is overloaded");
      },
    });
    const live = await bed.echo();
    const client = bed.client(undefined, { endpoints: [{ address: shedding.address }, { address: live.address }], retry: fastRetry });
    for (let i = 0; i < 6; i++) expect((await client.echo({ text: "w" })).servedBy).toBe(live.name);
    expect(shedCalls).toBeGreaterThan(0);
    // RESOURCE_EXHAUSTED from a handler that may have run (no mark) is not retried.
    const busy = await bed.echo({}, { echo: () => Promise.reject(new RpcError(Code.RESOURCE_EXHAUSTED, "quota")) });
    await expect(bed.client(undefined, { endpoints: [{ address: busy.address }], retry: fastRetry }).echo()).rejects.toMatchObject({ code: Code.RESOURCE_EXHAUSTED });
  });

  it("requeue - by default a refused call is sent again, to another instance; only refusals; requeue: false turns it off", async () => {
    const { down, attempts: seen } = await refusingServer();
    const live = await bed.echo();
    const endpoints = [{ address: down.address }, { address: live.address }];
    const client = bed.client(undefined, { endpoints });
    for (let i = 0; i < 6; i++) expect((await client.echo({ text: "w" })).servedBy).toBe(live.name);
    expect(seen()).toBeGreaterThan(0);
    // The same failure without the rpc-refused mark may have run: not sent again.
    let ran = 0;
    const failingAfterRun = await bed.echo({}, failing(Code.UNAVAILABLE, () => ++ran > 0));
    await expect(bed.client(failingAfterRun.address).echo()).rejects.toMatchObject({ code: Code.UNAVAILABLE, notSent: false });
    expect(ran).toBe(1);
    const before = seen();
    const off = bed.client(undefined, { endpoints: [{ address: down.address }], requeue: false });
    await expect(off.echo()).rejects.toMatchObject({ code: Code.UNAVAILABLE, notSent: true });
    expect(seen() - before).toBe(1);
    const bounded = bed.client(undefined, { endpoints: [{ address: down.address }], requeue: { ...fastRetry, maxAttempts: 2 } });
    await expect(bounded.echo()).rejects.toMatchObject({ code: Code.UNAVAILABLE, notSent: true });
    expect(seen() - before).toBe(3);
  });

  /** A server that refuses every call before its handler (UNAVAILABLE, rpc-refused), counting them. */
  async function refusingServer() {
    let attempts = 0;
    const down = await bed.echo({}, {
      echo: (_req: unknown, ctx: CallContext) => {
        attempts++;
        ctx.responseHeaders[HeaderKeys.refused] = "1";
        throw new RpcError(Code.UNAVAILABLE, "down");
      },
    });
    return { down, attempts: () => attempts };
  }

  it("retry - the budget caps retries at its share of calls: a failing service gets few more attempts than calls", async () => {
    const { down, attempts: seen } = await refusingServer();
    let t = 0;
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0, now: () => t });
    const client = bed.client(undefined, { endpoints: [{ address: down.address }], retry: { ...fastRetry, maxAttempts: 5, budget } });
    const calls = 200;
    for (let i = 0; i < calls; i++) await expect(client.echo()).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    // One retry to start with, then one per ten calls; without the budget: 5 attempts a call.
    expect(seen()).toBeLessThanOrEqual(calls + 1 + calls * 0.1);
    expect(seen()).toBeGreaterThan(calls);
    expect(budget.refused).toBeGreaterThan(0);
    // Time refills it at minPerSecond.
    const timed = new RetryBudget({ ratio: 0, minPerSecond: 10, now: () => t });
    for (let i = 0; i < 10; i++) expect(timed.withdraw()).toBe(true);
    expect(timed.withdraw()).toBe(false);
    t += 500;
    for (let i = 0; i < 5; i++) expect(timed.withdraw()).toBe(true);
    expect(timed.withdraw()).toBe(false);
  });

  it("retry - budget: false leaves retries capped by maxAttempts alone; bad budget options are a ConfigError", async () => {
    const { down, attempts: seen } = await refusingServer();
    const client = bed.client(undefined, { endpoints: [{ address: down.address }], retry: { ...fastRetry, maxAttempts: 3, budget: false } });
    for (let i = 0; i < 20; i++) await expect(client.echo()).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    expect(seen()).toBe(60);
    expect(() => new RetryBudget({ ratio: -1 })).toThrow(ConfigError);
  });
});
