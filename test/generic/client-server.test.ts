/**
 * The generic client and the generic server on the in-process transport, against generated code
 * on the other side: JSON calls of every method kind, bytes passed through untouched, the
 * errors for bad input, a JSON handler serving typed clients, and a gateway forwarding calls for
 * services it has no code for.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { Code, RpcError, createClient, createServer, type Server } from "meridian-rpc";
import { ProtoSchema, createGenericClient, createGenericHandler, createGenericServer, rawService, type JsonValue } from "meridian-rpc/generic";
import { GrpcServerTransport } from "meridian-rpc/transports/grpc";
import { MemoryNetwork, MemoryClientTransport, MemoryServerTransport } from "meridian-rpc/transports/memory";
import { plainClient, plainUnary } from "../grpc/helpers.js";
import { registerEcho } from "./helpers.js";
import { EchoReply, EchoRequest, EchoService, StreamService } from "../rpc/gen/echo.js";

const PROTO_DIR = fileURLToPath(new URL("../rpc/proto", import.meta.url));
// A name relative to the include directory, as grpcurl's -proto takes it.
const proto = { proto: ["echo.proto"], includeDirs: [PROTO_DIR] };

let network = new MemoryNetwork();
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ graceMs: 0 })));
  network = new MemoryNetwork();
});

async function listen(server: Server): Promise<string> {
  servers.push(server);
  return (await server.listen()).address;
}

/** A typed server of EchoService and StreamService (generated code), recording the headers it saw. */
async function typedServer(seen: Record<string, string>[] = []): Promise<string> {
  return listen(registerEcho(createServer({ transport: new MemoryServerTransport({ network }), region: "eu-1", metrics: false }), seen));
}

function generic(address: string, service = "rpctest.EchoService") {
  return createGenericClient({ ...proto, service, transport: new MemoryClientTransport({ address, network }) });
}

