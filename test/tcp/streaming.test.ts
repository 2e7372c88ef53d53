/**
 * Streaming on the TCP transport, over 127.0.0.1 (the shared suite runs in test/conformance/):
 * what only TCP has: the TTHeader Streaming frames
 * on the wire, per-stream credit on a shared connection, a peer that breaks flow control, a
 * server killed or a client gone mid-stream, graceful shutdown.
 */
import { once } from "node:events";
import { createServer as createNetServer, connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { Writer } from "meridian-rpc/runtime";
import { type MethodDescriptor, Code, RpcError, Cancellation } from "meridian-rpc";
import type { CallSignal, IncomingStream, StreamDispatcher } from "meridian-rpc/transport";
import { STREAM_INITIAL_WINDOW, TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { HeaderFlags, IntKey, ProtocolId, StrKey, StreamFrameType } from "../../transports/tcp/wire.js";
import {
  FrameHead,
  FrameSplitter,
  beginFrame,
  endFrame,
  endHeader,
  frameLimits,
  parseFrame,
  writeStreamInfo,
  writeStringInfo,
} from "../../transports/tcp/wire.js";
import { Ping } from "../../bench/codec/gen/feed.js";
import { EchoRequest, StreamService } from "../rpc/gen/echo.js";
import { drain } from "../conformance/streaming-suite.js";
import { SERVICE, client, endlessTicks, errorReply, startServer, until } from "./helpers.js";
import { openStream as messageStream, unaryCall, type MessageStream } from "../support/message-calls.js";
import { tsxChild } from "../support/processes.js";


/** bench.Echo/Ticks: a Ping in, Pings out (what `endlessTicks` serves). */
const Ticks: MethodDescriptor<typeof Ping, typeof Ping> = {
  name: "Ticks",
  kind: "server_streaming",
  input: Ping,
  output: Ping,
  idempotency: "NO_SIDE_EFFECTS",
};

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function serve(streams: StreamDispatcher, options: ConstructorParameters<typeof TcpServerTransport>[0] = {}) {
  const s = await startServer(async () => errorReply(Code.UNIMPLEMENTED, "streams only"), options, streams);
  cleanup.push(() => s.server.close(0));
  return s;
}

function open(address: string): TcpClientTransport {
  const c = client(address);
  cleanup.push(() => c.close());
  return c;
}

/** Opens a stream of `method` (default Ticks) on `c`. */
function openStream(c: TcpClientTransport, opts: { method?: MethodDescriptor; timeoutMs?: number; signal?: CallSignal; service?: string } = {}): MessageStream {
  return messageStream(c, {
    service: opts.service ?? SERVICE,
    method: opts.method ?? Ticks,
    headers: { "x-region-id": "cn-north" },
    deadline: opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs,
    signal: opts.signal ?? new Cancellation(),
    endpoint: undefined,
  });
}

const ping = (seq: number) => (w: Writer) => Ping.encodeTo(Ping.create({ seq: BigInt(seq) }), w);

/** A streaming frame written by hand, for a raw peer. */
function frame(sid: number, type: number, opts: { headers?: Record<string, string>; service?: string; method?: string; payload?: Uint8Array } = {}): Buffer {
  const limits = frameLimits();
  const w = new Writer(4096);
  const mark = beginFrame(w, sid, HeaderFlags.Streaming, ProtocolId.ProtobufStruct);
  let count = writeStringInfo(w, opts.headers, opts.service === undefined ? undefined : StrKey.service, opts.service);
  count += writeStreamInfo(w, type, opts.method);
  endHeader(w, mark, count, limits);
  if (opts.payload !== undefined) w.raw(opts.payload);
  endFrame(w, mark, limits);
  return Buffer.from(w.finish());
}

/** Parses every frame in `bytes` into plain records. */
function frames(bytes: Buffer): { head: FrameHead; payload: Buffer }[] {
  const out: { head: FrameHead; payload: Buffer }[] = [];
  const splitter = new FrameSplitter(1 << 20, (buf, start, end) => {
    const head = parseFrame(buf, start, end, frameLimits(), new FrameHead());
    out.push({ head, payload: buf.subarray(head.payloadStart, end) });
  });
  splitter.push(bytes);
  return out;
}

describe("tcp streaming - the wire", () => {
  it("tcp streaming - frames carry the Streaming flag, the stream id, protocol 0x11 and their frame type", async () => {
    const got: Buffer[] = [];
    const server = createNetServer((s) => s.on("data", (d: Buffer) => got.push(d)));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanup.push(() => new Promise((r) => server.close(r)));
    const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
    const c = open(address);
    const s = openStream(c, { method: StreamService.methods.chat, service: StreamService.typeName, timeoutMs: 5000 });
    await s.send(EchoRequest.create({ text: "a" }));
    await s.send(EchoRequest.create({ text: "b" }));
    await s.closeSend();
    s.cancel();
    await until(() => frames(Buffer.concat(got)).length === 5, 2000, "five frames");
    const fs = frames(Buffer.concat(got));
    const sid = fs[0]!.head.seqId;
    expect(sid).toBeGreaterThan(0);
    for (const f of fs) {
      expect(f.head.flags & HeaderFlags.Streaming).toBe(HeaderFlags.Streaming);
      expect(f.head.protocolId).toBe(ProtocolId.ProtobufStruct);
      expect(f.head.seqId).toBe(sid);
    }
    expect(fs.map((f) => f.head.frameType)).toEqual([
      StreamFrameType.Header,
      StreamFrameType.Data,
      StreamFrameType.Data,
      StreamFrameType.Trailer,
      StreamFrameType.Rst,
    ]);
    const [header, d1, d2, , rst] = fs;
    expect(header!.head.service).toBe("rpctest.StreamService");
    expect(header!.head.intInfo?.[IntKey.ToMethod]).toBe("Chat");
    expect(header!.head.timeoutMs).toBeGreaterThan(4000);
    expect(header!.head.timeoutMs).toBeLessThanOrEqual(5000);
    expect(header!.head.headers["x-region-id"]).toBe("cn-north");
    expect(EchoRequest.decode(d1!.payload).text).toBe("a");
    expect(EchoRequest.decode(d2!.payload).text).toBe("b");
    expect(rst!.head.headers["rpc-status"]).toBe(String(Code.CANCELLED));
  });

  it("tcp streaming - a peer that sends past its credit has its stream reset with RESOURCE_EXHAUSTED", async () => {
    let seen: IncomingStream | undefined;
    const { address } = await serve(async (stream) => {
      seen = stream;
      // Never reads: the client's credit is all it may send.
      await new Promise<void>((r) => stream.signal.addEventListener("abort", () => r()));
      return {};
    });
    const [host, port] = address.split(":");
    const raw: Socket = connect(Number(port), host!);
    cleanup.push(() => void raw.destroy());
    await once(raw, "connect");
    const got: Buffer[] = [];
    raw.on("data", (d: Buffer) => got.push(d));
    const body = Ping.encode(Ping.create({ seq: 1n }));
    raw.write(frame(1, StreamFrameType.Header, { service: SERVICE, method: "Ticks" }));
    for (let i = 0; i < STREAM_INITIAL_WINDOW + 5; i++) raw.write(frame(1, StreamFrameType.Data, { payload: body }));
    await until(() => frames(Buffer.concat(got)).some((f) => f.head.frameType === StreamFrameType.Rst), 2000, "an rst frame");
    const rst = frames(Buffer.concat(got)).find((f) => f.head.frameType === StreamFrameType.Rst)!;
    expect(rst.head.seqId).toBe(1);
    expect(rst.head.headers["rpc-status"]).toBe(String(Code.RESOURCE_EXHAUSTED));
    expect(seen?.signal.aborted).toBe(true);
    expect((seen?.signal.reason as RpcError).code).toBe(Code.RESOURCE_EXHAUSTED);
  });
});

describe("tcp streaming - flow control on a shared connection", () => {
  it("tcp streaming - a consumer that does not read: the server's sends stop at the window and resume with credit", async () => {
    let sent = 0;
    const { address } = await serve(async (stream) => {
      for (let i = 0; i < 10_000 && !stream.signal.aborted; i++) {
        await stream.send(ping(i));
        sent++;
      }
      return {};
    });
    const c = open(address);
    const s = openStream(c);
    await s.send(Ping.create());
    await s.closeSend();
    await until(() => sent >= STREAM_INITIAL_WINDOW, 2000, "the first window");
    await sleep(100);
    // The client holds exactly what it granted; the server waits for credit instead of queueing.
    expect(sent).toBe(STREAM_INITIAL_WINDOW);
    const it = s.responses[Symbol.asyncIterator]();
    for (let i = 0; i < STREAM_INITIAL_WINDOW / 2; i++) expect(((await it.next()).value as Ping).seq).toBe(BigInt(i));
    // Half a window taken: one window frame grants it back, in one batch.
    await until(() => sent >= STREAM_INITIAL_WINDOW * 1.5, 2000, "credit to come back");
    await sleep(100);
    expect(sent).toBe(STREAM_INITIAL_WINDOW * 1.5);
    s.cancel();
  });

  it("tcp streaming - one stalled stream does not hold back other streams or unary calls on its connection", async () => {
    const { server, address } = await startServer(async (call) => ({ headers: {}, encode: (w) => w.raw(call.payload) }), {}, async (stream) => {
      const first = await stream.requests[Symbol.asyncIterator]().next();
      const n = first.done === true ? 0 : Number(Ping.decode(first.value).seq);
      for (let i = 0; i < n && !stream.signal.aborted; i++) await stream.send(ping(i));
      return {};
    });
    cleanup.push(() => server.close(0));
    const c = open(address);
    const stalled = openStream(c);
    await stalled.send(Ping.create({ seq: 100_000n }));
    await stalled.closeSend();
    await sleep(50); // it fills its window and stalls
    const others = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const s = openStream(c);
        await s.send(Ping.create({ seq: 200n }));
        await s.closeSend();
        let n = 0;
        for await (const _ of s.responses) n++;
        return n;
      }),
    );
    expect(others).toEqual(Array.from({ length: 20 }, () => 200));
    const unary = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        unaryCall(c, {
          service: SERVICE,
          method: { ...Ticks, kind: "unary", name: "Echo" },
          message: Ping.create({ seq: BigInt(i) }),
          headers: {},
          deadline: Date.now() + 2000,
          signal: new Cancellation(),
          endpoint: undefined,
        }),
      ),
    );
    expect(unary.map((r) => (r.message as Ping).seq)).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(i)));
    expect(c.connectionCount(address)).toBe(1);
    stalled.cancel();
  });
});

