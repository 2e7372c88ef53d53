import { MsgHdrsImpl, type Msg } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { decodeHeaders, encodeHeaders, headerBytes, NatsKey } from "./wire.js";

/** What a receiver gets for a header block: nats.js parses it, Meridian reads it. */
function roundTrip(block: Uint8Array, data = new Uint8Array(0)): ReturnType<typeof decodeHeaders> {
  return decodeHeaders({ headers: MsgHdrsImpl.decode(block), data } as unknown as Msg);
}

describe("nats headers", () => {
  it("nats headers - writes the NATS/1.0 block byte for byte, protocol keys last", () => {
    const h = encodeHeaders({ "x-region-id": "cn-north", RPC_PERSIST_USER: "李明" }, { [NatsKey.timeout]: "250" });
    const text = "NATS/1.0\r\nx-region-id: cn-north\r\nRPC_PERSIST_USER: 李明\r\nrpc-timeout: 250\r\n\r\n";
    expect(Buffer.from(h.encode()).toString("utf8")).toBe(text);
    expect(headerBytes(h)).toBe(Buffer.byteLength(text));
  });

  it("nats headers - keys keep their case; protocol keys come out separately", () => {
    const r = roundTrip(encodeHeaders({ RPC_TRANSIT_Span: "s", "x-consistency-level": "eventual" }, { [NatsKey.frame]: "open", [NatsKey.credit]: "32" }).encode());
    expect(r.headers).toEqual({ RPC_TRANSIT_Span: "s", "x-consistency-level": "eventual" });
    expect(r.frame).toBe("open");
    expect(r.credit).toBe("32");
    expect(r.code).toBe(0);
  });

  it("nats headers - what NATS cannot carry as it is goes escaped and comes back exact", () => {
    const headers = {
      "multi-line": "a\r\nb\nc",
      padded: "  x  ",
      "区域": "东部",
      "colon:key": "v",
      "": "empty key",
      [NatsKey.timeout]: "a caller's own header named like a protocol key",
      "100%": "%41 stays %41",
    };
    const block = encodeHeaders(headers, { [NatsKey.timeout]: "9" }).encode();
    const text = Buffer.from(block).toString("utf8");
    expect(text).not.toMatch(/a\r\nb/);
    expect(text).toContain("rpc-escaped: ");
    const r = roundTrip(block);
    expect(r.headers).toEqual(headers);
    expect(r.timeout).toBe("9");
  });

  it("nats headers - reads NATS's no-responders status", () => {
    const r = roundTrip(Buffer.from("NATS/1.0 503\r\n\r\n"));
    expect(r.code).toBe(503);
    expect(r.headers).toEqual({});
  });
});
