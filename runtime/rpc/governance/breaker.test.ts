import { describe, expect, it } from "vitest";
import { BizError, Code, RpcError } from "../errors.js";
import { CircuitBreaker, CircuitOpenError, classifyOutcome, type BreakerState } from "./breaker.js";

/** A breaker on a clock the test moves by hand. */
function breaker(options: ConstructorParameters<typeof CircuitBreaker>[1] = {}) {
  const clock = { now: 1_000_000 };
  const changes: BreakerState[] = [];
  const b = new CircuitBreaker("svc/M", {
    windowMs: 1000,
    buckets: 10,
    minRequests: 4,
    errorRate: 0.5,
    cooldownMs: 100,
    now: () => clock.now,
    onStateChange: (_k, _from, to) => changes.push(to),
    ...options,
  });
  const call = (err?: RpcError): boolean => {
    const permit = b.acquire();
    if (permit === undefined) return false;
    b.release(permit, err);
    return true;
  };
  return { b, clock, changes, call };
}

const unavailable = new RpcError(Code.UNAVAILABLE, "down");

describe("breaker", () => {
  it("breaker - stays closed below minRequests, opens at the error rate", () => {
    const { b, call } = breaker();
    call(unavailable);
    call(unavailable);
    call(unavailable);
    expect(b.state, "3 calls < minRequests 4").toBe("closed");
    call();
    expect(b.state, "3 of 4 failed").toBe("open");
    expect(call()).toBe(false);
  });

  it("breaker - stays closed while the error rate is under the threshold", () => {
    const { b, call } = breaker();
    for (let i = 0; i < 20; i++) call(i % 4 === 3 ? unavailable : undefined);
    expect(b.state).toBe("closed");
    expect(b.counts()).toEqual({ calls: 20, failures: 5 });
  });

  it("breaker - old failures slide out of the window", () => {
    const { b, clock, call } = breaker();
    call(unavailable);
    call(unavailable);
    call(unavailable);
    clock.now += 1100;
    expect(b.counts()).toEqual({ calls: 0, failures: 0 });
    call(unavailable);
    call();
    call();
    call();
    expect(b.state).toBe("closed");
  });

  it("breaker - half-opens after the cooldown, lets one probe through, closes on its success", () => {
    const { b, clock, changes, call } = breaker();
    for (let i = 0; i < 4; i++) call(unavailable);
    clock.now += 99;
    expect(b.state).toBe("open");
    clock.now += 1;
    expect(b.state).toBe("half-open");
    const probe = b.acquire();
    expect(probe).toBe("probe");
    expect(b.acquire(), "one probe at a time").toBeUndefined();
    b.release(probe!, undefined);
    expect(b.state).toBe("closed");
    expect(b.counts().calls, "a fresh window").toBe(0);
    expect(changes).toEqual(["open", "half-open", "closed"]);
  });

  it("breaker - a failed probe opens the circuit again for another cooldown", () => {
    const { b, clock, changes, call } = breaker();
    for (let i = 0; i < 4; i++) call(unavailable);
    clock.now += 100;
    expect(call(unavailable)).toBe(true);
    expect(b.state).toBe("open");
    clock.now += 50;
    expect(call()).toBe(false);
    clock.now += 50;
    expect(call()).toBe(true);
    expect(changes).toEqual(["open", "half-open", "open", "half-open", "closed"]);
  });

  it("breaker - business errors and answered calls are successes; cancellations are ignored", () => {
    expect(classifyOutcome(new BizError(1, "no"))).toBe("success");
    expect(classifyOutcome(new RpcError(Code.NOT_FOUND, "x"))).toBe("success");
    expect(classifyOutcome(new RpcError(Code.CANCELLED, "x"))).toBe("ignore");
    expect(classifyOutcome(new CircuitOpenError("k", "instance"))).toBe("ignore");
    for (const code of [Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED, Code.INTERNAL, Code.UNKNOWN]) {
      expect(classifyOutcome(new RpcError(code, "x"))).toBe("failure");
    }
    const { b, call } = breaker();
    for (let i = 0; i < 10; i++) call(new RpcError(Code.CANCELLED, "gone"));
    expect(b.counts().calls).toBe(0);
  });

  it("breaker - invalid options are a ConfigError", () => {
    expect(() => new CircuitBreaker("k", { errorRate: 0 })).toThrow(/errorRate/);
  });
});
