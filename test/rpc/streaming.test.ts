/**
 * Streaming in the runtime, over the memory transport (the shared suite runs in
 * test/conformance/): what only the runtime decides (retry rules for request streams, transports without
 * streaming, the shape of a ResponseStream).
 */
import { afterEach, describe, expect, it } from "vitest";
import { Cancellation, Code, RpcError, createClient, createServer, type ClientTransport } from "meridian-rpc";
import type { ClientStream, TransportStreamRequest } from "meridian-rpc/transport";
import { MemoryNetwork, MemoryClientTransport, MemoryServerTransport } from "meridian-rpc/transports/memory";
import { EchoReply, EchoRequest, EchoService, StreamService } from "./gen/echo.js";
import { drain, echoUnary } from "../conformance/streaming-suite.js";
import { rejection } from "../support/rejection.js";
import { openStream } from "../support/message-calls.js";


/** A ClientStream that fails `notSent` on its first send, counting sends. */
function fakeStream(seen: { sends: number }): ClientStream {
  const err = new RpcError(Code.UNAVAILABLE, "connection refused", { notSent: true });
  let fail!: (e: RpcError) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  return {
    async send() {
      seen.sends++;
      fail(err);
      throw err;
    },
    async closeSend() {},
    responses: { [Symbol.asyncIterator]: () => ({ next: () => failed }) },
    headers: failed.catch(() => ({})),
    trailers: failed.catch(() => ({})),
    cancel() {},
  };
}

describe("streaming - runtime rules", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()!();
  });

  it("streaming - retry: a request stream is retried only while none of it was taken", async () => {
    let opened = 0;
    const seen = { sends: 0 };
    const failing = (failOnSend: boolean): ClientTransport => ({
      unary: () => Promise.reject(new Error("unused")),
      stream: () => {
        opened++;
        if (!failOnSend) throw new RpcError(Code.UNAVAILABLE, "no connection", { notSent: true });
        return fakeStream(seen);
      },
      close: async () => {},
    });
    // The transport fails before taking any request: safe to retry (nothing was taken or sent).
    const early = createClient(StreamService, { transport: failing(false), retry: { maxAttempts: 3, initialBackoffMs: 1 } });
    const e1 = await rejection(early.collect([{ text: "a" }]));
    expect(e1.code).toBe(Code.UNAVAILABLE);
    expect(opened).toBe(3);
    // The transport took a request, then failed (even `notSent`): the stream cannot be replayed.
    opened = 0;
    const late = createClient(StreamService, { transport: failing(true), retry: { maxAttempts: 3, initialBackoffMs: 1 } });
    const e2 = await rejection(late.collect([{ text: "a" }, { text: "b" }]));
    expect(e2.code).toBe(Code.UNAVAILABLE);
    expect(opened).toBe(1);
    expect(seen.sends).toBe(1);
  });

  it("streaming - backup requests never apply to streams", async () => {
    let opened = 0;
    const network = new MemoryNetwork();
    const server = createServer({ transport: new MemoryServerTransport({ name: "b", network }) });
    server.register(StreamService, {
      async *ticks() {
        opened++;
        await new Promise((r) => setTimeout(r, 60));
        yield { count: 1 };
      },
    });
    await server.listen();
    cleanup.push(() => server.close({ graceMs: 0 }));
    const client = createClient(StreamService, { transport: new MemoryClientTransport({ address: "memory://b", network }), backup: { delayMs: 5 } });
    expect((await drain(client.ticks({}))).items).toHaveLength(1);
    expect(opened).toBe(1);
  });

  it("streaming - a transport without streaming answers UNIMPLEMENTED notSent", async () => {
    const transport: ClientTransport = { unary: () => Promise.reject(new Error("unused")), close: async () => {} };
    const client = createClient(StreamService, { transport });
    const { error } = await drain(client.ticks({}));
    expect(error).toMatchObject({ code: Code.UNIMPLEMENTED, notSent: true });
    expect((await rejection(client.collect([]))).code).toBe(Code.UNIMPLEMENTED);
  });

  it("streaming - a unary method called as a stream, or the reverse, is UNIMPLEMENTED", async () => {
    const network = new MemoryNetwork();
    const server = createServer({ transport: new MemoryServerTransport({ name: "k", network }) });
    server.register(StreamService, { collect: async () => ({}) }).register(EchoService, echoUnary);
    await server.listen();
    cleanup.push(() => server.close({ graceMs: 0 }));
    const transport = new MemoryClientTransport({ address: "memory://k", network });
    // A stream opened on the unary method EchoService/Echo through the seam.
    const s = openStream(transport, {
      service: EchoService.typeName,
      method: EchoService.methods.echo,
      headers: {},
      deadline: undefined,
      signal: new Cancellation(),
      endpoint: undefined,
    } satisfies TransportStreamRequest);
    await s.closeSend();
    const it = s.responses[Symbol.asyncIterator]();
    const err = await rejection(it.next());
    expect(err.code).toBe(Code.UNIMPLEMENTED);
    expect(err.message).toContain("unary");
  });

  it("streaming - a ResponseStream's headers and trailers settle even when nobody iterates", async () => {
    const network = new MemoryNetwork();
    const client = createClient(StreamService, { transport: new MemoryClientTransport({ address: "memory://nobody", network }) });
    const s = client.ticks({});
    expect((await s.trailers)["rpc-status"]).toBe(String(Code.UNAVAILABLE));
    expect((await s.headers)["rpc-status"]).toBe(String(Code.UNAVAILABLE));
    const { error } = await drain(s);
    expect(error).toMatchObject({ code: Code.UNAVAILABLE, notSent: true });
  });

  it("streaming - the memory transport encodes and decodes every message", async () => {
    const network = new MemoryNetwork();
    const server = createServer({ transport: new MemoryServerTransport({ name: "c", network }) });
    const seen: EchoRequest[] = [];
    server.register(StreamService, {
      async *chat(requests) {
        for await (const r of requests) {
          seen.push(r);
          yield { text: r.text, count: r.delayMs };
        }
      },
    });
    await server.listen();
    cleanup.push(() => server.close({ graceMs: 0 }));
    const client = createClient(StreamService, { transport: new MemoryClientTransport({ address: "memory://c", network }) });
    const { items } = await drain(client.chat([{ text: "é", delayMs: 7 }]));
    expect(items).toEqual([EchoReply.create({ text: "é", count: 7 })]);
    expect(seen).toEqual([EchoRequest.create({ text: "é", delayMs: 7 })]);
  });
});
