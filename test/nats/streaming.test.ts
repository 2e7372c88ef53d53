/**
 * Streaming over NATS through the seam (ClientTransport.stream / StreamDispatcher): all three
 * kinds, credit-based backpressure both ways, errors mid-stream, cancellation from either side,
 * deadlines and a vanished peer, against a real nats-server on 127.0.0.1.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { expect, it } from "vitest";
import { Code, RpcError, Cancellation, type ClientTransport, type Headers } from "meridian-rpc";
import { statusToHeaders, type IncomingStream, type StreamDispatcher } from "meridian-rpc/transport";
import { EchoReply, EchoRequest } from "../rpc/gen/echo.js";
import { until } from "../tcp/helpers.js";
import { describeWithNats, rejection, StreamService, Tracker, useNatsServer } from "./helpers.js";
import { openStream, type MessageStream } from "../support/message-calls.js";

type StreamMethod = (typeof StreamService.methods)[keyof typeof StreamService.methods];

function open(c: ClientTransport, method: StreamMethod, opts: { timeoutMs?: number; signal?: Cancellation; headers?: Headers } = {}): MessageStream {
  return openStream(c, {
    service: StreamService.typeName,
    method,
    headers: opts.headers ?? { "x-region-id": "cn-north" },
    deadline: opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs,
    signal: opts.signal ?? new Cancellation(),
    endpoint: undefined,
  });
}

async function collect(s: MessageStream): Promise<EchoReply[]> {
  const out: EchoReply[] = [];
  for await (const m of s.responses) out.push(m as EchoReply);
  return out;
}

const reply = (text: string, count = 0) => (w: Parameters<Parameters<IncomingStream["send"]>[0]>[0]) => EchoReply.encodeTo(EchoReply.create({ text, count }), w);

describeWithNats("nats streaming - through the seam", () => {
  const t = new Tracker();
  const nats = useNatsServer(t);

  /** A server of StreamService whose stream dispatcher is `streams`; unary calls are refused. */
  function serve(streams: StreamDispatcher, options: { streamWindow?: number; heartbeatMs?: number; connection?: Awaited<ReturnType<typeof connect>> } = {}) {
    return t.server(nats.url, async () => ({ headers: statusToHeaders(new RpcError(Code.UNIMPLEMENTED, "streams only"), {}) }), {
      services: [StreamService],
      streams,
      ...options,
    });
  }

  it("nats streaming - server streaming: every message in order, headers first, OK trailers last", async () => {
    let seen: IncomingStream | undefined;
    await serve(async (stream) => {
      seen = stream;
      let first: EchoRequest | undefined;
      for await (const p of stream.requests) first ??= EchoRequest.decode(p);
      stream.sendHeaders({ "x-served-region": "cn-east" });
      for (let i = 0; i < first!.delayMs; i++) await stream.send(reply(first!.text, i));
      return { "x-done": "yes" };
    });
    const c = t.client(nats.url);
    const s = open(c, StreamService.methods.ticks, { timeoutMs: 5000 });
    await s.send(EchoRequest.create({ text: "tick", delayMs: 100 }));
    await s.closeSend();
    const got = await collect(s);
    expect(got.map((m) => m.count)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(await s.headers).toEqual({ "x-served-region": "cn-east" });
    expect(await s.trailers).toEqual({ "x-done": "yes" });
    expect(seen!.service).toBe("rpctest.Streams");
    expect(seen!.method).toBe("Ticks");
    expect(seen!.headers).toEqual({ "x-region-id": "cn-north" });
    expect(seen!.deadline! - Date.now()).toBeGreaterThan(3000);
  });

  it("nats streaming - client streaming: many requests, one reply", async () => {
    await serve(async (stream) => {
      const texts: string[] = [];
      for await (const p of stream.requests) texts.push(EchoRequest.decode(p).text);
      await stream.send(reply(texts.join(","), texts.length));
      return {};
    });
    const s = open(t.client(nats.url), StreamService.methods.collect);
    for (let i = 0; i < 200; i++) await s.send(EchoRequest.create({ text: String(i) }));
    await s.closeSend();
    const got = await collect(s);
    expect(got).toHaveLength(1);
    expect(got[0]!.count).toBe(200);
    expect(got[0]!.text.split(",").slice(0, 3)).toEqual(["0", "1", "2"]);
  });

  it("nats streaming - bidirectional: a reply per request, interleaved", async () => {
    await serve(async (stream) => {
      for await (const p of stream.requests) await stream.send(reply(`re:${EchoRequest.decode(p).text}`));
      return {};
    });
    const s = open(t.client(nats.url), StreamService.methods.chat);
    const it = s.responses[Symbol.asyncIterator]();
    for (let i = 0; i < 20; i++) {
      await s.send(EchoRequest.create({ text: `m${i}` }));
      const r = await it.next();
      expect((r.value as EchoReply).text).toBe(`re:m${i}`);
    }
    await s.closeSend();
    expect((await it.next()).done).toBe(true);
  });

  it("nats streaming - backpressure: a slow reader holds the server to its credit", async () => {
    let sent = 0;
    let finished = false;
    await serve(
      async (stream) => {
        for (let i = 0; i < 200; i++) {
          await stream.send(reply("x", i));
          sent++;
        }
        finished = true;
        return {};
      },
      { streamWindow: 8 },
    );
    const c = t.client(nats.url, { streamWindow: 8 });
    const s = open(c, StreamService.methods.ticks);
    await s.closeSend();
    await sleep(300);
    // Nobody read: the server sent exactly the client's initial credit and waits.
    expect(sent).toBe(8);
    const it = s.responses[Symbol.asyncIterator]();
    let read = 0;
    while (read < 50) {
      await it.next();
      read++;
      // The server never runs ahead of what was read by more than the window.
      expect(sent - read).toBeLessThanOrEqual(8);
      if (read % 10 === 0) await sleep(20);
    }
    expect(finished).toBe(false);
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      read++;
    }
    expect(read).toBe(200);
    expect(finished).toBe(true);
  });

  it("nats streaming - backpressure: a handler that does not read holds the client's sends", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let received = 0;
    await serve(
      async (stream) => {
        await gate;
        for await (const _ of stream.requests) received++;
        return {};
      },
      { streamWindow: 4 },
    );
    const s = open(t.client(nats.url, { streamWindow: 4 }), StreamService.methods.collect);
    for (let i = 0; i < 4; i++) await s.send(EchoRequest.create({ text: `${i}` }));
    let fifth = false;
    const p = s.send(EchoRequest.create({ text: "4" })).then(() => (fifth = true));
    await sleep(200);
    expect(fifth).toBe(false);
    release();
    await p;
    for (let i = 5; i < 40; i++) await s.send(EchoRequest.create({ text: `${i}` }));
    await s.closeSend();
    await collect(s);
    expect(received).toBe(40);
  });

  it("nats streaming - an error mid-stream: the messages before it, then the RpcError; trailers carry the status", async () => {
    await serve(async (stream) => {
      for (let i = 0; i < 3; i++) await stream.send(reply("ok", i));
      return statusToHeaders(new RpcError(Code.RESOURCE_EXHAUSTED, "quota used up"), { "x-served-region": "cn-east" });
    });
    const s = open(t.client(nats.url), StreamService.methods.ticks);
    const got: EchoReply[] = [];
    const e = await rejection(
      (async () => {
        for await (const m of s.responses) got.push(m as EchoReply);
      })(),
    );
    expect(got).toHaveLength(3);
    expect(e.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(e.message).toBe("quota used up");
    expect(e.headers["x-served-region"]).toBe("cn-east");
    expect((await s.trailers)["rpc-status"]).toBe(String(Code.RESOURCE_EXHAUSTED));
    // The server failed: sending more is refused with the same error.
    expect((await rejection(s.send(EchoRequest.create({})))).code).toBe(Code.RESOURCE_EXHAUSTED);
  });

  it("nats streaming - the client cancels: the server's signal aborts and its sends fail", async () => {
    let serverError: unknown;
    let stream: IncomingStream | undefined;
    await serve(async (st) => {
      stream = st;
      try {
        for (let i = 0; ; i++) await st.send(reply("tick", i));
      } catch (e) {
        serverError = e;
      }
      return {};
    });
    const signal = new Cancellation();
    const s = open(t.client(nats.url), StreamService.methods.ticks, { signal });
    const it = s.responses[Symbol.asyncIterator]();
    await it.next();
    signal.abort(new Error("user left"));
    expect((await rejection(it.next())).code).toBe(Code.CANCELLED);
    await until(() => serverError !== undefined, 3000, "the server to see the cancel");
    expect((serverError as RpcError).code).toBe(Code.CANCELLED);
    expect(stream!.signal.aborted).toBe(true);
  });

  it("nats streaming - the server gives up early: the client's pending send and its responses fail", async () => {
    await serve(async (stream) => {
      const it = stream.requests[Symbol.asyncIterator]();
      await it.next();
      return statusToHeaders(new RpcError(Code.INVALID_ARGUMENT, "one is enough"), {});
    }, { streamWindow: 2 });
    const s = open(t.client(nats.url, { streamWindow: 2 }), StreamService.methods.collect);
    const sends = Array.from({ length: 10 }, (_, i) => s.send(EchoRequest.create({ text: `${i}` })));
    const e = await rejection(collect(s));
    expect(e.code).toBe(Code.INVALID_ARGUMENT);
    const results = await Promise.allSettled(sends);
    const rejected = results.filter((r) => r.status === "rejected");
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) expect(((r as PromiseRejectedResult).reason as RpcError).code).toBe(Code.INVALID_ARGUMENT);
  });

  it("nats streaming - a deadline ends the stream on both sides with DEADLINE_EXCEEDED", async () => {
    let stream: IncomingStream | undefined;
    await serve(async (st) => {
      stream = st;
      await new Promise((r) => st.signal.addEventListener("abort", r));
      return {};
    });
    const s = open(t.client(nats.url), StreamService.methods.chat, { timeoutMs: 200 });
    const t0 = Date.now();
    const e = await rejection(collect(s));
    expect(e.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(1000);
    await until(() => stream?.signal.aborted === true, 2000, "the server's signal");
    expect((stream!.signal.reason as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it("nats streaming - no responders is UNAVAILABLE notSent; a server without stream support UNIMPLEMENTED", async () => {
    const c = t.client(nats.url);
    const s = open(c, StreamService.methods.ticks);
    const e = await rejection(collect(s));
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(e.notSent).toBe(true);
    await t.server(nats.url, async () => ({ headers: {} }), { services: [StreamService] });
    const u = await rejection(collect(open(c, StreamService.methods.ticks)));
    expect(u.code).toBe(Code.UNIMPLEMENTED);
  });

  it("nats streaming - a server that vanishes is noticed by the heartbeat", async () => {
    const nc = await connect({ servers: nats.url });
    await serve(
      async (st) => {
        await new Promise((r) => st.signal.addEventListener("abort", r));
        return {};
      },
      { connection: nc, heartbeatMs: 100 },
    );
    const s = open(t.client(nats.url, { heartbeatMs: 100 }), StreamService.methods.chat);
    await s.send(EchoRequest.create({ text: "hello" }));
    await sleep(250); // pings flow both ways; the stream stays up
    const t0 = Date.now();
    await nc.close(); // the server's connection goes without a word to the client
    const e = await rejection(collect(s));
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(e.message).toMatch(/sent nothing for/);
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it("nats streaming - many streams at once share one connection", async () => {
    await serve(async (stream) => {
      for await (const p of stream.requests) await stream.send(reply(EchoRequest.decode(p).text));
      return {};
    });
    const c = t.client(nats.url);
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const s = open(c, StreamService.methods.chat, { timeoutMs: 10_000 });
        for (let j = 0; j < 10; j++) await s.send(EchoRequest.create({ text: `${i}.${j}` }));
        await s.closeSend();
        return (await collect(s)).map((m) => m.text);
      }),
    );
    results.forEach((texts, i) => expect(texts).toEqual(Array.from({ length: 10 }, (_, j) => `${i}.${j}`)));
  });
});
