import { describe, expect, it } from "vitest";
import { CallContext, ContextValues, createContextKey } from "./context.js";
import type { MethodDescriptor, ServiceDescriptor } from "./descriptors.js";
import { Code, RpcError } from "./errors.js";
import { Metainfo } from "./metainfo.js";

const method = { name: "M", kind: "unary", idempotency: "IDEMPOTENT" } as unknown as MethodDescriptor;
const service: ServiceDescriptor = { typeName: "t.S", methods: { m: method } };
const ctx = () => new CallContext({ side: "client", service, method, headers: {}, metainfo: new Metainfo(), values: new ContextValues() });

describe("context", () => {
  it("context - keys are distinct even with equal descriptions and defaults", () => {
    const a = createContextKey(0, { description: "n" });
    const b = createContextKey(0, { description: "n" });
    const v = new ContextValues().set(a, 1);
    expect([v.get(a), v.get(b), v.has(a), v.has(b)]).toEqual([1, 0, true, false]);
    expect(v.delete(a).get(a)).toBe(0);
  });

  it("context - a child reads through to its parent and shadows it without changing it", () => {
    const k = createContextKey("default");
    const parent = new ContextValues().set(k, "parent");
    const child = new ContextValues(parent);
    expect(child.get(k)).toBe("parent");
    child.set(k, "child");
    expect([child.get(k), parent.get(k)]).toEqual(["child", "parent"]);
  });

  it("context - expireAt aborts with DEADLINE_EXCEEDED, keeps the earlier deadline, and dispose disarms it", async () => {
    const c = ctx();
    c.expireAt(Date.now() + 5);
    c.expireAt(Date.now() + 10_000);
    expect(c.timeLeft()).toBeLessThanOrEqual(5);
    await new Promise((r) => setTimeout(r, 15));
    expect((c.signal.reason as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);

    const d = ctx();
    d.expireAt(Date.now() + 5);
    expect(d.cancellation.aborted, "following the cancellation arms the deadline").toBe(false);
    d.dispose();
    await new Promise((r) => setTimeout(r, 15));
    expect(d.signal.aborted).toBe(false);
  });

  it("context - a fork aborts with its parent, but aborting the fork leaves the parent running", () => {
    const parent = ctx();
    const a = parent.fork(2);
    const b = parent.fork(3);
    expect([a.attempt, b.attempt, a.metainfo === parent.metainfo, a.values === parent.values]).toEqual([2, 3, true, true]);
    a.abort(new RpcError(Code.CANCELLED, "lost"));
    expect([a.signal.aborted, parent.signal.aborted, b.signal.aborted]).toEqual([true, false, false]);
    parent.abort(new RpcError(Code.DEADLINE_EXCEEDED, "over"));
    expect((b.signal.reason as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it("context - metainfo, values and response headers are made on first use; a server's metainfo from its request headers then", () => {
    const headers: Record<string, string> = { "rpc_transit_tenant": "t1", "rpc_persist_trace": "x" };
    const server = new CallContext({ side: "server", service, method, headers });
    expect(server.metainfoIfMade).toBeUndefined();
    // Read when first asked for, from the headers as they are then.
    headers["rpc_transit_late"] = "l";
    expect([server.metainfo.getTransient("tenant"), server.metainfo.getTransient("late"), server.metainfo.getPersistent("trace")]).toEqual(["t1", "l", "x"]);
    expect(server.metainfoIfMade).toBe(server.metainfo);

    const client = new CallContext({ side: "client", service, method, headers });
    expect(client.metainfo.getTransient("tenant")).toBeUndefined();
    expect(client.responseHeaders).toBe(client.responseHeaders);
    const k = createContextKey(0);
    client.values.set(k, 1);
    expect(client.values.get(k)).toBe(1);
    // A fork shares what its parent made.
    expect(client.fork(2).values.get(k)).toBe(1);
  });
});
