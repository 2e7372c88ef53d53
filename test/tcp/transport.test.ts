import { createServer, connect, type Socket } from "node:net";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { Code, RpcError, Cancellation, HeaderKeys } from "meridian-rpc";
import type { CallSignal, IncomingCall, OutgoingReply } from "meridian-rpc/transport";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { Ping } from "../../bench/codec/gen/feed.js";
import { Echo, Feed, client, delayedEcho, echoReply, errorReply, request, startServer, until } from "./helpers.js";
import { unaryCall } from "../support/message-calls.js";
import { rejection } from "../support/rejection.js";
import { freePort, tsxChild } from "../support/processes.js";

/** Everything a test opened, closed after it whatever happened. */
const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function serve(dispatch: Parameters<typeof startServer>[0], options?: Parameters<typeof startServer>[1]) {
  const s = await startServer(dispatch, options);
  cleanup.push(() => s.server.close(0));
  return s;
}

function open(address: string, options?: Parameters<typeof client>[1]): TcpClientTransport {
  const c = client(address, options);
  cleanup.push(() => c.close());
  return c;
}


/** A deferred reply: the test decides when the handler answers. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe("tcp transport - calls", () => {
  it("tcp - echoes a message with region and consistency headers both ways", async () => {
    let seen: IncomingCall | undefined;
    const { address } = await serve(async (call) => {
      seen = call;
      return echoReply(call, { [HeaderKeys.servedRegion]: "cn-east" });
    });
    const c = open(address);
    const res = await unaryCall(c, request({ region: "cn-north", seq: 42n, consistency: "linearizable" }, { timeoutMs: 2000 }));
    expect(res.message).toEqual(Ping.create({ region: "cn-north", seq: 42n, consistency: "linearizable" }));
    expect(res.headers).toEqual({
      [HeaderKeys.servedRegion]: "cn-east",
      "x-echo-x-region-id": "cn-north",
      "x-echo-x-consistency-level": "eventual",
    });
    expect(seen!.service).toBe("bench.Echo");
    expect(seen!.method).toBe("Echo");
    expect(seen!.headers).toEqual({ [HeaderKeys.region]: "cn-north", [HeaderKeys.consistency]: "eventual" });
    expect(seen!.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    // RPCTimeout carried the 2000 ms budget: the server's deadline is about now + 2 s.
    expect(seen!.deadline! - Date.now()).toBeGreaterThan(1000);
    expect(seen!.deadline! - Date.now()).toBeLessThanOrEqual(2000);
  });

  it("tcp - carries UTF-8 metainfo headers and large messages", async () => {
    const { address } = await serve(async (call) => echoReply(call));
    const c = open(address);
    const big = "区域".repeat(100_000); // 600 kB of UTF-8: crosses socket chunks both ways
    const res = await unaryCall(c, request({ region: big }, { headers: { rpc_persist_user: "李明", "x-region-id": "eu-central" } }));
    expect((res.message as Ping).region).toBe(big);
    expect(res.headers["x-echo-rpc_persist_user"]).toBe("李明");
  });

  it("tcp - no deadline sends no RPCTimeout", async () => {
    let deadline: number | undefined = 0;
    const { address } = await serve(async (call) => {
      deadline = call.deadline;
      return echoReply(call);
    });
    await unaryCall(open(address), request({}));
    expect(deadline).toBeUndefined();
  });

  it("tcp - an error reply rejects with its code, message and headers", async () => {
    const { address } = await serve(async () => {
      const r = errorReply(Code.NOT_FOUND, "no such feed");
      return { headers: { ...r.headers, "biz-status": "404" } };
    });
    const e = await rejection(unaryCall(open(address), request({})));
    expect(e.code).toBe(Code.NOT_FOUND);
    expect(e.message).toBe("no such feed");
    expect(e.headers["biz-status"]).toBe("404");
    expect(e.notSent).toBe(false);
  });

  it("tcp - a dispatcher that throws gives INTERNAL without details", async () => {
    const { address } = await serve(async () => {
      throw new Error("secret stack");
    });
    const e = await rejection(unaryCall(open(address), request({})));
    expect(e.code).toBe(Code.INTERNAL);
    expect(e.message).not.toContain("secret");
  });

  it("tcp - a reply that fails to encode gives INTERNAL and the connection goes on", async () => {
    let n = 0;
    const { address } = await serve(async (call): Promise<OutgoingReply> => {
      if (n++ === 0) return { headers: {}, encode: () => { throw new Error("boom"); } };
      return echoReply(call);
    });
    const c = open(address);
    expect((await rejection(unaryCall(c, request({})))).code).toBe(Code.INTERNAL);
    expect((await unaryCall(c, request({ region: "ok" }))).message).toMatchObject({ region: "ok" });
  });

  it("tcp - a response that does not decode rejects with INTERNAL", async () => {
    const { address } = await serve(async () => ({ headers: {}, encode: (w) => w.raw(new Uint8Array([0x0a, 0x05, 0x01])) }));
    const e = await rejection(unaryCall(open(address), request({})));
    expect(e.code).toBe(Code.INTERNAL);
    expect(e.message).toMatch(/cannot decode the response/);
  });

  it("tcp - returns the 20-item feed", async () => {
    const { FeedResponse, Video, User } = await import("../../bench/codec/gen/feed.js");
    const items = Array.from({ length: 20 }, (_, i) => Video.create({ id: BigInt(i), title: "标题", author: User.create({ name: "李明" }) }));
    const feed = FeedResponse.create({ cursor: "c", serverTime: 5n, items });
    const { address } = await serve(async () => ({ headers: {}, encode: (w) => FeedResponse.encodeTo(feed, w) }));
    const res = await unaryCall(open(address), request({}, { method: Feed }));
    expect((res.message as typeof feed).items).toHaveLength(20);
  });
});

describe("tcp transport - multiplexing", () => {
  it("tcp - many calls on one connection are answered out of order and matched by sequence id", async () => {
    const { server, address } = await serve(delayedEcho);
    const c = open(address);
    const order: number[] = [];
    const delays = [120, 10, 80, 0, 40, 60, 20, 100];
    const results = await Promise.all(
      delays.map((d, i) =>
        unaryCall(c, request({ seq: BigInt(d), region: `r${i}` })).then((r) => {
          order.push(i);
          return r.message as Ping;
        }),
      ),
    );
    results.forEach((m, i) => expect(m.region).toBe(`r${i}`));
    expect(order).not.toEqual(delays.map((_, i) => i)); // answered out of order
    expect(order[0]).toBe(3);
    expect(server.connectionCount).toBe(1);
    expect(c.connectionCount(address)).toBe(1);
  });

  it("tcp - a thousand concurrent calls", async () => {
    const { address } = await serve(async (call) => echoReply(call));
    const c = open(address, { connectionsPerAddress: 2 });
    const res = await Promise.all(Array.from({ length: 1000 }, (_, i) => unaryCall(c, request({ seq: BigInt(-i) }))));
    res.forEach((r, i) => expect((r.message as Ping).seq).toBe(BigInt(-i)));
  });
});

describe("tcp transport - pool", () => {
  it("tcp - warm-up opens the pool before the first call, and calls spread over it", async () => {
    const peers = new Set<string>();
    const { server, address } = await serve(async (call) => {
      peers.add(call.peer);
      return echoReply(call);
    });
    const c = open(undefined as unknown as string, { connectionsPerAddress: 3 });
    await c.warmUp([{ address }]);
    expect(c.connectionCount(address)).toBe(3);
    await until(() => server.connectionCount === 3, 2000, "3 server connections");
    for (let i = 0; i < 9; i++) await unaryCall(c, request({}, { address }));
    expect(peers.size).toBe(3);
  });

  it("tcp - the pool grows on demand up to its size", async () => {
    const { server, address } = await serve(async (call) => echoReply(call));
    const c = open(address, { connectionsPerAddress: 2 });
    await unaryCall(c, request({}));
    await until(() => c.connectionCount(address) === 2, 2000, "pool growth");
    await Promise.all(Array.from({ length: 20 }, () => unaryCall(c, request({}))));
    expect(c.connectionCount(address)).toBe(2);
    expect(server.connectionCount).toBe(2);
  });

  it("tcp - warm-up of an address nobody listens on rejects with UNAVAILABLE", async () => {
    const port = await freePort();
    const c = open(`127.0.0.1:${port}`);
    const e = await rejection(c.warmUp([{ address: `127.0.0.1:${port}` }]));
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(e.notSent).toBe(true);
  });

  it("tcp - a call to a closed port fails UNAVAILABLE notSent, then fast during backoff", async () => {
    const port = await freePort();
    const c = open(`127.0.0.1:${port}`, { backoffBaseMs: 5000, backoffMaxMs: 5000 });
    const first = await rejection(unaryCall(c, request({})));
    expect(first.code).toBe(Code.UNAVAILABLE);
    expect(first.notSent).toBe(true);
    const second = await rejection(unaryCall(c, request({})));
    expect(second.code).toBe(Code.UNAVAILABLE);
    expect(second.notSent).toBe(true);
    expect(second.message).toMatch(/next attempt in/); // failed fast, without a connect attempt
  });

  it("tcp - reconnects after the server restarts on the same port", async () => {
    const first = await startServer(async (call) => echoReply(call));
    const c = open(first.address);
    await unaryCall(c, request({}));
    await first.server.close(0);
    const port = Number(first.address.split(":")[1]);
    const e = await rejection(unaryCall(c, request({})));
    expect(e.code).toBe(Code.UNAVAILABLE);
    const second = await serve(async (call) => echoReply(call, { "x-gen": "2" }), { port });
    let res;
    const end = Date.now() + 3000;
    for (;;) {
      try {
        res = await unaryCall(c, request({}));
        break;
      } catch (err) {
        expect((err as RpcError).code).toBe(Code.UNAVAILABLE);
        if (Date.now() > end) throw err;
        await sleep(10);
      }
    }
    expect(res.headers["x-gen"]).toBe("2");
    expect(second.server.connectionCount).toBe(1);
  });

  it("tcp - a warmed-up pool reconnects by itself after losing its connection", async () => {
    const first = await startServer(async (call) => echoReply(call));
    const port = Number(first.address.split(":")[1]);
    const c = open(first.address, { connectionsPerAddress: 2 });
    await c.warmUp([{ address: first.address }]);
    await first.server.close(0);
    await until(() => c.connectionCount(first.address) === 0, 2000, "connections lost");
    const second = await serve(async (call) => echoReply(call), { port });
    await until(() => second.server.connectionCount === 2, 3000, "background reconnect");
    expect(c.connectionCount(first.address)).toBe(2);
  });

  it("tcp - idle connections are closed, and the next call reconnects", async () => {
    const { server, address } = await serve(async (call) => echoReply(call));
    const c = open(address, { idleTimeoutMs: 40 });
    await unaryCall(c, request({}));
    expect(c.connectionCount(address)).toBe(1);
    await until(() => c.connectionCount(address) === 0 && server.connectionCount === 0, 2000, "idle close");
    await unaryCall(c, request({}));
    expect(c.connectionCount(address)).toBe(1);
  });

  it("tcp - the server closes idle connections too", async () => {
    const { server, address } = await serve(async (call) => echoReply(call), { idleTimeoutMs: 40 });
    const c = open(address, { idleTimeoutMs: 0 });
    await unaryCall(c, request({}));
    await until(() => server.connectionCount === 0 && c.connectionCount(address) === 0, 2000, "server idle close");
  });
});

describe("tcp transport - deadlines and cancellation", () => {
  it("tcp - a slow handler fails the call with DEADLINE_EXCEEDED and the server's signal aborts", async () => {
    let aborted: unknown;
    const { address } = await serve(async (call) => {
      call.signal.addEventListener("abort", () => (aborted = call.signal.reason));
      await sleep(300);
      return echoReply(call);
    });
    const c = open(address);
    const e = await rejection(unaryCall(c, request({}, { timeoutMs: 50 })));
    expect(e.code).toBe(Code.DEADLINE_EXCEEDED);
    await until(() => aborted !== undefined, 1000, "server-side abort");
    expect((aborted as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
    // The late answer is dropped and the connection still works.
    await sleep(300);
    expect((await unaryCall(c, request({ region: "after" }))).message).toMatchObject({ region: "after" });
  });

  it("tcp - deadlines of many calls, in any order, fire in deadline order and never early", async () => {
    const { address } = await serve(async (call) => {
      await sleep(1000);
      return echoReply(call);
    });
    const c = open(address);
    const timeouts = [90, 30, 60, 20, 120, 50];
    const t0 = Date.now();
    const fired: number[] = [];
    const times = await Promise.all(
      timeouts.map((t) =>
        rejection(unaryCall(c, request({}, { timeoutMs: t }))).then((e) => {
          expect(e.code).toBe(Code.DEADLINE_EXCEEDED);
          fired.push(t);
          return Date.now() - t0;
        }),
      ),
    );
    times.forEach((elapsed, i) => expect(elapsed).toBeGreaterThanOrEqual(timeouts[i]! - 2));
    expect(fired).toEqual([...timeouts].sort((a, b) => a - b));
  });

  it("tcp - a deadline already passed fails before sending", async () => {
    let calls = 0;
    const { address } = await serve(async (call) => {
      calls++;
      return echoReply(call);
    });
    const c = open(address);
    const req = { ...request({}), deadline: Date.now() - 1 };
    const e = await rejection(unaryCall(c, req));
    expect(e.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(e.notSent).toBe(true);
    expect(calls).toBe(0);
  });

  it("tcp - aborting a call rejects it with CANCELLED and drops the late response", async () => {
    const g = gate();
    let serverSaw: CallSignal | undefined;
    const { address } = await serve(async (call) => {
      if ((Ping.decode(call.payload)).region === "slow") {
        serverSaw = call.signal;
        await g.wait;
      }
      return echoReply(call);
    });
    const c = open(address);
    const cancel = new Cancellation();
    const p = unaryCall(c, request({ region: "slow" }, { signal: cancel }));
    await until(() => serverSaw !== undefined, 2000, "call to arrive");
    cancel.abort(new RpcError(Code.CANCELLED, "the caller gave up"));
    const e = await rejection(p);
    expect(e.code).toBe(Code.CANCELLED);
    expect(e.message).toBe("the caller gave up");
    g.open();
    await sleep(20);
    expect((await unaryCall(c, request({ region: "next" }))).message).toMatchObject({ region: "next" });
  });

  it("tcp - a plain AbortSignal cancels too", async () => {
    const g = gate();
    const { address } = await serve(async (call) => {
      await g.wait;
      return echoReply(call);
    });
    cleanup.push(() => g.open());
    const c = open(address);
    const ac = new AbortController();
    const p = unaryCall(c, request({}, { signal: ac.signal }));
    await sleep(20);
    ac.abort();
    expect((await rejection(p)).code).toBe(Code.CANCELLED);
  });

  it("tcp - an already aborted signal fails before sending", async () => {
    const { address } = await serve(async (call) => echoReply(call));
    const cancel = new Cancellation();
    cancel.abort(new RpcError(Code.CANCELLED, "cancelled"));
    const e = await rejection(unaryCall(open(address), request({}, { signal: cancel })));
    expect(e.code).toBe(Code.CANCELLED);
    expect(e.notSent).toBe(true);
  });

  it("tcp - the server's signal aborts when the client goes away, for every call in flight; what they held is released", async () => {
    const signals: CallSignal[] = [];
    const { address, server } = await serve(async (call) => {
      signals.push(call.signal);
      await new Promise((r) => call.signal.addEventListener("abort", r));
      return echoReply(call);
    });
    const c = client(address);
    const calls = Array.from({ length: 5 }, () => unaryCall(c, request({})).catch((e: unknown) => e));
    await until(() => signals.length === 5, 2000, "calls to arrive");
    expect(server.stats.inflightRequestBytes).toBeGreaterThan(0);
    await c.close();
    for (const p of calls) expect(((await p) as RpcError).code).toBe(Code.UNAVAILABLE);
    await until(() => signals.every((s) => s.aborted), 2000, "server-side aborts");
    for (const s of signals) expect((s.reason as RpcError).code).toBe(Code.CANCELLED);
    await until(() => server.stats.inflightRequestBytes === 0, 2000, "held bytes released");
  });
});

describe("tcp transport - failures", () => {
  it("tcp - a server killed mid-call fails the calls in flight with UNAVAILABLE", async () => {
    const { proc: child, json } = tsxChild(new URL("./server-process.ts", import.meta.url));
    cleanup.push(() => void child.kill("SIGKILL"));
    const { address } = await json<{ address: string }>();
    const c = open(address);
    await unaryCall(c, request({}));
    const inflight = Array.from({ length: 10 }, () => rejection(unaryCall(c, request({ seq: 10_000n }))));
    await sleep(100);
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    for (const e of await Promise.all(inflight)) {
      expect(e.code).toBe(Code.UNAVAILABLE);
      expect(e.notSent).toBe(false);
    }
    await exited; // until then the dying process's listener may still complete a handshake
    const after = await rejection(unaryCall(c, request({})));
    expect(after.code).toBe(Code.UNAVAILABLE);
    expect(after.notSent, after.message).toBe(true);
  });

  it("tcp - malformed frames close that connection and the server keeps serving others", async () => {
    const { server, address } = await serve(async (call) => echoReply(call));
    const good = open(address);
    await unaryCall(good, request({}));
    const valid = await captureRequest(request({ region: "x" }));
    const patched = (at: number, ...b: number[]): Buffer => {
      const copy = Buffer.from(valid);
      b.forEach((v, i) => (copy[at + i] = v));
      return copy;
    };
    const infoEnd = 14 + valid.readUInt16BE(12) * 4;
    const garbage: [string, Buffer][] = [
      ["bad magic", patched(4, 0x80, 0x01)],
      ["header size past the frame", patched(12, 0x7f, 0xff)],
      ["unknown info id", patched(16, 0x77)],
      ["other protocol", patched(14, 0x00)],
      ["not a protobuf payload", patched(infoEnd, 0x80, 0x01)],
      ["a reply sent to the server", patched(infoEnd + 3, 0x02)],
      ["LENGTH too short", Buffer.from("00000001ff", "hex")],
      ["HTTP", Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
    ];
    expect(garbage[0]![1].length).toBe(valid.readUInt32BE(0) + 4);
    for (const [what, bytes] of garbage) {
      const raw = await rawSocket(address);
      raw.write(bytes);
      await until(() => raw.destroyed || raw.readableEnded, 2000, `close after ${what}`);
      raw.destroy();
    }
    expect((await unaryCall(good, request({ region: "still" }))).message).toMatchObject({ region: "still" });
    await until(() => server.connectionCount === 1, 2000, "only the good connection left");
  });

  it("tcp - an oversize incoming frame closes the connection before it is buffered", async () => {
    const { address } = await serve(async (call) => echoReply(call), { limits: { maxFrameSize: 1024 } });
    const raw = await rawSocket(address);
    raw.write(Buffer.from("7fffffff10000000", "hex")); // LENGTH of 2 GiB
    await until(() => raw.destroyed || raw.readableEnded, 2000, "close");
    raw.destroy();
  });

  it("tcp - an oversize request fails RESOURCE_EXHAUSTED notSent and the connection goes on", async () => {
    let calls = 0;
    const { address } = await serve(async (call) => {
      calls++;
      return echoReply(call);
    });
    const c = open(address, { limits: { maxFrameSize: 4096 } });
    const e = await rejection(unaryCall(c, request({ region: "x".repeat(5000) })));
    expect(e.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(e.notSent).toBe(true);
    expect(e.message).toMatch(/exceeds the limit of 4096 bytes/);
    expect((await unaryCall(c, request({ region: "small" }))).message).toMatchObject({ region: "small" });
    expect(calls).toBe(1);
  });

  it("tcp - the default frame limit is 4 MiB", async () => {
    const { address } = await serve(async (call) => echoReply(call));
    const c = open(address);
    const e = await rejection(unaryCall(c, request({ region: "x".repeat(4 * 1024 * 1024) })));
    expect(e.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect((await unaryCall(c, request({ region: "x".repeat(3 * 1024 * 1024) }))).message).toBeDefined();
  });

  it("tcp - too many request headers fail INVALID_ARGUMENT notSent", async () => {
    const { address } = await serve(async (call) => echoReply(call));
    const headers: Record<string, string> = {};
    for (let i = 0; i < 20; i++) headers[`h${i}`] = "v";
    const e = await rejection(unaryCall(open(address, { limits: { maxHeaderCount: 10 } }), request({}, { headers })));
    expect(e.code).toBe(Code.INVALID_ARGUMENT);
    expect(e.notSent).toBe(true);
  });

  it("tcp - a response over the server's limit becomes RESOURCE_EXHAUSTED", async () => {
    const big = Ping.create({ region: "y".repeat(5000) });
    const { address } = await serve(async () => ({ headers: {}, encode: (w) => Ping.encodeTo(big, w) }), { limits: { maxFrameSize: 4096 } });
    const c = open(address);
    const e = await rejection(unaryCall(c, request({})));
    expect(e.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(e.message).toMatch(/too large/);
  });

  it("tcp - a response over the client's limit closes that connection: UNAVAILABLE", async () => {
    const big = Ping.create({ region: "z".repeat(5000) });
    const { address } = await serve(async () => ({ headers: {}, encode: (w) => Ping.encodeTo(big, w) }));
    const c = open(address, { limits: { maxFrameSize: 4096 } });
    const e = await rejection(unaryCall(c, request({})));
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(e.message).toMatch(/exceeds the limit/);
  });

  it("tcp - a peer that does not read: queued bytes are bounded, RESOURCE_EXHAUSTED notSent", async () => {
    const sockets: Socket[] = [];
    const sink = createServer((s) => {
      s.pause(); // never reads: the kernel buffers fill, then our queue
      sockets.push(s);
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
    cleanup.push(() => new Promise<void>((r) => { sockets.forEach((s) => s.destroy()); sink.close(() => r()); }));
    const address = `127.0.0.1:${(sink.address() as { port: number }).port}`;
    const c = open(address, { maxQueuedBytes: 1 << 20 });
    const payload = "q".repeat(256 * 1024);
    let exhausted: RpcError | undefined;
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 2000 && exhausted === undefined; i++) {
      calls.push(unaryCall(c, request({ region: payload })).catch(() => {}));
      await sleep(0);
      await unaryCall(c, request({ region: "" }, { timeoutMs: 1 })).catch((e: RpcError) => {
        if (e.code === Code.RESOURCE_EXHAUSTED) exhausted = e;
      });
    }
    expect(exhausted).toBeDefined();
    expect(exhausted!.notSent).toBe(true);
    expect(exhausted!.message).toMatch(/maxQueuedBytes/);
  });

  it("tcp - a server whose client does not read stops reading that client, and serves others", async () => {
    const { address } = await serve(async (call) => echoReply(call), { maxQueuedBytes: 256 * 1024 });
    // A raw client that sends many requests for large replies and never reads them.
    const raw = await rawSocket(address);
    raw.pause();
    const c = open(address);
    const frame = await captureRequest(request({ region: "r".repeat(64 * 1024) }));
    let wrote = 0;
    while (wrote < 64 * 1024 * 1024 && raw.write(frame)) wrote += frame.length;
    const good = await unaryCall(c, request({ region: "fine" }));
    expect(good.message).toMatchObject({ region: "fine" });
    raw.destroy();
  });
});

describe("tcp transport - graceful shutdown", () => {
  it("tcp - calls in flight complete; the client leaves; new calls fail UNAVAILABLE notSent", async () => {
    const g = gate();
    let arrived = 0;
    const { server, address } = await startServer(async (call) => {
      arrived++;
      await g.wait;
      return echoReply(call);
    });
    cleanup.push(() => server.close(0));
    const c = open(address);
    const inflight = Array.from({ length: 5 }, (_, i) => unaryCall(c, request({ region: `r${i}` })));
    await until(() => arrived === 5, 2000, "calls to arrive");
    const closed = server.close(5000);
    await sleep(20);
    g.open();
    const res = await Promise.all(inflight);
    res.forEach((r, i) => expect(r.message).toMatchObject({ region: `r${i}` }));
    const t0 = Date.now();
    await closed;
    // The client closed its end once drained: shutdown did not wait out the 5 s grace period.
    expect(Date.now() - t0).toBeLessThan(4000);
    const e = await rejection(unaryCall(c, request({})));
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(e.notSent).toBe(true);
  });

  it("tcp - after the notice, new calls move to another instance", async () => {
    const a = await startServer(async (call) => echoReply(call, { "x-served-by": "a" }));
    cleanup.push(() => a.server.close(0));
    const b = await serve(async (call) => echoReply(call, { "x-served-by": "b" }));
    const c = open(a.address);
    await c.warmUp([{ address: a.address }, { address: b.address }]);
    const closed = a.server.close(2000);
    await until(() => c.connectionCount(a.address) === 0, 2000, "client to leave a");
    await closed;
    // What load balancing does on UNAVAILABLE notSent: try the next instance.
    let served: string | undefined;
    for (const address of [a.address, b.address]) {
      try {
        served = (await unaryCall(c, request({}, { address }))).headers["x-served-by"];
        break;
      } catch (e) {
        expect((e as RpcError).notSent).toBe(true);
      }
    }
    expect(served).toBe("b");
  });

  it("tcp - calls still running at the end of the grace period are cut off", async () => {
    let signal: CallSignal | undefined;
    const { server, address } = await startServer(async (call) => {
      signal = call.signal;
      await sleep(5000);
      return echoReply(call);
    });
    cleanup.push(() => server.close(0));
    const c = open(address);
    const p = rejection(unaryCall(c, request({})));
    await until(() => signal !== undefined, 2000, "call to arrive");
    const t0 = Date.now();
    await server.close(100);
    expect(Date.now() - t0).toBeLessThan(4000); // cut off, not waiting for the 5 s handler
    expect((await p).code).toBe(Code.UNAVAILABLE);
    expect(signal!.aborted).toBe(true);
  });

  it("tcp - a client that ignores the notice is closed once quiet", async () => {
    const { server, address } = await startServer(async (call) => echoReply(call), { drainQuietMs: 30 });
    cleanup.push(() => server.close(0));
    const raw = await rawSocket(address);
    const got: Buffer[] = [];
    raw.on("data", (d: Buffer) => got.push(d));
    const t0 = Date.now();
    await server.close(5000);
    expect(Date.now() - t0).toBeLessThan(4000); // closed once quiet, before the grace period ended
    // The notice: a frame with sequence id 0 and crrst.
    const notice = Buffer.concat(got);
    expect(notice.readUInt32BE(8)).toBe(0);
    expect(notice.includes(Buffer.from("crrst"))).toBe(true);
    raw.destroy();
  });
});

function rawSocket(address: string): Promise<Socket> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const s = connect({ host: host!, port: Number(port) }, () => resolve(s));
    s.on("error", reject);
  });
}

/** The bytes the client transport writes for a request, captured by a throwaway server. */
async function captureRequest(req: ReturnType<typeof request>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = createServer((s) => s.on("data", (d: Buffer) => chunks.push(d)));
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
  const c = new TcpClientTransport({ address: `127.0.0.1:${(sink.address() as { port: number }).port}` });
  void unaryCall(c, req).catch(() => {});
  const expected = () => {
    const all = Buffer.concat(chunks);
    return all.length >= 4 && all.length >= all.readUInt32BE(0) + 4;
  };
  await until(expected, 2000, "request bytes");
  await c.close();
  await new Promise<void>((r) => sink.close(() => r()));
  return Buffer.concat(chunks);
}

// Keep the imports honest for the type checker.
void TcpServerTransport;
void Echo;
