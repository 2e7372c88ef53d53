import { describe, expect, it } from "vitest";
import { BizError, Code, RpcError } from "./errors.js";

describe("errors", () => {
  it("errors - an RpcError captures no stack frames, and the process's stack trace limit is left as it was", () => {
    const limit = Error.stackTraceLimit;
    const cause = new Error("socket closed");
    const err = new RpcError(Code.UNAVAILABLE, "connection lost", { cause });
    expect(err.stack).toBe("RpcError: connection lost");
    expect(err).toBeInstanceOf(Error);
    expect(err.cause).toBe(cause);
    expect(cause.stack?.split("\n").length).toBeGreaterThan(1);
    expect(new BizError(7, "no such user").stack).toBe("BizError: biz error 7: no such user");
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error("after").stack?.split("\n").length).toBeGreaterThan(1);
  });

  it("errors - a message that cannot be made a string throws before the limit is touched", () => {
    const limit = Error.stackTraceLimit;
    const bad = {
      toString(): string {
        throw new TypeError("no text");
      },
    };
    expect(() => new RpcError(Code.INTERNAL, bad as unknown as string)).toThrow("no text");
    expect(Error.stackTraceLimit).toBe(limit);
    // From JavaScript, no message is an empty one, as for any Error.
    expect(new RpcError(Code.INTERNAL, undefined as unknown as string).message).toBe("");
  });

  it("errors - with a stack trace limit that cannot be changed (frozen intrinsics), an RpcError is made with its frames", () => {
    const own = Object.getOwnPropertyDescriptor(Error, "stackTraceLimit")!;
    Object.defineProperty(Error, "stackTraceLimit", { value: 10, writable: false, configurable: true });
    try {
      const err = new RpcError(Code.UNAVAILABLE, "frozen");
      expect(err.stack?.split("\n")[0]).toBe("RpcError: frozen");
      expect(err.stack?.split("\n").length).toBeGreaterThan(1);
      expect(Error.stackTraceLimit).toBe(10);
    } finally {
      Object.defineProperty(Error, "stackTraceLimit", own);
    }
  });

  it("errors - Error.captureStackTrace gives an RpcError its frames where they are wanted", () => {
    const err = new RpcError(Code.INTERNAL, "here");
    Error.captureStackTrace(err);
    expect(err.stack?.split("\n")[0]).toBe("RpcError: here");
    expect(err.stack?.split("\n").length).toBeGreaterThan(1);
  });
});
