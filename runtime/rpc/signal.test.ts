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

  it("signal - the first listener is kept apart: order, duplicates, removal and a throwing one", async () => {
    // "+x" adds listener x, "-x" removes it; then the abort: who ran, in order.
    const run = (ops: string[]): string[] => {
      const c = new Cancellation();
      const ran: string[] = [];
      const listeners = new Map<string, () => void>();
      const listener = (name: string) => listeners.get(name) ?? listeners.set(name, () => ran.push(name)).get(name)!;
      for (const op of ops) {
        if (op.startsWith("+")) c.addEventListener("abort", listener(op.slice(1)));
        else c.removeEventListener("abort", listener(op.slice(1)));
      }
      c.abort("stop");
      return ran;
    };
    // The first one removed while others wait: one added after it runs after them.
    expect(run(["+a", "+a", "+b", "-a", "+d", "+a"])).toEqual(["b", "d", "a"]);
    // Alone, removed (twice), then another alone, added twice.
    expect(run(["+a", "-a", "-a", "+b", "+b"])).toEqual(["b"]);
    // A listener already in the rest is not taken for the first.
    expect(run(["+a", "+b", "-a", "+b", "+a"])).toEqual(["b", "a"]);
    // A first listener that throws: the others still run, the abort still happens, the error is reported.
    const calls: string[] = [];
    const c3 = new Cancellation();
    const thrown: unknown[] = [];
    const onError = (e: unknown) => thrown.push(e);
    process.on("uncaughtException", onError);
    try {
      c3.addEventListener("abort", () => {
        throw new Error("listener failed");
      });
      c3.addEventListener("abort", () => calls.push("b"));
      c3.abort("stop");
      expect([calls, c3.aborted]).toEqual([["b"], true]);
      await new Promise((r) => setTimeout(r, 10));
    } finally {
      process.off("uncaughtException", onError);
    }
    expect(thrown.map((e) => (e as Error).message)).toEqual(["listener failed"]);
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