describe("tcp streaming - failures", () => {
  it("tcp streaming - a server killed mid-stream fails the stream with UNAVAILABLE", async () => {
    const { proc: child, json } = tsxChild(new URL("./server-process.ts", import.meta.url));
    cleanup.push(() => void child.kill("SIGKILL"));
    const { address } = await json<{ address: string }>();
    const c = open(address);
    const streams = Array.from({ length: 3 }, () => openStream(c));
    for (const s of streams) await s.send(Ping.create());
    const its = streams.map((s) => s.responses[Symbol.asyncIterator]());
    for (const it of its) for (let i = 0; i < 3; i++) await it.next();
    child.kill("SIGKILL");
    for (const it of its) {
      // Messages received before the kill may still come out first, then the error.
      const { error } = await drain({ [Symbol.asyncIterator]: () => it });
      expect(error).toMatchObject({ code: Code.UNAVAILABLE, notSent: false });
    }
    expect((await streams[0]!.trailers)["rpc-status"]).toBe(String(Code.UNAVAILABLE));
  });

  it("tcp streaming - the client going away aborts the server's stream", async () => {
    const streams: IncomingStream[] = [];
    const { address } = await serve(async (stream) => {
      streams.push(stream);
      return endlessTicks(stream);
    });
    const c = new TcpClientTransport({ address });
    const s = openStream(c);
    await s.send(Ping.create());
    await s.responses[Symbol.asyncIterator]().next();
    await c.close();
    await until(() => streams[0]?.signal.aborted === true, 2000, "the server's signal to abort");
    expect((streams[0]!.signal.reason as RpcError).code).toBe(Code.CANCELLED);
  });

  it("tcp streaming - a stream to a port nobody listens on fails UNAVAILABLE notSent", async () => {
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const c = open(`127.0.0.1:${port}`);
    const s = openStream(c);
    const { error } = await drain(s.responses);
    expect(error).toMatchObject({ code: Code.UNAVAILABLE, notSent: true });
    await expect(s.send(Ping.create())).rejects.toMatchObject({ code: Code.UNAVAILABLE });
  });

  it("tcp streaming - the deadline ends the stream on both sides", async () => {
    const streams: IncomingStream[] = [];
    const { address } = await serve(async (stream) => {
      streams.push(stream);
      return endlessTicks(stream);
    });
    const c = open(address);
    const s = openStream(c, { timeoutMs: 100 });
    await s.send(Ping.create());
    const { items, error } = await drain(s.responses);
    expect(error?.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(items.length).toBeGreaterThan(0);
    expect(streams[0]!.deadline).toBeDefined();
    await until(() => streams[0]!.signal.aborted, 2000, "the server's signal");
    expect((streams[0]!.signal.reason as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
  });
});

describe("tcp streaming - graceful shutdown", () => {
  it("tcp streaming - a stream in flight finishes after the notice; the connection then closes well before the grace period ends", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const { server, address } = await startServer(async () => errorReply(Code.UNIMPLEMENTED, "no"), {}, async (stream) => {
      await stream.send(ping(1));
      await released;
      await stream.send(ping(2));
      return { "x-bye": "1" };
    });
    cleanup.push(() => server.close(0));
    const c = open(address);
    const s = openStream(c);
    await s.send(Ping.create());
    await s.closeSend();
    const it = s.responses[Symbol.asyncIterator]();
    expect(((await it.next()).value as Ping).seq).toBe(1n);
    const t0 = Date.now();
    const closed = server.close(5000);
    await sleep(30);
    release();
    expect(((await it.next()).value as Ping).seq).toBe(2n);
    expect((await it.next()).done).toBe(true);
    expect((await s.trailers)["x-bye"]).toBe("1");
    await closed;
    expect(Date.now() - t0).toBeLessThan(4000);
    await until(() => c.connectionCount(address) === 0, 2000, "the client to leave");
  });
});
