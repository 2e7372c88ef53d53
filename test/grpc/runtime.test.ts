/**
 * Streaming through the runtime over the gRPC transport: typed streaming handlers of
 * createServer answering a plain @grpc/grpc-js client, typed streaming calls of createClient
 * against a plain grpc-js server, and Meridian on both ends. Real sockets on 127.0.0.1.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { Code, Metainfo, RpcError, createClient, createServer, type CallContext } from "meridian-rpc";
import { GrpcClientTransport, GrpcServerTransport } from "meridian-rpc/transports/grpc";
import { Interop, Reply, Request } from "./gen/interop.js";
import { Observed, plainClient, startPlainServer, until, type PlainReply } from "./helpers.js";

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

/** What the typed handlers saw. */
const seen: { headers?: Record<string, string>; aborted?: RpcError; user?: string } = {};

/** A Meridian server with typed handlers for every method of Interop. */
async function runtimeServer(): Promise<string> {
  const server = createServer({ transport: new GrpcServerTransport({ services: [Interop] }), metrics: false, logger: { error: () => {} } }).register(
    Interop,
    {
      unary: (req) => ({ text: req.text }),
      serverStream: async function* (req: Request, ctx: CallContext) {
        seen.headers = ctx.headers;
        seen.user = ctx.metainfo.getTransient("user");
        ctx.responseHeaders["x-served-by"] = "runtime";
        ctx.signal.addEventListener("abort", () => (seen.aborted = ctx.signal.reason as RpcError));
        for (let i = 0; i < req.count; i++) {
          if (req.failCode !== 0 && i === req.failAfter) throw new RpcError(req.failCode as Code, "stop");
          if (req.delayMs > 0) await new Promise((r) => setTimeout(r, req.delayMs));
          yield { seq: i, text: req.text, id: req.id };
        }
      },
      clientStream: async (requests: AsyncIterable<Request>) => {
        const texts: string[] = [];
        for await (const r of requests) texts.push(r.text);
        return { text: texts.join(","), seq: texts.length };
      },
      bidi: async function* (requests: AsyncIterable<Request>) {
        let i = 0;
        for await (const r of requests) {
          if (r.failCode !== 0) throw new RpcError(r.failCode as Code, `refused ${r.text}`);
          yield { text: r.text, seq: i++ };
        }
      },
    },
  );
  const { address } = await server.listen();
  cleanup.push(() => server.close({ graceMs: 0 }));
  return address;
}

function collect(stream: grpc.ClientReadableStream<PlainReply> | grpc.ClientDuplexStream<unknown, PlainReply>) {
  const messages: PlainReply[] = [];
  stream.on("data", (m: PlainReply) => messages.push(m));
  stream.on("error", () => {});
  return new Promise<{ messages: PlainReply[]; status: grpc.StatusObject }>((resolve) =>
    stream.on("status", (status) => setImmediate(() => resolve({ messages, status }))),
  );
}