describe("generic client - JSON calls against generated code", () => {
  it("generic client - unary: JSON in, JSON out, headers through", async () => {
    const seen: Record<string, string>[] = [];
    const client = createGenericClient({
      ...proto,
      service: "rpctest.EchoService",
      region: "us-2",
      transport: new MemoryClientTransport({ address: await typedServer(seen), network }),
    });
    const call = client.call("Echo", { text: "hi", delayMs: 7 }, { headers: { "x-trace": "t1" }, consistency: "eventual" });
    expect(await call).toEqual({ text: "hi", servedBy: "meridian", count: 7 });
    expect((await call.headers)["x-served-region"]).toBe("eu-1");
    expect(seen[0]).toMatchObject({ "x-trace": "t1", "x-region-id": "us-2", "x-consistency-level": "eventual" });
    // The lowerCamelCase key names the method as well.
    expect(await client.call("echo", { text: "again" })).toMatchObject({ text: "again" });
    expect(client.methods.map((m) => `${m.name}:${m.kind}`)).toEqual(["Echo:unary", "Get:unary", "Put:unary", "Watch:server_streaming"]);
  });

  it("generic client - server streaming: for await gives each reply, await gives them all", async () => {
    const client = generic(await typedServer());
    const got: JsonValue[] = [];
    for await (const r of client.call("Watch", { text: "w" })) got.push(r);
    expect(got).toEqual([
      { text: "w", count: 1 },
      { text: "w", count: 2 },
      { text: "w", count: 3 },
    ]);
    expect(await client.call("Watch", { text: "x" })).toEqual([
      { text: "x", count: 1 },
      { text: "x", count: 2 },
      { text: "x", count: 3 },
    ]);
  });

  it("generic client - client streaming and bidi take iterables of JSON", async () => {
    const client = generic(await typedServer(), "rpctest.StreamService");
    expect(await client.call("Collect", [{ text: "a" }, { text: "b" }])).toEqual({ text: "a,b", count: 2 });
    async function* requests(): AsyncGenerator<JsonValue> {
      yield { text: "x" };
      yield { text: "y" };
    }
    const replies: JsonValue[] = [];
    for await (const r of client.call("Chat", requests())) replies.push(r);
    expect(replies).toEqual([{ text: "X" }, { text: "Y" }]);
  });

  it("generic client - a unary call is also iterable, once", async () => {
    const client = generic(await typedServer());
    const got: JsonValue[] = [];
    for await (const r of client.call("Echo", { text: "one" })) got.push(r);
    expect(got).toEqual([{ text: "one", servedBy: "meridian" }]);
    const call = client.call("Echo", { text: "two" });
    await call;
    expect(() => call[Symbol.asyncIterator]()).toThrow(/either awaited or iterated/);
  });

  it("generic client - cancel() and the caller's signal cancel a call", async () => {
    const client = generic(await typedServer());
    const call = client.call("Get", { delayMs: 5000 });
    setTimeout(() => call.cancel(), 10);
    await expect(call).rejects.toMatchObject({ code: Code.CANCELLED });
    const ac = new AbortController();
    const second = client.call("Get", { delayMs: 5000 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 10);
    await expect(second).rejects.toMatchObject({ code: Code.CANCELLED });
    const stream = client.call("Watch", { text: "c" });
    stream.cancel();
    await expect(stream).rejects.toMatchObject({ code: Code.CANCELLED });
  });

  it("generic client - server errors and deadlines come back as RpcErrors", async () => {
    const client = generic(await typedServer());
    await expect(client.call("Echo", { text: "missing" })).rejects.toMatchObject({ code: Code.NOT_FOUND, message: "no such thing" });
    await expect(client.call("Get", { delayMs: 1000 }, { timeoutMs: 30 })).rejects.toMatchObject({ code: Code.DEADLINE_EXCEEDED });
  });
});

describe("generic client - bad input is INVALID_ARGUMENT naming what is wrong", () => {
  it("generic client - JSON that does not fit names the field, and nothing is sent", async () => {
    const seen: Record<string, string>[] = [];
    const client = generic(await typedServer(seen));
    const err = await client.call("Echo", { text: 5 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toMatchObject({ code: Code.INVALID_ARGUMENT, message: "rpctest.EchoRequest.text: expected a string, got 5" });
    await expect(client.call("Echo", { txt: "a" })).rejects.toThrow(/rpctest.EchoRequest.txt: unknown field "txt": rpctest.EchoRequest has text, delayMs, key/);
    await expect(client.call("Echo", { delayMs: -1 })).rejects.toThrow(/delayMs: -1 is out of range for uint32/);
    expect(seen).toEqual([]);
  });

  it("generic client - an unknown method names the methods there are", async () => {
    const client = generic(await typedServer());
    await expect(client.call("Ech", {})).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      message: "unknown method Ech of rpctest.EchoService: it has Echo, Get, Put, Watch",
    });
    await expect(client.callBinary("Nope", new Uint8Array(0))).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
  });

  it("generic client - an unknown service, or a .proto that does not parse, fails createGenericClient", () => {
    const transport = new MemoryClientTransport({ network });
    expect(() => createGenericClient({ ...proto, service: "rpctest.Nope", transport })).toThrow(
      expect.objectContaining({ code: Code.INVALID_ARGUMENT, message: expect.stringMatching(/unknown service rpctest.Nope: the .proto files loaded define rpctest.EchoService, rpctest.AdminService, rpctest.StreamService/) }),
    );
    const bad = "syntax = \"proto3\";\npackage x;\nmessage A {\n  strin name = 1;\n}\n";
    expect(() => createGenericClient({ proto: ["bad.proto"], sources: { "bad.proto": bad }, service: "x.S", transport })).toThrow(
      expect.objectContaining({ code: Code.INVALID_ARGUMENT, message: 'bad.proto:4:3: unknown type "strin"' }),
    );
    expect(() => createGenericClient({ proto: ["missing.proto"], service: "x.S", transport })).toThrow(/missing.proto: file not found/);
  });
});

describe("generic client - bytes through untouched", () => {
  it("generic client - callBinary sends the bytes as given and returns the reply's bytes as they came", async () => {
    let received: Uint8Array | undefined;
    const server = createServer({ transport: new MemoryServerTransport({ network }), metrics: false });
    // A raw echo: the payload back as it arrived, with its (non-canonical) unknown field.
    server.register(rawService("rpctest.EchoService", ["Echo"]), {
      Echo: (payload: Uint8Array) => {
        received = Uint8Array.from(payload);
        return payload;
      },
    });
    const client = generic(await listen(server));
    const bytes = Uint8Array.from([...EchoRequest.encode(EchoRequest.create({ text: "raw" })), 0xf8, 0x07, 0x01]);
    const reply = await client.callBinary("Echo", bytes);
    expect(received).toEqual(bytes);
    expect(Uint8Array.from(reply)).toEqual(bytes);
    // The same reply through JSON: the unknown field (999) is not in the JSON mapping.
    expect(await client.call("Echo", { text: "raw" })).toEqual({ text: "raw" });
  });

  it("generic client - streamBinary streams the reply messages' bytes", async () => {
    const client = generic(await typedServer());
    const replies: string[] = [];
    for await (const b of client.streamBinary("Watch", EchoRequest.encode(EchoRequest.create({ text: "s" })))) {
      replies.push(`${EchoReply.decode(b).text}${EchoReply.decode(b).count}`);
    }
    expect(replies).toEqual(["s1", "s2", "s3"]);
    await expect(client.callBinary("Watch", new Uint8Array(0))).rejects.toThrow(/is server_streaming: use streamBinary/);
  });
});

describe("generic server - a JSON handler serves typed clients", () => {
  async function jsonServer(): Promise<string> {
    const handler = createGenericHandler({
      ...proto,
      handler: async ({ service, method, request, ctx }) => {
        const req = request as Record<string, JsonValue>;
        switch (`${service}/${method}`) {
          case "rpctest.EchoService/Echo":
            if (req["text"] === "bad") return { text: 5 };
            if (req["text"] === "denied") throw new RpcError(Code.PERMISSION_DENIED, "no");
            return { text: `${String(req["text"])} from ${ctx.headers["x-region-id"] ?? "?"}`, count: 1 };
          case "rpctest.EchoService/Watch":
            return (async function* () {
              for (let i = 1; i <= 2; i++) yield { text: String(req["text"]), count: i };
            })();
          case "rpctest.StreamService/Collect": {
            const texts: string[] = [];
            for await (const r of request as AsyncIterable<Record<string, JsonValue>>) texts.push(String(r["text"]));
            return { text: texts.join("+") };
          }
          default:
            throw new RpcError(Code.UNIMPLEMENTED, `${service}/${method}`);
        }
      },
    });
    expect(handler.services.map((s) => s.typeName)).toEqual(["rpctest.EchoService", "rpctest.AdminService", "rpctest.StreamService"]);
    const server = createServer({ transport: new MemoryServerTransport({ network }), metrics: false, logger: { error: () => undefined } });
    handler.register(server);
    return listen(server);
  }

  it("generic server - unary, server streaming and client streaming through JSON", async () => {
    const address = await jsonServer();
    const echo = createClient(EchoService, { transport: new MemoryClientTransport({ address, network }), region: "ap-3" });
    expect(await echo.echo({ text: "hey" })).toMatchObject({ text: "hey from ap-3", count: 1 });
    const counts: number[] = [];
    for await (const r of echo.watch({ text: "w" })) counts.push(r.count);
    expect(counts).toEqual([1, 2]);
    const streams = createClient(StreamService, { transport: new MemoryClientTransport({ address, network }) });
    expect(await streams.collect([{ text: "a" }, { text: "b" }])).toMatchObject({ text: "a+b" });
  });

  it("generic server - handler errors pass through; a response that does not fit is INTERNAL naming the field", async () => {
    const address = await jsonServer();
    const echo = createClient(EchoService, { transport: new MemoryClientTransport({ address, network }) });
    await expect(echo.echo({ text: "denied" })).rejects.toMatchObject({ code: Code.PERMISSION_DENIED });
    await expect(echo.echo({ text: "bad" })).rejects.toMatchObject({
      code: Code.INTERNAL,
      message: expect.stringContaining("rpctest.EchoReply.text: expected a string, got 5"),
    });
    await expect(echo.get({})).rejects.toMatchObject({ code: Code.UNIMPLEMENTED });
  });
});

describe("generic server - a gateway for services it has no code for", () => {
  it("generic server - the fallback forwards unknown services' bytes upstream, through the server's middleware", async () => {
    const upstream = await typedServer();
    const forward = createGenericClient({ ...proto, service: "rpctest.EchoService", transport: new MemoryClientTransport({ address: upstream, network }) });
    const seen: string[] = [];
    const gateway = createGenericServer({
      transport: new MemoryServerTransport({ network }),
      metrics: false,
      middleware: [(next) => async (req) => {
        seen.push(`${req.service.typeName}/${req.method.name}`);
        return next(req);
      }],
      accepts: (service) => service === "rpctest.EchoService",
      fallback: ({ method, payload, ctx }) => forward.callBinary(method, payload, { headers: { "x-via": "gateway" }, parent: ctx }),
    });
    // A service the gateway has code for answers itself.
    gateway.register(StreamService, { collect: async () => ({ text: "gateway's own" }) });
    const address = await listen(gateway);
    const echo = createClient(EchoService, { transport: new MemoryClientTransport({ address, network }) });
    expect(await echo.echo({ text: "via", delayMs: 3 })).toMatchObject({ text: "via", servedBy: "meridian", count: 3 });
    expect(await echo.echo({ text: "again" })).toMatchObject({ text: "again" });
    await expect(echo.echo({ text: "missing" })).rejects.toMatchObject({ code: Code.NOT_FOUND });
    expect(seen).toEqual(["rpctest.EchoService/Echo", "rpctest.EchoService/Echo", "rpctest.EchoService/Echo"]);
    const streams = createClient(StreamService, { transport: new MemoryClientTransport({ address, network }) });
    expect(await streams.collect([{ text: "x" }])).toMatchObject({ text: "gateway's own" });
    // Services the fallback does not accept are UNIMPLEMENTED.
    const admin = createClient(ProtoSchema.load(proto).descriptor("rpctest.AdminService"), { transport: new MemoryClientTransport({ address, network }) });
    await expect((admin as Record<string, (r: object) => Promise<unknown>>)["status"]!({})).rejects.toMatchObject({ code: Code.UNIMPLEMENTED });
  });

  it("generic server - the fallback learns a bounded number of methods", async () => {
    const gateway = createGenericServer({
      transport: new MemoryServerTransport({ network }),
      metrics: false,
      maxFallbackMethods: 1,
      fallback: ({ payload }) => payload,
    });
    const address = await listen(gateway);
    const raw = (name: string) => createClient(rawService("made.Up", [name]), { transport: new MemoryClientTransport({ address, network }) });
    const a = raw("A") as unknown as Record<string, (b: Uint8Array) => Promise<Uint8Array>>;
    expect(Array.from(await a["A"]!(Uint8Array.from([8, 1])))).toEqual([8, 1]);
    const b = raw("B") as unknown as Record<string, (b: Uint8Array) => Promise<Uint8Array>>;
    await expect(b["B"]!(Uint8Array.from([8, 1]))).rejects.toMatchObject({ code: Code.UNIMPLEMENTED });
  });
});

describe("generic server - over gRPC to a plain @grpc/grpc-js client", () => {
  it("generic server - a JSON handler answers a proto-loader client: int64, bytes, metadata", async () => {
    const dir = fileURLToPath(new URL("../grpc/proto", import.meta.url));
    const handler = createGenericHandler({
      proto: [`${dir}/interop.proto`],
      includeDirs: [dir],
      handler: ({ method, request, ctx }) => {
        const req = request as Record<string, JsonValue>;
        ctx.responseHeaders["x-generic"] = method;
        return { text: `${String(req["text"])}!`, id: req["id"] ?? "0", payload: "3q2+7w==", seen: [ctx.headers["x-from"] ?? ""] };
      },
    });
    const server = createServer({ transport: new GrpcServerTransport({ services: handler.services }), metrics: false });
    handler.register(server);
    const address = await listen(server);
    const client = plainClient(address);
    try {
      const md = new grpc.Metadata();
      md.set("x-from", "plain");
      const { err, res, headers } = await plainUnary(client, { text: "hi", id: "-9007199254740993" }, md);
      expect(err).toBeNull();
      expect(res).toMatchObject({ text: "hi!", id: "-9007199254740993", seen: ["plain"] });
      expect(Array.from(res!.payload)).toEqual([0xde, 0xad, 0xbe, 0xef]);
      expect(headers?.get("x-generic")).toEqual(["Unary"]);
    } finally {
      client.close();
    }
  });
});
