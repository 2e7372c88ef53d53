/**
 * Deadlines of any size over TCP: a client's huge timeout goes on the wire (clamped to what
 * TTHeader carries) and the call succeeds; a peer that sends a huge RPCTimeout gets its call
 * served, not expired at once; no TimeoutOverflowWarning either way.
 */
import { connect } from "node:net";
import { once } from "node:events";
import { setTimeout as wait } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Cancellation, Code, RpcError, createClient, createServer, type CallContext } from "meridian-rpc";
import { messageWriter } from "meridian-rpc/transport";
import { Writer } from "meridian-rpc/runtime";
import { TcpClientTransport, TcpServerTransport, DEFAULT_FRAME_LIMITS } from "meridian-rpc/transports/tcp";
import { IntKey, MessageType } from "../../transports/tcp/wire.js";
import { MAX_WIRE_TIMEOUT_MS } from "../../transports/tcp/deadlines.js";
import {
  FrameHead,
  FrameSplitter,
  beginFrame,
  endFrame,
  endHeader,
  parseFrame,
  writeIntInfo,
  writeKitexMeta,
  writeStringInfo,
} from "../../transports/tcp/wire.js";
import { Ping } from "../../bench/codec/gen/feed.js";
import { EchoService } from "../rpc/gen/echo.js";
import { HUGE_TIMEOUTS, echoHandlers, watchWarnings, type EchoServer } from "../rpc/helpers.js";
import { SERVICE, echoReply, startServer } from "./helpers.js";

const cleanup: (() => Promise<unknown>)[] = [];
let watch: ReturnType<typeof watchWarnings>;
beforeEach(() => {
  watch = watchWarnings();
});
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
  await wait(5);
  watch.stop();
  expect(watch.warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
});

describe("tcp deadlines - any size", () => {
  it("tcp deadlines - calls with huge timeouts succeed; the server sees the deadline clamped to the wire's maximum", async () => {
    const calls: EchoServer["calls"] = [];
    const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }) });
    server.register(EchoService, echoHandlers("a", calls));
    const { address } = await server.listen();
    cleanup.push(() => server.close({ graceMs: 0 }));
    const transport = new TcpClientTransport();
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints: [{ address }] });

    const timeouts = [...HUGE_TIMEOUTS, Infinity];
    // The handler sleeps on the call's signal: a deadline that fired at once would fail the call.
    const replies = await Promise.all(timeouts.map((timeoutMs, i) => client.echo({ text: `t${i}`, delayMs: 30 }, { timeoutMs })));
    replies.forEach((r, i) => expect(r.text).toBe(`t${i}`));
    const now = Date.now();
    for (const { request, ctx } of calls) {
      const timeoutMs = timeouts[Number(request.text.slice(1))]!;
      if (timeoutMs === Infinity) expect(ctx.deadline).toBeUndefined();
      else {
        const left = (ctx as CallContext).deadline! - now;
        expect(left).toBeGreaterThan(Math.min(timeoutMs, MAX_WIRE_TIMEOUT_MS) - 60_000);
        expect(left).toBeLessThanOrEqual(MAX_WIRE_TIMEOUT_MS);
      }
    }
  });

  it("tcp deadlines - a deadline that is not a number fails the call before it is sent; the deadlines after it still fire", async () => {
    const { server, address } = await startServer(async (call) => {
      await wait(200);
      return echoReply(call);
    });
    cleanup.push(() => server.close(0));
    const transport = new TcpClientTransport();
    cleanup.push(() => transport.close());
    const send = (deadline: number) =>
      transport.unary({
        service: SERVICE,
        method: EchoService.methods.echo,
        encode: messageWriter(EchoService.methods.echo.input, EchoService.methods.echo.input.create({ text: "x" })),
        headers: {},
        deadline,
        signal: new Cancellation(),
        endpoint: { address },
      });
    const nan = await send(Number.NaN).catch((e: unknown) => e);
    expect(nan).toBeInstanceOf(RpcError);
    expect((nan as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
    expect((nan as RpcError).notSent).toBe(true);
    const started = Date.now();
    const late = await send(Date.now() + 50).catch((e: unknown) => e);
    expect((late as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(190);
  });

  it("tcp deadlines - a peer's huge RPCTimeout is served, not expired at once", async () => {
    const aborted: boolean[] = [];
    const { server, address } = await startServer(async (call) => {
      const signal = call.signal; // arms the server's deadline for this call
      await wait(30);
      aborted.push(signal.aborted);
      return echoReply(call);
    });
    cleanup.push(() => server.close(0));
    const values = ["2147483648", "4294967296", "9007199254740991", "1e+300", "99999999999999999999999999999"];
    const w = new Writer(256);
    values.forEach((_, i) => {
      const seq = i + 1;
      const mark = beginFrame(w, seq);
      const n = writeStringInfo(w, {}, "isn", SERVICE) + writeIntInfo(w, [[IntKey.RPCTimeout, values[i]!]]);
      endHeader(w, mark, n, DEFAULT_FRAME_LIMITS);
      writeKitexMeta(w, MessageType.Call, "Echo", seq);
      Ping.encodeTo(Ping.create({ seq: BigInt(seq) }), w);
      endFrame(w, mark, DEFAULT_FRAME_LIMITS);
    });
    const [host, port] = address.split(":");
    const socket = connect({ host: host!, port: Number(port) });
    cleanup.push(async () => void socket.destroy());
    await once(socket, "connect");
    const replies: { seq: number; status: string | undefined }[] = [];
    const head = new FrameHead();
    const splitter = new FrameSplitter(DEFAULT_FRAME_LIMITS.maxFrameSize, (buf, start, end) => {
      const h = parseFrame(buf, start, end, DEFAULT_FRAME_LIMITS, head);
      replies.push({ seq: h.seqId, status: h.headers["rpc-status"] });
    });
    socket.on("data", (chunk: Buffer) => splitter.push(chunk));
    socket.write(Buffer.from(w.finish()));
    const end = Date.now() + 5000;
    while (replies.length < values.length && Date.now() < end) await wait(5);
    expect(replies.sort((a, b) => a.seq - b.seq)).toEqual(values.map((_, i) => ({ seq: i + 1, status: undefined })));
    expect(aborted).toEqual(values.map(() => false));
  });
});
