/**
 * Interop, one direction: a plain @grpc/grpc-js client built with @grpc/proto-loader from
 * test/grpc/proto/interop.proto calls a Meridian server (createServer + GrpcServerTransport;
 * its streaming methods served by a StreamDispatcher on the seam, to pin down the transport's
 * own behaviour — runtime.test.ts covers createServer's streaming handlers). Real sockets on
 * 127.0.0.1.
 */
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Code } from "meridian-rpc";
import { Observed, payloadOf, plainClient, plainUnary, startMeridianServer, until, type PlainClient, type PlainReply, type PlainRequest } from "./helpers.js";

const observed = new Observed();
let address: string;
let client: PlainClient;
let close: () => Promise<void>;

beforeAll(async () => {
  const s = await startMeridianServer(observed);
  address = s.address;
  client = plainClient(address);
  close = async () => {
    client.close();
    await s.server.close({ graceMs: 100 });
  };
});
afterAll(() => close());
beforeEach(() => observed.reset());

function md(entries: Record<string, string | Buffer>): grpc.Metadata {
  const m = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries)) m.set(k, v);
  return m;
}

/** Collects a plain readable stream: messages, then its error (if any) and status. */
function collect(stream: grpc.ClientReadableStream<PlainReply> | grpc.ClientDuplexStream<unknown, PlainReply>) {
  const messages: PlainReply[] = [];
  let headers: grpc.Metadata | undefined;
  stream.on("metadata", (m) => (headers = m));
  stream.on("data", (m: PlainReply) => messages.push(m));
  return new Promise<{ messages: PlainReply[]; headers?: grpc.Metadata; status: grpc.StatusObject; error?: grpc.ServiceError }>((resolve) => {
    let error: grpc.ServiceError | undefined;
    stream.on("error", (e: grpc.ServiceError) => (error = e));
    stream.on("status", (status) => setImmediate(() => resolve({ messages, headers, status, error })));
  });
}

describe("grpc interop - plain grpc-js client, Meridian server: unary", () => {
  it("grpc interop - unary round trip with int64, bytes and metadata both ways", async () => {
    const { err, res, headers, status } = await plainUnary(
      client,
      { text: "hello", id: "9007199254740993", size: 3 },
      md({
        "x-region-id": "cn-north",
        "x-consistency-level": "linearizable",
        "rpc-persist-trace-id": "t-1", // Kitex's HTTP/2 spelling of persistent metainfo TRACE_ID
        rpc_transit_user: "alice", // Meridian's lower-cased spelling
        "x-name-bin": Buffer.from("李明"), // UTF-8 text as binary metadata
      }),
      { deadline: Date.now() + 5000 },
    );
    expect(err).toBeNull();
    expect(res!.text).toBe("hello");
    expect(res!.id).toBe("9007199254740993");
    expect(res!.payload).toEqual(Buffer.from(payloadOf(3)));
    expect(res!.seen).toEqual([
      "RPC_PERSIST_TRACE_ID=t-1",
      "rpc_transit_user=alice",
      "x-consistency-level=linearizable",
      "x-name=李明",
      "x-region-id=cn-north",
    ]);
    // Response headers (initial metadata): the handler's, backward metainfo, the served region.
    expect(headers!.get("x-served-by")).toEqual(["meridian"]);
    expect(headers!.get("x-served-region")).toEqual(["test-region"]);
    expect(headers!.get("rpc_backward_echo")).toEqual(["hello"]);
    expect(status.code).toBe(grpc.status.OK);
  });

  it("grpc interop - the grpc-timeout deadline reaches the handler", async () => {
    const before = Date.now();
    const { err } = await plainUnary(client, { text: "d" }, new grpc.Metadata(), { deadline: before + 3000 });
    expect(err).toBeNull();
    expect(observed.deadline).toBeGreaterThan(before + 2500);
    expect(observed.deadline).toBeLessThanOrEqual(Date.now() + 3000);
    await plainUnary(client, { text: "none" });
    expect(observed.deadline).toBeUndefined();
  });

  it("grpc interop - a deadline that passes fails DEADLINE_EXCEEDED and aborts the handler", async () => {
    const t0 = Date.now();
    const { err } = await plainUnary(client, { text: "slow", delayMs: 5000 }, new grpc.Metadata(), { deadline: Date.now() + 200 });
    expect(err!.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(2000);
    await until(() => observed.aborts.length > 0, 3000, "the handler's abort");
    expect(observed.aborts).toEqual([Code.DEADLINE_EXCEEDED]);
  });

  it("grpc interop - cancelling on the client aborts the handler's signal", async () => {
    const call = client.Unary({ text: "slow", delayMs: 5000 }, md({ "x-test": "cancel" }), {}, () => {});
    const status = new Promise<grpc.StatusObject>((r) => call.on("status", r));
    await until(() => observed.headers["x-test"] === "cancel", 3000, "the call to arrive");
    call.cancel();
    expect((await status).code).toBe(grpc.status.CANCELLED);
    await until(() => observed.aborts.length > 0, 3000, "the handler's abort");
    expect(observed.aborts).toEqual([Code.CANCELLED]);
  });

  it("grpc interop - every status code reaches the client with its message", async () => {
    for (let code = 1; code <= 16; code++) {
      const { err, status } = await plainUnary(client, { text: "x", failCode: code });
      expect(status.code, Code[code]).toBe(code);
      expect(err!.details).toBe(`failed with ${Code[code]}`);
      expect(status.metadata.get("x-served-region")).toEqual(["test-region"]);
    }
  });

  it("grpc interop - a business error travels as UNKNOWN with biz-* trailers", async () => {
    const { err, status } = await plainUnary(client, { text: "biz" });
    expect(status.code).toBe(grpc.status.UNKNOWN);
    expect(err!.details).toBe("biz error 1001: out of stock");
    expect(status.metadata.get("biz-status")).toEqual(["1001"]);
    expect(status.metadata.get("biz-message")).toEqual(["out of stock"]);
    expect(JSON.parse(status.metadata.get("biz-extra")[0] as string)).toEqual({ sku: "42" });
  });

  it("grpc interop - unknown methods and bad payloads", async () => {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const call = (path: string, bytes: Buffer) =>
      new Promise<grpc.ServiceError | null>((resolve) =>
        raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, bytes, (err) => resolve(err)),
      );
    expect((await call("/grpctest.Interop/Nope", Buffer.alloc(0)))!.code).toBe(grpc.status.UNIMPLEMENTED);
    expect((await call("/grpctest.Other/Unary", Buffer.alloc(0)))!.code).toBe(grpc.status.UNIMPLEMENTED);
    // Field 1 (text) declared as a 5-byte string with 1 byte present: truncated.
    const bad = await call("/grpctest.Interop/Unary", Buffer.from([0x0a, 0x05, 0x61]));
    expect(bad!.code).toBe(grpc.status.INVALID_ARGUMENT);
    raw.close();
  });
});

