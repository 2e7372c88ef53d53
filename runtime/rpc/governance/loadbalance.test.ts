import { describe, expect, it } from "vitest";
import { ContextValues, CallContext, createContextKey } from "../context.js";
import type { MethodDescriptor, ServiceDescriptor } from "../descriptors.js";
import { Metainfo } from "../metainfo.js";
import { CallResponse, type RpcRequest } from "../middleware.js";
import { Later, settle, type DirectHandler } from "../direct.js";
import type { Endpoint } from "../transport.js";
import { Code, RpcError } from "../errors.js";
import { ConsistentHash, LeastLoaded, WeightedRoundRobin, loadBalancerMiddleware } from "./loadbalance.js";

const method = { name: "M", kind: "unary", idempotency: "NO_SIDE_EFFECTS" } as unknown as MethodDescriptor;
const service: ServiceDescriptor = { typeName: "t.S", methods: { m: method } };

/** A request with the given headers and context values, enough for load balancers. */
function request(headers: Record<string, string> = {}, values = new ContextValues()): RpcRequest {
  const ctx = new CallContext({ side: "client", service, method, headers, metainfo: new Metainfo(), values });
  return { service, method, message: {}, headers, ctx };
}

function endpoints(n: number, weight?: (i: number) => number): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${i}:80`, weight: weight?.(i) }));
}

describe("loadbalance", () => {
  it("loadbalance - weighted round robin gives each instance its exact share per cycle, interleaved", () => {
    const lb = new WeightedRoundRobin();
    const eps = [
      { address: "a", weight: 5 },
      { address: "b", weight: 1 },
      { address: "c", weight: 1 },
    ];
    const picks = Array.from({ length: 7 }, () => lb.pick(eps)?.address).join("");
    expect(picks, "nginx's smooth sequence").toBe("aabacaa");
  });

  it("loadbalance - weighted round robin distribution over many picks is within 1% of the weights", () => {
    const lb = new WeightedRoundRobin();
    const eps = endpoints(5, (i) => [1, 2, 3, 7, 10][i] as number);
    const counts = new Map<string, number>();
    const n = 23_000;
    for (let i = 0; i < n; i++) {
      const a = lb.pick(eps)!.address;
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    eps.forEach((e) => expect(Math.abs((counts.get(e.address) ?? 0) / n - e.weight! / 23)).toBeLessThan(0.01));
  });

  it("loadbalance - weighted round robin skips weight 0 and keeps its state for an equal list in a new array", () => {
    const lb = new WeightedRoundRobin();
    const eps = [{ address: "a", weight: 0 }, { address: "b" }, { address: "c" }];
    const picks: string[] = [];
    for (let i = 0; i < 4; i++) picks.push(lb.pick(eps.map((e) => ({ ...e })))!.address);
    expect(picks).toEqual(["b", "c", "b", "c"]);
    expect(lb.pick([{ address: "x", weight: 0 }])).toBeUndefined();
  });

  it("loadbalance - consistent hash sends the same key to the same instance", () => {
    const lb = new ConsistentHash({ key: { header: "x-user" } });
    const eps = endpoints(8);
    for (let k = 0; k < 200; k++) {
      const first = lb.pick(eps, request({ "x-user": `u${k}` }));
      for (let i = 0; i < 3; i++) expect(lb.pick([...eps], request({ "x-user": `u${k}` }))).toBe(first);
    }
  });

  it("loadbalance - consistent hash moves only the removed instance's keys, and spreads keys evenly", () => {
    const key = createContextKey<string | undefined>(undefined);
    const lb = new ConsistentHash({ key });
    const eps = endpoints(10);
    const keys = Array.from({ length: 5000 }, (_, i) => `key-${i}`);
    const pick = (list: Endpoint[], k: string) => lb.pick(list, request({}, new ContextValues().set(key, k)))!.address;
    const before = new Map(keys.map((k) => [k, pick(eps, k)]));
    const perInstance = new Map<string, number>();
    for (const a of before.values()) perInstance.set(a, (perInstance.get(a) ?? 0) + 1);
    for (const n of perInstance.values()) expect(Math.abs(n - 500)).toBeLessThan(500 * 0.35);

    const removed = eps[3]!.address;
    const after = eps.filter((e) => e.address !== removed);
    let moved = 0;
    for (const k of keys) {
      const now = pick(after, k);
      if (now !== before.get(k)) {
        moved++;
        expect(before.get(k), `key ${k} moved though its instance stayed`).toBe(removed);
      }
    }
    expect(moved).toBe(perInstance.get(removed));
  });

  it("loadbalance - consistent hash without a key still picks an instance", () => {
    const lb = new ConsistentHash({ key: { header: "x-user" } });
    expect(lb.pick(endpoints(3), request())).toBeDefined();
    expect(lb.pick([], request({ "x-user": "u" }))).toBeUndefined();
  });

  it("loadbalance - least loaded: of two random instances, the one with fewer calls in flight", () => {
    const lb = new LeastLoaded();
    const eps = endpoints(2);
    const busy = lb.track(eps[0]!);
    lb.track(eps[0]!);
    for (let i = 0; i < 20; i++) expect(lb.pick(eps)?.address).toBe(eps[1]!.address);
    busy(undefined);
    expect(lb.score(eps[0]!.address)).toBe(1);
  });

  it("loadbalance - a tracking balancer is told every outcome of the direct chain: at once, later, failed, and a throw of the link below", async () => {
    const told: (string | undefined)[] = [];
    const lb = new LeastLoaded();
    const track = lb.track.bind(lb);
    lb.track = (endpoint) => {
      const done = track(endpoint);
      return (headers) => {
        told.push(headers?.["x-outcome"]);
        done(headers);
      };
    };
    const eps = endpoints(1);
    const outcomes: Record<string, DirectHandler> = {
      now: () => new CallResponse({}, { "x-outcome": "now" }),
      later: () => new Later(Promise.resolve({}), (v) => new CallResponse(v, { "x-outcome": "later" }), (e) => { throw e; }),
      failed: () => new Later(Promise.reject(new RpcError(Code.UNAVAILABLE, "down", { headers: { "x-outcome": "failed" } })), (v) => new CallResponse(v, {}), (e) => { throw e; }),
      thrown: () => {
        throw new RpcError(Code.CANCELLED, "aborted before it was sent", { headers: { "x-outcome": "thrown" } });
      },
    };
    for (const [name, next] of Object.entries(outcomes)) {
      const answer = (() => {
        try {
          return settle(loadBalancerMiddleware(eps, lb).direct(next)(request()));
        } catch (e) {
          return Promise.reject(e);
        }
      })();
      await answer.catch(() => undefined);
      expect(told.at(-1), name).toBe(name);
    }
    expect(told).toHaveLength(4);
    expect(lb.score(eps[0]!.address)).toBe(0);
  });

  it("loadbalance - least loaded: an instance that sheds calls (a queue-delay hint) gets fewer of them, until the penalty fades", async () => {
    let now = 1_000_000;
    const realNow = Date.now;
    Date.now = () => now;
    try {
      const lb = new LeastLoaded({ penaltyHalfLifeMs: 100 });
      const eps = endpoints(2);
      const chain = loadBalancerMiddleware(eps, lb)((req) =>
        req.ctx.peer === eps[0]!.address
          ? Promise.reject(new RpcError(Code.RESOURCE_EXHAUSTED, "shed", { headers: { "x-queue-delay-ms": "40" } }))
          : Promise.resolve({ message: {}, headers: {} }),
      );
      const peers: string[] = [];
      for (let i = 0; i < 40; i++) {
        const req = request();
        await chain(req).catch(() => undefined);
        peers.push(req.ctx.peer!);
      }
      // After its first refusal the shedding instance scores 5 and the other 0: it is not picked again.
      expect(peers.filter((p) => p === eps[0]!.address).length).toBeLessThanOrEqual(1);
      expect(lb.score(eps[0]!.address)).toBeCloseTo(5, 5);
      now += 1000; // ten half-lives
      expect(lb.score(eps[0]!.address)).toBeLessThan(0.01);
    } finally {
      Date.now = realNow;
    }
  });

  it("loadbalance - least loaded spreads evenly when nothing is in flight, and leaves out weight 0", () => {
    const lb = new LeastLoaded();
    const eps = endpoints(3, (i) => (i === 2 ? 0 : 1));
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const a = lb.pick(eps)!.address;
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    expect(counts.has(eps[2]!.address)).toBe(false);
    expect(counts.get(eps[0]!.address)).toBeGreaterThan(800);
    expect(counts.get(eps[1]!.address)).toBeGreaterThan(800);
  });
});
