/**
 * Interop, the other direction: a Meridian client (createClient + GrpcClientTransport for unary
 * calls; streaming calls on the transport seam, to pin down the transport's own behaviour —
 * runtime.test.ts covers createClient's streaming calls) calls a plain @grpc/grpc-js server
 * built with @grpc/proto-loader from the same .proto. Real sockets on 127.0.0.1.
 */
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BizError, Code, Metainfo, RpcError, createClient, type Client, Cancellation, type Headers } from "meridian-rpc";
import { GrpcClientTransport } from "meridian-rpc/transports/grpc";
import { Interop, Reply, Request } from "./gen/interop.js";
import { Observed, payloadOf, startPlainServer, until } from "./helpers.js";
import { openStream, type MessageStream } from "../support/message-calls.js";
import { rejection } from "../support/rejection.js";

const observed = new Observed();
let address: string;
let plain: grpc.Server;
let transport: GrpcClientTransport;
let client: Client<typeof Interop>;

beforeAll(async () => {
  ({ server: plain, address } = await startPlainServer(observed));
  transport = new GrpcClientTransport();
  await transport.warmUp([{ address }]);
  client = createClient(Interop, { transport, endpoints: [{ address }], region: "cn-north", consistency: "eventual" });
});
afterAll(async () => {
  await transport.close();
  plain.forceShutdown();
});
beforeEach(() => observed.reset());


/** Opens a streaming call on the seam. */
function open(method: keyof typeof Interop.methods, opts: { timeoutMs?: number; headers?: Headers; signal?: Cancellation } = {}): MessageStream {
  return openStream(transport, {
    service: Interop.typeName,
    method: Interop.methods[method],
    headers: opts.headers ?? {},
    deadline: opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs,
    signal: opts.signal ?? new Cancellation(),
    endpoint: { address },
  });
}

async function drain(s: MessageStream): Promise<{ replies: Reply[]; error?: RpcError }> {
  const replies: Reply[] = [];
  try {
    for await (const m of s.responses) replies.push(m as Reply);
    return { replies };
  } catch (e) {
    expect(e).toBeInstanceOf(RpcError);
    return { replies, error: e as RpcError };
  }
}

describe("grpc interop - Meridian client, plain grpc-js server: unary", () => {
  it("grpc interop - createClient round trip with region, consistency and metainfo both ways", async () => {
    const metainfo = new Metainfo().setPersistent("TRACE_ID", "t-1").setTransient("user", "alice");
    let headers: Headers = {};
    const reply = await client.unary(
      { text: "hello", id: 9007199254740993n, size: 5 },
      { metainfo, headers: { "x-name": "李明" }, onHeaders: (h) => (headers = h) },
    );
    expect(reply.text).toBe("hello");
    expect(reply.id).toBe(9007199254740993n);
    expect(reply.payload).toEqual(payloadOf(5));
    // What the plain server saw: Kitex's HTTP/2 spelling for TRACE_ID, UTF-8 as binary metadata.
    expect(reply.seen).toEqual([
      "rpc-persist-trace-id=t-1",
      "rpc_transit_user=alice",
      "x-consistency-level=eventual",
      "x-name-bin=bin:李明",
      "x-region-id=cn-north",
    ]);
    // Response headers and trailers, merged; Kitex-style backward metainfo read back.
    expect(headers["x-served-by"]).toBe("plain");
    expect(headers["x-trailer"]).toBe("done");
    expect(metainfo.getBackward("ECHO")).toBe("hello");
  });

  it("grpc interop - timeouts become grpc-timeout deadlines", async () => {
    const before = Date.now();
    await client.unary({ text: "d" }, { timeoutMs: 3000 });
    expect(observed.deadline).toBeGreaterThan(before + 2500);
    expect(observed.deadline).toBeLessThanOrEqual(Date.now() + 3100);
    await client.unary({ text: "none" });
    expect(observed.deadline).toBeUndefined();
  });

  it("grpc interop - a deadline that passes fails DEADLINE_EXCEEDED", async () => {
    const t0 = Date.now();
    const err = await rejection(client.unary({ text: "slow", delayMs: 3000 }, { timeoutMs: 200 }));
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(2000);
    await until(() => observed.aborts.length > 0, 3000, "the server to see the call end");
  });

  it("grpc interop - every status code of the server becomes an RpcError with that code", async () => {
    for (let code = 1; code <= 16; code++) {
      const err = await rejection(client.unary({ text: "x", failCode: code }));
      expect(err.code, Code[code]).toBe(code);
      expect(err.message).toBe(`failed with ${Code[code]}`);
      expect(err.headers["x-served-by"]).toBe("plain");
    }
  });

  it("grpc interop - biz-* trailers become a BizError", async () => {
    const err = await rejection(client.unary({ text: "biz" }));
    expect(err).toBeInstanceOf(BizError);
    const biz = err as BizError;
    expect(biz.bizCode).toBe(1001);
    expect(biz.bizMessage).toBe("out of stock");
    expect(biz.extra).toEqual({ sku: "42" });
  });

  it("grpc interop - aborting the call cancels it on the server", async () => {
    const controller = new AbortController();
    const p = client.unary({ text: "slow", delayMs: 5000 }, { signal: controller.signal, headers: { "x-test": "cancel" } });
    await until(() => observed.headers["x-test"] === "cancel", 3000, "the call to arrive");
    controller.abort();
    expect((await rejection(p)).code).toBe(Code.CANCELLED);
    await until(() => observed.aborts.includes("cancelled"), 3000, "the server's cancelled event");
  });

  it("grpc interop - no server: UNAVAILABLE, surely not sent", async () => {
    const t = new GrpcClientTransport({ address: "127.0.0.1:1" });
    const c = createClient(Interop, { transport: t });
    const err = await rejection(c.unary({ text: "x" }, { timeoutMs: 5000 }));
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.notSent).toBe(true);
    await t.close();
  });
});

