/**
 * The TCP server's limits against hostile input, one at a time, in process over raw sockets on
 * 127.0.0.1: what a peer that breaks each limit sees, and that everyone else goes on being
 * served. An unhandled rejection anywhere in here fails the run (vitest reports it), which is
 * what the first tests guard against: before, one of them ended the process.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { Cancellation, Code, createClient, type MethodDescriptor } from "meridian-rpc";
import { EchoService } from "../../bench/rpc/service.js";
import { TcpClientTransport, type TcpServerOptions } from "meridian-rpc/transports/tcp";
import { MAX_ECHOED_TEXT, MessageType } from "../../transports/tcp/wire.js";
import { Ping } from "../../bench/codec/gen/feed.js";
import { startServer, until } from "../tcp/helpers.js";
import { startEchoServer, type EchoServer } from "./echo-server.js";
import { RawPeer, requestFrame, statusOf } from "./wire.js";
import { openStream } from "../support/message-calls.js";

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function serve(options: TcpServerOptions = {}): Promise<EchoServer> {
  const s = await startEchoServer(options);
  cleanup.push(() => s.server.close({ graceMs: 0 }));
  return s;
}

async function raw(address: string): Promise<RawPeer> {
  const p = await RawPeer.open(address);
  cleanup.push(() => p.destroy());
  return p;
}

function goodClient(address: string) {
  const transport = new TcpClientTransport({ backoffBaseMs: 10, backoffMaxMs: 50 });
  cleanup.push(() => transport.close());
  return createClient(EchoService, { transport, endpoints: [{ address }], region: "cn-north", timeoutMs: 5000 });
}

/** A method name that makes its request frame just under the 4 MiB default maxFrameSize (2 bytes under): any reply that echoes it is over. */
const HUGE_NAME = "m".repeat(4 * 1024 * 1024 - 62);

describe("tcp hostile - replies built from peer input are bounded", () => {
  it("tcp hostile - an unknown method named to fill a 4 MiB frame gets a short UNIMPLEMENTED; the connection and process go on", async () => {
    const s = await serve();
    const p = await raw(s.address);
    const frame = requestFrame({ seq: 1, method: HUGE_NAME });
    expect(frame.length).toBe(4 * 1024 * 1024 - 2);
    p.write(frame);
    p.write(requestFrame({ seq: 2, message: { region: "after", seq: 0n } }));
    const refused = await p.reply(1);
    expect(refused.messageType).toBe(MessageType.Exception);
    expect(statusOf(refused)).toBe(Code.UNIMPLEMENTED);
    expect(refused.size).toBeLessThan(4 * MAX_ECHOED_TEXT + 200);
    expect(refused.method.length).toBeLessThanOrEqual(MAX_ECHOED_TEXT + 40);
    expect(refused.headers["rpc-message"]!.length).toBeLessThanOrEqual(MAX_ECHOED_TEXT + 40);
    // The next reply on the same connection parses: nothing half written was left in the slab.
    const next = await p.reply(2);
    expect(next.ping?.region).toBe("after");
    expect(p.closed).toBe(false);
    // Calls to unregistered names are counted under one label, whatever the peer named them.
    for (let i = 0; i < 20; i++) p.write(requestFrame({ seq: 10 + i, method: `nope-${i}` }));
    await p.reply(29);
    expect(Object.keys(s.server.metrics().methods).sort()).toEqual(["bench.Echo/(unknown)", "bench.Echo/Echo"]);
  });

  it("tcp hostile - a reply that cannot be encoded is replaced by a small error; one whose fallback cannot be either closes only its connection", async () => {
    // Headers over 64 KiB cannot be encoded: the handler's reply becomes INTERNAL.
    const s = await serve();
    const huge = "h".repeat(70_000);
    s.server.register({ typeName: "hostile.Big", methods: EchoService.methods }, { echo: async (_req, ctx) => ((ctx.responseHeaders["x-big"] = huge), { region: "", seq: 0n, consistency: "" }) });
    const p = await raw(s.address);
    p.write(requestFrame({ seq: 1, service: "hostile.Big" }));
    const r = await p.reply(1);
    expect(statusOf(r)).toBe(Code.INTERNAL);
    expect(r.headers["x-big"]).toBeUndefined();
    p.write(requestFrame({ seq: 2 }));
    expect((await p.reply(2)).ping).toBeDefined();
    expect(s.transport.stats.failedReplies).toBe(1);

    // With a frame limit too small for even the fallback, the connection is closed instead,
    // and the server serves the next one.
    const tiny = await serve({ limits: { maxFrameSize: 160 } });
    const q = await raw(tiny.address);
    q.write(requestFrame({ seq: 1, method: "x".repeat(100) }));
    await q.closedWithin(5000);
    const again = await raw(tiny.address);
    again.write(requestFrame({ seq: 1 }));
    expect((await again.reply(1)).ping).toBeDefined();
  });

  it("tcp hostile - a reply whose encoder throws, half way into the slab, becomes INTERNAL and leaves no bytes behind", async () => {
    let n = 0;
    const { server, address } = await startServer(async (call) => {
      n++;
      if (n === 1) return { headers: {}, encode: (w) => (w.raw(new Uint8Array(3000)), assertNever("boom")) };
      if (n === 2) throw "not even an Error";
      return { headers: {}, encode: (w) => Ping.encodeTo(Ping.decode(call.payload), w) };
    });
    cleanup.push(() => server.close(0));
    const p = await raw(address);
    for (let seq = 1; seq <= 3; seq++) p.write(requestFrame({ seq, message: { region: `r${seq}`, seq: 0n } }));
    const [a, b, c] = [await p.reply(1), await p.reply(2), await p.reply(3)];
    expect(statusOf(a)).toBe(Code.INTERNAL);
    expect(a.headers["rpc-message"]).toBe("the response cannot be sent: boom");
    expect(statusOf(b)).toBe(Code.INTERNAL);
    expect(c.ping?.region).toBe("r3");
    expect(server.stats.failedReplies).toBe(1);
  });

  it("tcp hostile - a stream opened on a 64 KiB method name ends with a short UNIMPLEMENTED trailer", async () => {
    const s = await serve();
    const transport = new TcpClientTransport({ address: s.address });
    cleanup.push(() => transport.close());
    const method = { ...EchoService.methods.echo, name: "s".repeat(60_000), kind: "bidi_streaming" as const };
    const stream = openStream(transport, { service: "bench.Echo", method, headers: {}, deadline: Date.now() + 5000, signal: new Cancellation(), endpoint: undefined });
    const trailers = await stream.trailers;
    expect(trailers["rpc-status"]).toBe(String(Code.UNIMPLEMENTED));
    expect(trailers["rpc-message"]!.length).toBeLessThanOrEqual(MAX_ECHOED_TEXT + 40);
  });
});

