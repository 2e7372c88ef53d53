import { describe, expect, it } from "vitest";
import { ConfigError } from "../errors.js";
import { AdaptiveLimit } from "./adaptive.js";
import { priorityOf, shareOf } from "./priority.js";

describe("adaptive limit", () => {
  it("adaptive limit - grows while latency holds and the limit is used", () => {
    const l = new AdaptiveLimit({ initialLimit: 10, maxLimit: 100 });
    for (let i = 0; i < 50; i++) l.sample(10, l.limit, false);
    expect(l.limit).toBeGreaterThan(30);
    expect(l.limit).toBeLessThanOrEqual(100);
  });

  it("adaptive limit - does not grow while less than half of it is used", () => {
    const l = new AdaptiveLimit({ initialLimit: 20 });
    for (let i = 0; i < 100; i++) l.sample(10, 3, false);
    expect(l.limit).toBe(20);
  });

  it("adaptive limit - shrinks when calls get slower than tolerance times the long-term latency, down to minLimit", () => {
    const l = new AdaptiveLimit({ initialLimit: 50, minLimit: 5, longWindow: 1000 });
    for (let i = 0; i < 20; i++) l.sample(10, l.limit, false);
    const before = l.limit;
    for (let i = 0; i < 30; i++) l.sample(60, l.limit, false);
    expect(l.limit).toBeLessThan(before);
    for (let i = 0; i < 500; i++) l.sample(200, l.limit, false);
    expect(l.limit).toBeGreaterThanOrEqual(5);
  });

  it("adaptive limit - a call dropped from overload shrinks it by a tenth", () => {
    const l = new AdaptiveLimit({ initialLimit: 100 });
    l.sample(10, 100, true);
    expect(l.limit).toBe(90);
  });

  it("adaptive limit - bad options are a ConfigError", () => {
    expect(() => new AdaptiveLimit({ minLimit: 0 })).toThrow(ConfigError);
    expect(() => new AdaptiveLimit({ minLimit: 10, maxLimit: 5 })).toThrow(ConfigError);
    expect(() => new AdaptiveLimit({ tolerance: 0.5 })).toThrow(ConfigError);
    expect(() => new AdaptiveLimit({ smoothing: 0 })).toThrow(ConfigError);
  });
});

describe("priority", () => {
  it("priority - read from x-priority, normal by default or when unknown", () => {
    expect(priorityOf({ "x-priority": "critical" })).toBe("critical");
    expect(priorityOf({ "x-priority": "sheddable" })).toBe("sheddable");
    expect(priorityOf({ "x-priority": "urgent!!" })).toBe("normal");
    expect(priorityOf({})).toBe("normal");
  });

  it("priority - shares of a limit: sheddable half, normal all, critical a quarter more", () => {
    expect([shareOf(8, "sheddable"), shareOf(8, "normal"), shareOf(8, "critical")]).toEqual([4, 8, 10]);
    expect([shareOf(1, "sheddable"), shareOf(1, "critical")]).toEqual([1, 2]);
  });
});