describe("grpc runtime - typed streaming handlers of createServer, plain grpc-js client", () => {
  it("grpc runtime - server streaming, with metadata both ways", async () => {
    const address = await runtimeServer();
    const c = plainClient(address);
    cleanup.push(() => c.close());
    const md = new grpc.Metadata();
    md.set("rpc_transit_user", "alice");
    md.set("x-region-id", "eu");
    const stream = c.ServerStream({ text: "s", count: 5, id: "12345678901234567" }, md);
    let headers: grpc.Metadata | undefined;
    stream.on("metadata", (m) => (headers = m));
    const { messages, status } = await collect(stream);
    expect(status.code).toBe(grpc.status.OK);
    expect(messages.map((m) => m.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(messages[4]!.id).toBe("12345678901234567");
    expect(headers!.get("x-served-by")).toEqual(["runtime"]);
    expect(seen.user).toBe("alice");
    expect(seen.headers!["x-region-id"]).toBe("eu");
  });

  it("grpc runtime - a handler failing mid-stream; a cancelled stream aborts the handler", async () => {
    const address = await runtimeServer();
    const c = plainClient(address);
    cleanup.push(() => c.close());
    const failed = await collect(c.ServerStream({ count: 5, failCode: Code.ABORTED, failAfter: 2 }));
    expect(failed.messages.length).toBe(2);
    expect(failed.status.code).toBe(grpc.status.ABORTED);
    expect(failed.status.details).toBe("stop");

    seen.aborted = undefined;
    const stream = c.ServerStream({ count: 1000, delayMs: 5 });
    const result = collect(stream);
    stream.once("data", () => stream.cancel());
    expect((await result).status.code).toBe(grpc.status.CANCELLED);
    await until(() => seen.aborted !== undefined, 3000, "the handler's abort");
    expect(seen.aborted!.code).toBe(Code.CANCELLED);
  });

  it("grpc runtime - client streaming and bidi", async () => {
    const address = await runtimeServer();
    const c = plainClient(address);
    cleanup.push(() => c.close());
    const reply = await new Promise<PlainReply | undefined>((resolve, reject) => {
      const call = c.ClientStream(new grpc.Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res)));
      for (const t of ["a", "b", "c"]) call.write({ text: t });
      call.end();
    });
    expect(reply).toMatchObject({ text: "a,b,c", seq: 3 });
    const bidi = c.Bidi();
    const result = collect(bidi);
    bidi.write({ text: "x" });
    bidi.write({ text: "y" });
    bidi.write({ text: "z", failCode: Code.FAILED_PRECONDITION });
    const { messages, status } = await result;
    expect(messages.map((m) => m.text)).toEqual(["x", "y"]);
    expect(status.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(status.details).toBe("refused z");
  });
});

describe("grpc runtime - typed streaming calls of createClient", () => {
  it("grpc runtime - against a plain grpc-js server: every kind, errors and deadlines", async () => {
    const observed = new Observed();
    const { server, address } = await startPlainServer(observed);
    cleanup.push(() => server.forceShutdown());
    const transport = new GrpcClientTransport();
    cleanup.push(() => transport.close());
    const client = createClient(Interop, { transport, endpoints: [{ address }], region: "cn-north" });

    const stream = client.serverStream({ text: "s", count: 4, id: 7n }, { headers: { "x-test": "rt" } });
    const replies: Reply[] = [];
    for await (const r of stream) replies.push(r);
    expect(replies.map((r) => `${r.seq}:${r.id}`)).toEqual(["0:7", "1:7", "2:7", "3:7"]);
    expect((await stream.headers)["x-served-by"]).toBe("plain");
    expect((await stream.trailers)["x-trailer"]).toBe("done");
    expect(observed.headers["x-test"]).toBe("rt");
    expect(observed.headers["x-region-id"]).toBe("cn-north");

    const reply = await client.clientStream([{ text: "a" }, { text: "b" }]);
    expect(reply).toMatchObject({ text: "a,b", seq: 2 });

    const texts: string[] = [];
    for await (const r of client.bidi([{ text: "p" }, { text: "q" }])) texts.push(r.text);
    expect(texts).toEqual(["p", "q"]);

    let error: unknown;
    try {
      for await (const _ of client.serverStream({ count: 5, failCode: Code.UNAUTHENTICATED, failAfter: 1 })) {
        /* consume */
      }
    } catch (e) {
      error = e;
    }
    expect((error as RpcError).code).toBe(Code.UNAUTHENTICATED);

    error = undefined;
    try {
      for await (const _ of client.serverStream({ count: 100, delayMs: 50 }, { timeoutMs: 200 })) {
        /* consume */
      }
    } catch (e) {
      error = e;
    }
    expect((error as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it("grpc runtime - Meridian to Meridian: metainfo and early exit cancels the server", async () => {
    const address = await runtimeServer();
    const transport = new GrpcClientTransport();
    cleanup.push(() => transport.close());
    const client = createClient(Interop, { transport, endpoints: [{ address }] });
    seen.aborted = undefined;
    let n = 0;
    for await (const r of client.serverStream({ count: 1000, delayMs: 2 }, { metainfo: new Metainfo().setTransient("user", "bob") })) {
      expect(r.seq).toBe(n);
      if (++n === 3) break;
    }
    expect(seen.user).toBe("bob");
    await until(() => seen.aborted !== undefined, 3000, "the handler's abort");
    expect(seen.aborted!.code).toBe(Code.CANCELLED);
  });
});
