import { describe, expect, it } from "vitest";
import { Code, RpcError } from "./errors.js";
import { Cancellation, onAbort } from "./signal.js";

describe("signal", () => {
  it("signal - listeners run once on abort, removed ones never, duplicates once", () => {
    const c = new Cancellation();
    const calls: string[] = [];
    const f = () => calls.push("f");
    const g = { handleEvent: () => calls.push("g") };
    const h = () => calls.push("h");
    c.addEventListener("abort", f);
    c.addEventListener("abort", f);
    c.addEventListener("abort", g);
    c.addEventListener("abort", h);
    c.removeEventListener("abort", h);
    const reason = new RpcError(Code.CANCELLED, "stop");
    c.abort(reason);
    c.abort(new RpcError(Code.INTERNAL, "again"));
    expect(calls).toEqual(["f", "g"]);
    expect([c.aborted, c.reason]).toEqual([true, reason]);
    c.addEventListener("abort", h);
    expect(calls, "nothing runs for a listener added after the abort").toEqual(["f", "g"]);
  });

  it("signal - removing a listener from the end, the middle, the start, or one never added, leaves the others in order", () => {
    const c = new Cancellation();
    const calls: string[] = [];
    const make = (name: string) => () => calls.push(name);
    const [a, b, d, e, x] = ["a", "b", "d", "e", "x"].map(make) as [() => number, () => number, () => number, () => number, () => number];
    c.removeEventListener("abort", x); // nothing added yet
    for (const l of [a, b, d, e]) c.addEventListener("abort", l);
    c.removeEventListener("abort", e); // the end
    c.removeEventListener("abort", x); // never added
    c.removeEventListener("abort", b); // the middle
    c.removeEventListener("abort", a); // the start
    c.addEventListener("abort", a);
    c.abort(new RpcError(Code.CANCELLED, "stop"));
    expect(calls).toEqual(["d", "a"]);
  });

  it("signal - toAbortSignal follows the cancellation, before or after the abort", () => {
    const before = new Cancellation();
    const s = before.toAbortSignal();
    expect(s.aborted).toBe(false);
    before.abort("r1");
    expect([s.aborted, s.reason]).toEqual([true, "r1"]);
    const after = new Cancellation();
    after.abort("r2");
    expect(after.toAbortSignal().reason).toBe("r2");
  });

  it("signal - onAbort works on AbortSignals and Cancellations, and unsubscribes", () => {
    const seen: unknown[] = [];
    const ac = new AbortController();
    const c = new Cancellation();
    onAbort(ac.signal, (r) => seen.push(r));
    const off = onAbort(c, (r) => seen.push(r));
    off();
    ac.abort("a");
    c.abort("c");
    expect(seen).toEqual(["a"]);
  });
});