describe("tcp hostile - memory follows bytes received", () => {
  it("tcp hostile - a connection announcing 4 MiB and sending 10 bytes holds kilobytes, not megabytes", async () => {
    const s = await serve();
    const peers = await Promise.all(Array.from({ length: 50 }, () => raw(s.address)));
    const frame = requestFrame({ seq: 1, method: HUGE_NAME });
    for (const p of peers) p.write(frame.subarray(0, 10));
    // 64 bytes each (10 received, rounded up), where the announced LENGTH would be 4 MiB each.
    await until(() => s.transport.stats.partialFrameBytes === 50 * 64, 5000, "50 partial frames");
    for (const p of peers) p.destroy();
    await until(() => s.transport.stats.partialFrameBytes === 0, 5000, "partial frames released");
  });

  it("tcp hostile - over the partial-frame budget the oldest partial frame's connection is closed; the newer one completes", async () => {
    const s = await serve({ limits: { maxFrameSize: 1 << 20 }, maxPartialFrameBytes: 1 << 20 });
    const big = requestFrame({ seq: 1, message: { region: "r".repeat((1 << 20) - 200) } });
    expect(big.length).toBeLessThanOrEqual(1 << 20);
    const stalled = await raw(s.address);
    stalled.write(big.subarray(0, big.length - 1));
    await sleep(200);
    const good = await raw(s.address);
    good.write(big);
    const r = await good.reply(1);
    expect(r.ping?.region.length).toBe((1 << 20) - 200);
    await stalled.closedWithin(5000);
    expect(s.transport.stats.closedOverPartialBudget).toBe(1);
    expect(s.transport.stats.partialFrameBytes).toBe(0);
  });

  it("tcp hostile - a frame that stops arriving is closed after frameTimeoutMs; a quiet connection is not", async () => {
    const s = await serve({ frameTimeoutMs: 300 });
    const trickle = await raw(s.address);
    const quiet = await raw(s.address);
    const frame = requestFrame({ seq: 1 });
    trickle.write(frame.subarray(0, 2)); // not even the whole LENGTH
    const loris = await raw(s.address);
    loris.write(frame.subarray(0, 20));
    const t0 = Date.now();
    await trickle.closedWithin(5000);
    await loris.closedWithin(5000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(s.transport.stats.closedFrameTimeout).toBe(2);
    quiet.write(frame);
    expect((await quiet.reply(1)).ping).toBeDefined();
  });
});

describe("tcp hostile - flow control and caps", () => {
  it("tcp hostile - past maxConcurrentCalls the flooding connection is not read; another connection is served", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let dispatched = 0;
    const { server, address } = await startServer(async (call) => {
      const ping = Ping.decode(call.payload);
      if (ping.region === "flood") {
        dispatched++;
        await gate; // held until the test opens the gate
      }
      return { headers: {}, encode: (w) => Ping.encodeTo(ping, w) };
    }, { maxConcurrentCalls: 4 });
    cleanup.push(() => server.close(0));
    const flood = await raw(address);
    // Each call in its own write (its own chunk), so the limit is exact.
    for (let i = 1; i <= 10; i++) {
      flood.write(requestFrame({ seq: i, message: { region: "flood", seq: 0n } }));
      await sleep(20);
    }
    await sleep(200);
    expect(dispatched).toBe(4);
    expect(server.stats.pausedConnections).toBe(1);
    // Another connection is served while the flood's calls hold their handlers.
    const good = await raw(address);
    for (let seq = 1; seq <= 5; seq++) {
      good.write(requestFrame({ seq, message: { region: "good", seq: 0n } }));
      expect((await good.reply(seq)).ping?.region).toBe("good");
    }
    expect(dispatched).toBe(4);
    // Once the gate opens the flood is read again and answered in full.
    release();
    await flood.reply(10);
    expect(flood.frames.filter((f) => f.ping !== undefined)).toHaveLength(10);
    expect(server.stats.pausedConnections).toBe(0);
  });

  it("tcp hostile - peers that never read their replies are held near the server's budget; others are served", async () => {
    const s = await serve({ maxQueuedBytes: 1 << 20, maxServerBufferedBytes: 2 << 20 });
    const hogs = await Promise.all([raw(s.address), raw(s.address), raw(s.address)]);
    for (const h of hogs) h.socket.pause(); // never reads
    const req = requestFrame({ seq: 1, message: { region: "q".repeat(32 * 1024) } });
    let peak = 0;
    let paused = 0;
    // Flood until all three are paused (each past its share of the budget); give up after 15 s.
    const end = Date.now() + 15_000;
    while (paused < 3 && Date.now() < end) {
      for (const h of hogs) if (!h.socket.writableNeedDrain) h.write(req);
      const st = s.transport.stats;
      peak = Math.max(peak, st.queuedReplyBytes + st.inflightRequestBytes);
      paused = Math.max(paused, st.pausedConnections);
      await sleep(2);
    }
    // Past the budget each hog is paused on its next read or write: over by about a frame each.
    expect(paused).toBe(3);
    expect(peak).toBeGreaterThan(2 << 20);
    expect(peak).toBeLessThan((2 << 20) + 3 * 2 * req.length);
    const c = goodClient(s.address);
    for (let i = 0; i < 20; i++) expect((await c.echo({ region: "ok", seq: 0n })).region).toBe("ok");
  });

  it("tcp hostile - past maxConnections a connection is refused with a crrst frame saying RESOURCE_EXHAUSTED", async () => {
    const s = await serve({ maxConnections: 3 });
    const held = await Promise.all([raw(s.address), raw(s.address), raw(s.address)]);
    await sleep(50);
    const extra = await raw(s.address);
    await extra.closedWithin(5000);
    expect(extra.frames).toHaveLength(1);
    expect(extra.frames[0]!.reset).toBe(true);
    expect(statusOf(extra.frames[0]!)).toBe(Code.RESOURCE_EXHAUSTED);
    expect(s.transport.stats.refusedConnections).toBe(1);
    held[0]!.destroy();
    await until(() => s.transport.stats.connections === 2, 5000, "the freed slot");
    const next = await raw(s.address);
    next.write(requestFrame({ seq: 1 }));
    expect((await next.reply(1)).ping).toBeDefined();
  });

  it("tcp hostile - a stream opened past maxConcurrentStreams ends at once with RESOURCE_EXHAUSTED", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { server, address } = await startServer(async () => ({ headers: {} }), { maxConcurrentStreams: 2 }, async () => (await gate, {}));
    cleanup.push(() => server.close(0));
    const transport = new TcpClientTransport({ address });
    cleanup.push(() => transport.close());
    const open = () => openStream(transport, { service: "bench.Echo", method: BIDI, headers: {}, deadline: undefined, signal: new Cancellation(), endpoint: undefined });
    const [a, b, c] = [open(), open(), open()];
    expect((await c.trailers)["rpc-status"]).toBe(String(Code.RESOURCE_EXHAUSTED));
    release();
    expect((await a.trailers)["rpc-status"]).toBeUndefined();
    expect((await b.trailers)["rpc-status"]).toBeUndefined();
  });
});

function assertNever(message: string): never {
  throw new Error(message);
}

/** A bidi streaming method of Pings, for the stream tests. */
const BIDI: MethodDescriptor<typeof Ping, typeof Ping> = { name: "Chat", kind: "bidi_streaming", input: Ping, output: Ping, idempotency: "IDEMPOTENCY_UNKNOWN" };
