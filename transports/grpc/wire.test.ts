import { Metadata } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { BizError, Code, RpcError, Metainfo } from "../../runtime/api.js";
import { fromMetadata, grpcPath, headerName, metadataKey, statusError, statusOf, toMetadata } from "./wire.js";

describe("grpc headers - metadata mapping", () => {
  it("grpc headers - names are lower-cased; Kitex-style metainfo takes Kitex's HTTP/2 form", () => {
    expect(metadataKey("X-Region-Id")).toBe("x-region-id");
    expect(metadataKey("RPC_PERSIST_TRACE_ID")).toBe("rpc-persist-trace-id");
    expect(metadataKey("RPC_TRANSIT_K8S_NS")).toBe("rpc-transit-k8s-ns");
    expect(metadataKey("rpc_backward_ECHO")).toBe("rpc-backward-echo");
    expect(metadataKey("RPC_TRANSIT_user")).toBe("rpc_transit_user");
    expect(metadataKey("RPC_TRANSIT_userId")).toBe("rpc_transit_userid");
    expect(headerName("rpc-persist-trace-id")).toBe("RPC_PERSIST_TRACE_ID");
    expect(headerName("rpc_persist_user")).toBe("rpc_persist_user");
    expect(headerName("x-region-id")).toBe("x-region-id");
  });

  it("grpc headers - metainfo survives the round trip in both spellings", () => {
    const mi = new Metainfo().setPersistent("TRACE_ID", "t").setTransient("user", "u").setBackward("ECHO", "e");
    const back = fromMetadata(toMetadata(mi.writeHeaders({}, "persistent", "transient", "backward")));
    const read = new Metainfo().readHeaders(back, "persistent", "transient", "backward");
    expect(read.getPersistent("TRACE_ID")).toBe("t");
    expect(read.getTransient("user")).toBe("u");
    expect(read.getBackward("ECHO")).toBe("e");
  });

  it("grpc headers - non-ASCII values travel as -bin metadata and come back as text", () => {
    const md = toMetadata({ "x-name": "李明", "x-plain": "ascii ok" });
    expect(md.get("x-name")).toEqual([]);
    expect(md.get("x-name-bin")).toEqual([Buffer.from("李明")]);
    expect(md.get("x-plain")).toEqual(["ascii ok"]);
    expect(fromMetadata(md)).toEqual({ "x-name": "李明", "x-plain": "ascii ok" });
  });

  it("grpc headers - binary metadata that is not UTF-8 keeps its key, base64-encoded; repeated values join", () => {
    const md = new Metadata();
    md.set("x-raw-bin", Buffer.from([0xff, 0xfe]));
    md.add("x-multi", "a");
    md.add("x-multi", "b");
    expect(fromMetadata(md)).toEqual({ "x-raw-bin": "//4=", "x-multi": "a, b" });
  });

  it("grpc headers - transport keys are neither sent nor reported", () => {
    const md = toMetadata({ "grpc-timeout": "1S", "content-type": "x", "user-agent": "me", te: "trailers", "x-ok": "1" });
    expect(Object.keys(md.getMap())).toEqual(["x-ok"]);
    const incoming = new Metadata();
    incoming.set("grpc-accept-encoding", "gzip");
    incoming.set("user-agent", "grpc-node-js/1.14");
    incoming.set("date", "now");
    incoming.set("x-ok", "1");
    expect(fromMetadata(incoming)).toEqual({ "x-ok": "1" });
  });

  it("grpc headers - a name that cannot be a metadata key is an INVALID_ARGUMENT naming it", () => {
    expect(() => toMetadata({ "bad name": "x" })).toThrow(RpcError);
    expect(() => toMetadata({ "bad name": "x" })).toThrow(/"bad name"/);
    expect(toMetadata({ "bad name": "x", "rpc-status": "3" }, new Metadata(), (n) => n !== "rpc-status").getMap()).toEqual({ "rpc-status": "3" });
  });
});

describe("grpc headers - status", () => {
  it("grpc headers - rpc-status maps one to one onto gRPC codes", () => {
    expect(statusOf({})).toBe(Code.OK);
    expect(statusOf({ "rpc-status": "0" })).toBe(Code.OK);
    for (let c = 1; c <= 16; c++) expect(statusOf({ "rpc-status": String(c) })).toBe(c);
    expect(statusOf({ "rpc-status": "99" })).toBe(Code.UNKNOWN);
    expect(statusOf({ "rpc-status": "x" })).toBe(Code.UNKNOWN);
  });

  it("grpc headers - a failed status becomes an RpcError, or a BizError with biz-* trailers", () => {
    const err = statusError({ code: 5, details: "missing" }, { "x-served-region": "eu" });
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toMatchObject({ code: Code.NOT_FOUND, message: "missing" });
    expect(err.headers).toEqual({ "x-served-region": "eu", "rpc-status": "5", "rpc-message": "missing" });
    const biz = statusError({ code: 13, details: "kitex says internal" }, { "biz-status": "7", "biz-message": "no", "biz-extra": '{"a":"b"}' });
    expect(biz).toBeInstanceOf(BizError);
    expect(biz).toMatchObject({ bizCode: 7, bizMessage: "no", extra: { a: "b" } });
    expect(statusError({ code: 42 as never, details: "?" }, {}).code).toBe(Code.UNKNOWN);
  });

  it("grpc headers - the path of a method", () => {
    expect(grpcPath("feed.FeedService", "GetFeed")).toBe("/feed.FeedService/GetFeed");
  });
});
