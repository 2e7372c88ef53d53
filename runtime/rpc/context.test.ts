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
});