describe("grpc interop - plain grpc-js client, Meridian server: streaming", () => {
  it("grpc interop - server streaming with headers and trailers", async () => {
    const stream = client.ServerStream({ text: "s", count: 20, size: 100 }, md({ "x-region-id": "eu" }));
    const { messages, headers, status } = await collect(stream);
    expect(messages.map((m) => m.seq)).toEqual([...Array(20).keys()]);
    expect(messages[0]!.payload.length).toBe(100);
    expect(messages[0]!.seen).toContain("x-region-id=eu");
    expect(headers!.get("x-served-by")).toEqual(["meridian"]);
    expect(status.code).toBe(grpc.status.OK);
    expect(status.metadata.get("x-trailer")).toEqual(["done"]);
    expect(status.metadata.get("x-count")).toEqual(["20"]);
  });

  it("grpc interop - an error mid-stream ends the stream after the replies sent before it", async () => {
    const { messages, status, error } = await collect(client.ServerStream({ text: "s", count: 10, failCode: Code.ABORTED, failAfter: 4 }));
    expect(messages.map((m) => m.seq)).toEqual([0, 1, 2, 3]);
    expect(status.code).toBe(grpc.status.ABORTED);
    expect(error!.details).toBe("failed with ABORTED");
    expect(status.metadata.get("x-trailer")).toEqual(["failed"]);
  });

  it("grpc interop - a business error mid-stream carries biz-* trailers", async () => {
    const { status } = await collect(client.ServerStream({ text: "biz", count: 3, failCode: 1, failAfter: 1 }));
    expect(status.code).toBe(grpc.status.UNKNOWN);
    expect(status.metadata.get("biz-status")).toEqual(["1001"]);
  });

  it("grpc interop - a deadline mid-stream fails DEADLINE_EXCEEDED and aborts the handler", async () => {
    const { messages, status } = await collect(client.ServerStream({ count: 100, delayMs: 50 }, new grpc.Metadata(), { deadline: Date.now() + 300 }));
    expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(messages.length).toBeGreaterThan(0);
    expect(messages.length).toBeLessThan(100);
    await until(() => observed.aborts.length > 0, 3000, "the handler's abort");
    expect(observed.aborts).toEqual([Code.DEADLINE_EXCEEDED]);
  });

  it("grpc interop - cancelling a server stream aborts the handler", async () => {
    const stream = client.ServerStream({ count: 1000, delayMs: 10 });
    const result = collect(stream);
    await until(() => observed.sent >= 3, 3000, "a few replies");
    stream.cancel();
    expect((await result).status.code).toBe(grpc.status.CANCELLED);
    await until(() => observed.aborts.length > 0, 3000, "the handler's abort");
    expect(observed.aborts).toEqual([Code.CANCELLED]);
    expect(observed.sent).toBeLessThan(1000);
  });

  it("grpc interop - client streaming", async () => {
    const reply = new Promise<{ err: grpc.ServiceError | null; res?: PlainReply }>((resolve) => {
      const call = client.ClientStream(md({ "x-region-id": "us" }), {}, (err, res) => resolve({ err, res }));
      for (let i = 0; i < 50; i++) call.write({ text: `m${i}`, id: "7" });
      call.end();
    });
    const { err, res } = await reply;
    expect(err).toBeNull();
    expect(res!.seq).toBe(50);
    expect(res!.id).toBe("7");
    expect(res!.text.split(",")).toEqual([...Array(50).keys()].map((i) => `m${i}`));
    expect(observed.headers["x-region-id"]).toBe("us");
  });

  it("grpc interop - client streaming failing with the first request's code", async () => {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = client.ClientStream(new grpc.Metadata(), {}, (e) => resolve(e));
      call.write({ text: "a", failCode: Code.RESOURCE_EXHAUSTED });
      call.end();
    });
    expect(err!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it("grpc interop - bidi streaming answers each request in turn", async () => {
    const call = client.Bidi();
    const replies: PlainReply[] = [];
    const it = (call as unknown as AsyncIterable<PlainReply>)[Symbol.asyncIterator]();
    for (let i = 0; i < 10; i++) {
      call.write({ text: `ping${i}` });
      const r = await it.next();
      replies.push(r.value as PlainReply);
    }
    call.end();
    expect((await it.next()).done).toBe(true);
    expect(replies.map((r) => `${r.text}#${r.seq}`)).toEqual([...Array(10).keys()].map((i) => `ping${i}#${i}`));
  });

  it("grpc interop - bidi failing mid-stream", async () => {
    const call = client.Bidi();
    const result = collect(call);
    call.write({ text: "one" });
    call.write({ text: "two", failCode: Code.PERMISSION_DENIED });
    call.write({ text: "three" });
    const { messages, status } = await result;
    expect(messages.map((m) => m.text)).toEqual(["one"]);
    expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it("grpc interop - a slow reader slows the Meridian server: replies ahead stay bounded", async () => {
    const stream = client.ServerStream({ count: 2000, size: 1024 });
    const it = (stream as unknown as AsyncIterable<PlainReply>)[Symbol.asyncIterator]();
    let read = 0;
    let maxAhead = 0;
    for (; read < 300; ) {
      const r = await it.next();
      if (r.done) break;
      read++;
      maxAhead = Math.max(maxAhead, observed.sent - read);
      if (read % 10 === 0) await sleep(5);
    }
    // HTTP/2 flow control (64 KiB window) plus grpc-js's buffers (16 messages each side): about
    // 100 replies of 1 KiB; without backpressure the server would have sent all 2000.
    expect(maxAhead).toBeLessThan(250);
    expect(observed.sent).toBeLessThan(600);
    stream.cancel();
  });

  it("grpc interop - a slow Meridian reader slows the plain client's writes", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    observed.readGate = () => gate;
    let reply!: Promise<grpc.ServiceError | null>;
    const call = await new Promise<grpc.ClientWritableStream<PlainRequest>>((resolve) => {
      reply = new Promise((done) => resolve(client.ClientStream(new grpc.Metadata(), {}, (e) => done(e))));
    });
    const big = "x".repeat(1024);
    let written = 0;
    let blocked = false;
    // Write, waiting for 'drain' whenever grpc-js asks to, until a drain does not come.
    while (written < 3000 && !blocked) {
      written++;
      if (!call.write({ text: big })) {
        blocked = !(await Promise.race([
          new Promise<boolean>((r) => call.once("drain", () => r(true))),
          sleep(300).then(() => false),
        ]));
      }
    }
    // The server read nothing: the client stopped far below the 3000 messages it wanted to send,
    // after grpc-js's per-call retry buffer (1 MiB by default: writes that fit in it are
    // acknowledged at once), the HTTP/2 window (64 KiB) and the buffers on both sides.
    expect(blocked).toBe(true);
    expect(written).toBeLessThan(1300);
    expect(observed.received).toBe(0);
    observed.readGate = undefined;
    release();
    call.end();
    expect(await reply).toBeNull();
    expect(observed.received).toBe(written);
  });

  it("grpc interop - the transport answers UNIMPLEMENTED for streams when no stream dispatcher is given", async () => {
    const o = new Observed();
    const s = await startMeridianServer(o, {}, { streams: false });
    const c = plainClient(s.address);
    const { status } = await collect(c.ServerStream({ count: 1 }));
    expect(status.code).toBe(grpc.status.UNIMPLEMENTED);
    c.close();
    await s.server.close({ graceMs: 0 });
  });
});
