import { afterEach, describe, expect, it } from "vitest";
import { copyHeaders, settleCall, type Headers } from "./transport.js";

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
process.on("unhandledRejection", onUnhandled);
afterEach(() => {
  unhandled.length = 0;
});

/** Lets every pending promise reaction run. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

describe("settleCall", () => {
  it("settleCall - the dispatcher's result goes to answer", async () => {
    const seen: string[] = [];
    settleCall(async () => "reply", (r) => seen.push(r), () => "failed", () => seen.push("lost"));
    await settled();
    expect(seen).toEqual(["reply"]);
  });

  it("settleCall - a dispatcher that throws or rejects is answered with failed(error)", async () => {
    const seen: string[] = [];
    settleCall<string>(() => { throw new Error("sync"); }, (r) => seen.push(r), (e) => `failed: ${(e as Error).message}`, () => seen.push("lost"));
    settleCall<string>(() => Promise.reject(new Error("async")), (r) => seen.push(r), (e) => `failed: ${(e as Error).message}`, () => seen.push("lost"));
    await settled();
    expect(seen).toEqual(["failed: sync", "failed: async"]);
  });

  it("settleCall - an answer that throws, or a failed() that throws, goes to lost; nothing is left unhandled", async () => {
    const lost: string[] = [];
    settleCall(async () => "reply", () => { throw new Error("cannot write"); }, () => "failed", (e) => lost.push((e as Error).message));
    settleCall<string>(() => Promise.reject(new Error("x")), () => undefined, () => { throw new Error("cannot build"); }, (e) => lost.push((e as Error).message));
    settleCall(async () => "reply", () => { throw new Error("again"); }, () => "failed", () => { throw new Error("lost throws too"); });
    await settled();
    expect(lost).toEqual(["cannot write", "cannot build"]);
    expect(unhandled).toEqual([]);
  });
});

describe("copyHeaders", () => {
  it("copyHeaders - copies own keys into a new object, or into the one given, as spread would", () => {
    const from: Headers = { a: "1", "x-b": "2" };
    const copy = copyHeaders(from);
    expect(copy).toEqual({ a: "1", "x-b": "2" });
    expect(copy).not.toBe(from);
    copy["c"] = "3";
    expect(from).toEqual({ a: "1", "x-b": "2" });
    const into: Headers = { a: "0", z: "9" };
    expect(copyHeaders(from, into)).toBe(into);
    expect(into).toEqual({ a: "1", z: "9", "x-b": "2" });
    expect(copyHeaders(undefined)).toEqual({});
    // Inherited keys are not a header's own, as spread leaves them.
    expect(copyHeaders(Object.create({ inherited: "x" }) as Headers)).toEqual({});
  });

  it("copyHeaders - an own __proto__ key stays a key of the copy and does not become its prototype", () => {
    const from = JSON.parse('{"__proto__": "x", "a": "1"}') as Headers;
    const copy = copyHeaders(from);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(["__proto__", "a"]);
    expect(copy["__proto__"]).toBe("x");
    expect(copy).toEqual({ ...from });
  });
});