describe("grpc interop - Meridian client, plain grpc-js server: streaming on the seam", () => {
  it("grpc interop - server streaming with headers and trailers", async () => {
    const s = open("serverStream", { headers: { "x-region-id": "eu" }, timeoutMs: 5000 });
    await s.send(Request.create({ text: "s", count: 25, size: 10, id: 5n }));
    await s.closeSend();
    const { replies, error } = await drain(s);
    expect(error).toBeUndefined();
    expect(replies.map((r) => r.seq)).toEqual([...Array(25).keys()]);
    expect(replies[0]!.id).toBe(5n);
    expect(replies[0]!.payload).toEqual(payloadOf(10));
    expect(replies[0]!.seen).toContain("x-region-id=eu");
    expect((await s.headers)["x-served-by"]).toBe("plain");
    expect(await s.trailers).toEqual({ "x-trailer": "done" });
    expect(observed.deadline).toBeGreaterThan(Date.now() + 3000);
  });

  it("grpc interop - an error mid-stream: replies sent before it, then the RpcError; status in the trailers", async () => {
    const s = open("serverStream");
    await s.send(Request.create({ count: 10, failCode: Code.DATA_LOSS, failAfter: 3 }));
    await s.closeSend();
    const { replies, error } = await drain(s);
    expect(replies.map((r) => r.seq)).toEqual([0, 1, 2]);
    expect(error!.code).toBe(Code.DATA_LOSS);
    expect(error!.message).toBe("failed with DATA_LOSS");
    expect(await s.trailers).toEqual({ "rpc-status": String(Code.DATA_LOSS), "rpc-message": "failed with DATA_LOSS" });
    await expect(s.send(Request.create({}))).rejects.toBe(error);
  });

  it("grpc interop - a business error mid-stream becomes a BizError", async () => {
    const s = open("serverStream");
    await s.send(Request.create({ text: "biz", count: 5, failCode: 1, failAfter: 2 }));
    await s.closeSend();
    const { replies, error } = await drain(s);
    expect(replies.length).toBe(2);
    expect(error).toBeInstanceOf(BizError);
    expect((error as BizError).bizCode).toBe(1001);
  });

  it("grpc interop - a deadline mid-stream fails DEADLINE_EXCEEDED", async () => {
    const s = open("serverStream", { timeoutMs: 300 });
    await s.send(Request.create({ count: 100, delayMs: 50 }));
    await s.closeSend();
    const { replies, error } = await drain(s);
    expect(error!.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(replies.length).toBeGreaterThan(0);
    expect(replies.length).toBeLessThan(100);
  });

  it("grpc interop - cancel() and the call's signal cancel the stream on the server", async () => {
    for (const how of ["cancel", "signal", "break"] as const) {
      observed.reset();
      const signal = new Cancellation();
      const s = open("serverStream", { signal });
      await s.send(Request.create({ count: 1000, delayMs: 5 }));
      await s.closeSend();
      let n = 0;
      let error: unknown;
      try {
        for await (const _ of s.responses) {
          if (++n === 3) {
            if (how === "cancel") s.cancel();
            else if (how === "signal") signal.abort(new RpcError(Code.CANCELLED, "stop"));
            else break;
          }
        }
      } catch (e) {
        error = e;
      }
      if (how === "break") expect(error).toBeUndefined();
      else expect((error as RpcError).code, how).toBe(Code.CANCELLED);
      await until(() => observed.aborts.includes("cancelled"), 3000, `the server to see the ${how}`);
      expect((await s.trailers)["rpc-status"]).toBe(String(Code.CANCELLED));
      await expect(s.send(Request.create({}))).rejects.toMatchObject({ code: Code.CANCELLED });
    }
  });

  it("grpc interop - client streaming", async () => {
    const s = open("clientStream", { headers: { "x-region-id": "us" } });
    for (let i = 0; i < 40; i++) await s.send(Request.create({ text: `m${i}`, id: 3n }));
    await s.closeSend();
    const { replies, error } = await drain(s);
    expect(error).toBeUndefined();
    expect(replies.length).toBe(1);
    expect(replies[0]!.seq).toBe(40);
    expect(replies[0]!.id).toBe(3n);
    expect(observed.headers["x-region-id"]).toBe("us");
    await expect(s.send(Request.create({}))).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION });
  });

  it("grpc interop - bidi streaming, ping-pong and failure", async () => {
    const s = open("bidi");
    const it = s.responses[Symbol.asyncIterator]();
    for (let i = 0; i < 10; i++) {
      await s.send(Request.create({ text: `ping${i}` }));
      const r = await it.next();
      expect(r.value).toMatchObject({ text: `ping${i}`, seq: i });
    }
    await s.closeSend();
    expect((await it.next()).done).toBe(true);

    const f = open("bidi");
    await f.send(Request.create({ text: "a" }));
    await f.send(Request.create({ text: "b", failCode: Code.OUT_OF_RANGE }));
    const { replies, error } = await drain(f);
    expect(replies.map((r) => r.text)).toEqual(["a"]);
    expect(error!.code).toBe(Code.OUT_OF_RANGE);
  });

  it("grpc interop - a slow Meridian reader slows the plain server: replies ahead stay bounded", async () => {
    const s = open("serverStream");
    await s.send(Request.create({ count: 2000, size: 1024 }));
    await s.closeSend();
    let read = 0;
    let maxAhead = 0;
    for await (const _ of s.responses) {
      read++;
      maxAhead = Math.max(maxAhead, observed.sent - read);
      if (read % 10 === 0) await sleep(5);
      if (read === 300) break;
    }
    // HTTP/2's window (64 KiB) and the buffers on both sides (16 messages each): ~100 replies.
    expect(maxAhead).toBeLessThan(250);
    expect(observed.sent).toBeLessThan(600);
  });

  it("grpc interop - a slow plain reader slows Meridian's send()", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    observed.readGate = () => gate;
    const s = open("clientStream");
    const big = "x".repeat(1024);
    let sent = 0;
    let blocked = false;
    while (sent < 3000 && !blocked) {
      const p = s.send(Request.create({ text: big }));
      sent++;
      blocked = (await Promise.race([p.then(() => false), sleep(300).then(() => true)])) === true;
    }
    // The server reads nothing: send() stops resolving after grpc-js's retry buffer (64 KiB as
    // Meridian configures it), HTTP/2's window (64 KiB) and the buffers (16 messages each side).
    expect(blocked).toBe(true);
    expect(sent).toBeLessThan(300);
    expect(observed.received).toBeLessThanOrEqual(1);
    release();
    observed.readGate = undefined;
    await s.closeSend();
    const { replies, error } = await drain(s);
    expect(error).toBeUndefined();
    expect(replies[0]!.seq).toBe(sent);
  });
});
