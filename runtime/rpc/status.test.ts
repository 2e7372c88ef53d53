import { describe, expect, it } from "vitest";
import { BizError, Code, RpcError } from "./errors.js";
import { MAX_STATUS_MESSAGE, clipText, statusFromHeaders, statusToHeaders } from "./status.js";

describe("status", () => {
  it("status - an RpcError round-trips through headers", () => {
    const headers = statusToHeaders(new RpcError(Code.NOT_FOUND, "gone"), { keep: "me" });
    expect(headers).toEqual({ keep: "me", "rpc-status": "5", "rpc-message": "gone" });
    const err = statusFromHeaders(headers);
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toMatchObject({ code: Code.NOT_FOUND, message: "gone", headers });
  });

  it("status - a BizError round-trips with its code, message and extra", () => {
    const headers = statusToHeaders(new BizError(42, "denied", { k: "v" }), {});
    expect(headers).toMatchObject({ "biz-status": "42", "biz-message": "denied", "biz-extra": '{"k":"v"}' });
    const err = statusFromHeaders(headers);
    expect(err).toBeInstanceOf(BizError);
    expect(err).toMatchObject({ bizCode: 42, bizMessage: "denied", extra: { k: "v" }, code: Code.UNKNOWN });
  });

  it("status - an error the server marked refused (rpc-refused) was not sent; any other may have been", () => {
    expect(statusFromHeaders({ "rpc-status": "8", "rpc-message": "shed", "rpc-refused": "1" })).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, notSent: true });
    expect(statusFromHeaders({ "rpc-status": "8", "rpc-message": "quota" })).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, notSent: false });
  });

  it("status - no status or status 0 is no error; unknown codes and bad extra degrade safely", () => {
    expect(statusFromHeaders({})).toBeUndefined();
    expect(statusFromHeaders({ "rpc-status": "0" })).toBeUndefined();
    expect(statusFromHeaders({ "rpc-status": "99" })?.code).toBe(Code.UNKNOWN);
    expect(statusFromHeaders({ "rpc-status": "abc" })?.code).toBe(Code.UNKNOWN);
    expect(statusFromHeaders({ "biz-status": "1", "biz-extra": "{not json" })).toMatchObject({ extra: {} });
    expect(statusFromHeaders({ "biz-status": "1", "biz-extra": '{"a":1,"b":"x","__proto__":"y"}' })).toMatchObject({ extra: { b: "x" } });
  });

  it("status - messages are cut to MAX_STATUS_MESSAGE with a note, never inside a surrogate pair", () => {
    const long = "x".repeat(MAX_STATUS_MESSAGE * 10);
    const h = statusToHeaders(new BizError(1, long), {});
    for (const key of ["rpc-message", "biz-message"]) {
      expect(h[key]!.length).toBeLessThanOrEqual(MAX_STATUS_MESSAGE);
      expect(h[key]).toMatch(/more characters\)$/);
    }
    expect(statusToHeaders(new RpcError(Code.INTERNAL, "short"), {})["rpc-message"]).toBe("short");
    expect(clipText("abc", 3)).toBe("abc");
    for (let max = 30; max < 40; max++) {
      const cut = clipText("\u{1F600}".repeat(40), max);
      expect(cut.length).toBeLessThanOrEqual(max);
      expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
      expect(cut).toMatch(/^(\u{1F600})*\.\.\. \(\d+ more characters\)$/u);
    }
  });
});
