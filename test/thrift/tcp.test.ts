/**
 * Thrift services over the real TCP transport, Meridian on both ends: every framing (Kitex
 * TTHeader, Apache THeader, TFramedTransport) with both protocols, through the same runtime as
 * protobuf (middleware, deadlines, typed errors), and a protobuf service on the same server; and
 * the same service on the in-process transport, whose payloads are Thrift Binary.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, RpcError, createClient, createServer, type Middleware } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport, type ThriftWireOptions } from "meridian-rpc/transports/tcp";
import { MemoryClientTransport, MemoryNetwork, MemoryServerTransport } from "meridian-rpc/transports/memory";
import { loadThriftService } from "meridian-rpc/generic";
import { EchoService } from "../rpc/gen/echo.js";
import { InteropService, Invalid, NotFound, everything, interopHandlers } from "../support/thrift-interop.js";

const seenByMiddleware: string[] = [];
const record: Middleware = (next) => async (req) => {
  seenByMiddleware.push(`${req.service.typeName}/${req.method.name}`);
  return next(req);
};

const { handlers, seen } = interopHandlers();
const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), metrics: false, logger: { error: () => {} }, middleware: [record] });
server.register(InteropService, handlers);
server.register(EchoService, { echo: (req) => ({ text: req.text }) });
let address = "";

beforeAll(async () => {
  ({ address } = await server.listen());
});
afterAll(() => server.close({ graceMs: 0 }));

const WIRES: ThriftWireOptions[] = [
  { framing: "ttheader", protocol: "binary" },
  { framing: "ttheader", protocol: "compact" },
  { framing: "theader", protocol: "binary" },
  { framing: "theader", protocol: "compact" },
  { framing: "framed", protocol: "binary" },
  { framing: "framed", protocol: "compact" },
];

describe.each(WIRES)("thrift over tcp - $framing $protocol", (wire) => {
  let transport: TcpClientTransport;
  let client: ReturnType<typeof createClient<typeof InteropService>>;
  beforeAll(() => {
    transport = new TcpClientTransport({ address, thrift: wire });
    client = createClient(InteropService, { transport, middleware: [record] });
  });
  afterAll(() => transport.close());

  it("returns values", async () => {
    expect(await client.ping()).toBe("pong");
    expect(await client.add({ a: 2, b: 40n })).toBe(42n);
  });

  it("round-trips every field kind", async () => {
    const value = everything();
    expect(await client.echo({ value })).toEqual(value);
  });

  it("throws declared exceptions as their classes", async () => {
    const notFound = await client.fail({ why: "gone", code: 1 }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(NotFound);
    expect(notFound).toMatchObject({ message: "gone", name: "NotFound" });
    const invalid = await client.fail({ why: "bad", code: 2 }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(Invalid);
    expect(invalid).toMatchObject({ reason: "bad", code: 2 });
    expect(await client.fail({ why: "fine", code: 0 }).catch((e: unknown) => e)).toBeInstanceOf(RpcError);
  });

  it("turns an undeclared error into an RpcError with its code where headers travel", async () => {
    const e = (await client.fail({ why: "boom", code: 3 }).catch((x: unknown) => x)) as RpcError;
    expect(e).toBeInstanceOf(RpcError);
    // A framed peer has no headers: only the TApplicationException's type (internal error) travels.
    expect(e.code).toBe(wire.framing === "framed" ? Code.INTERNAL : Code.FAILED_PRECONDITION);
    expect(e.message).toContain("undeclared: boom");
  });

  it("sends oneway calls without waiting for an answer", async () => {
    const event = `event-${wire.framing}-${wire.protocol}`;
    await expect(client.notify({ event })).resolves.toBeUndefined();
    // The next call on the same connection is read after the oneway one.
    expect(await client.lastNotified()).toBe(event);
  });

  it("carries the region and consistency headers where the framing has headers", async () => {
    const got = (await client.headers({}, { headers: { "x-region-id": "eu", "x-consistency-level": "linearizable" } })) as Map<string, string>;
    if (wire.framing === "framed") {
      expect(got.get("x-region-id")).toBeUndefined();
    } else {
      expect(got.get("x-region-id")).toBe("eu");
      expect(got.get("x-consistency-level")).toBe("linearizable");
    }
  });

  it("carries the deadline over TTHeader", async () => {
    const before = seen.deadlines.length;
    await client.sleep({ ms: 1 }, { timeoutMs: 5000 });
    const deadline = seen.deadlines[before];
    if (wire.framing === "ttheader") expect(deadline).toBeGreaterThan(Date.now());
    else expect(deadline).toBeUndefined();
  });
});

describe("thrift over tcp - the runtime", () => {
  it("runs client and server middleware for Thrift calls, and serves protobuf beside them", async () => {
    const transport = new TcpClientTransport({ address });
    try {
      const thrift = createClient(InteropService, { transport });
      const proto = createClient(EchoService, { transport });
      seenByMiddleware.length = 0;
      expect(await thrift.ping()).toBe("pong");
      expect((await proto.echo({ text: "pb" })).text).toBe("pb");
      expect(seenByMiddleware).toEqual(["interop.InteropService/ping", "rpctest.EchoService/Echo"]);
    } finally {
      await transport.close();
    }
  });

  it("routes a call naming the service as Kitex does (the IDL's bare name) by its function", async () => {
    const transport = new TcpClientTransport({ address });
    try {
      const kitexNamed = { ...InteropService, typeName: "InteropService" };
      expect(await createClient(kitexNamed, { transport }).add({ a: 1, b: 2n })).toBe(3n);
    } finally {
      await transport.close();
    }
  });

  it("answers a function the server does not serve with UNIMPLEMENTED", async () => {
    const other = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), metrics: false });
    other.register(InteropService, { ping: () => "pong" });
    const { address: at } = await other.listen();
    const transport = new TcpClientTransport({ address: at, thrift: { framing: "framed" } });
    try {
      const client = createClient(InteropService, { transport });
      const e = (await client.add({ a: 1, b: 1n }).catch((x: unknown) => x)) as RpcError;
      expect(e.code).toBe(Code.UNIMPLEMENTED);
    } finally {
      await transport.close();
      await other.close({ graceMs: 0 });
    }
  });

  it("refuses a Thrift call to a protobuf method with INVALID_ARGUMENT", async () => {
    const transport = new TcpClientTransport({ address });
    try {
      // A Thrift descriptor whose service and method names are the protobuf service's.
      const wrongService = { typeName: EchoService.typeName, methods: { Echo: { ...InteropService.methods.ping, name: "Echo" } } };
      const e = (await createClient(wrongService, { transport }).Echo({}).catch((x: unknown) => x)) as RpcError;
      expect(e.code).toBe(Code.INVALID_ARGUMENT);
      expect(e.message).toContain("not a Thrift function");
    } finally {
      await transport.close();
    }
  });
});

describe("thrift - loadThriftService", () => {
  it("describes functions named like Object members, and keeps an extending service's own function over its base's", async () => {
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "thrift-load-"));
    writeFileSync(join(dir, "o.thrift"), "service Base { i32 toString() i32 size() }\nservice S extends Base { string constructor(1: string x) string size() }");
    const { service } = loadThriftService(join(dir, "o.thrift"), "S");
    expect(Object.keys(service.methods).sort()).toEqual(["constructor", "size", "toString"]);
    expect(service.methods.size!.output.schema.fields[0]!.type).toEqual({ t: "string" });
  });
});

describe("thrift over the memory transport", () => {
  it("calls, declared exceptions and oneway calls, as over TCP", async () => {
    const network = new MemoryNetwork();
    const memory = createServer({ transport: new MemoryServerTransport({ name: "thrift", network }), metrics: false, logger: { error: () => {} } });
    memory.register(InteropService, interopHandlers().handlers);
    await memory.listen();
    try {
      const client = createClient(InteropService, { transport: new MemoryClientTransport({ network, address: "memory://thrift" }) });
      const value = everything();
      expect(await client.echo({ value })).toEqual(value);
      expect(await client.fail({ why: "gone", code: 1 }).catch((e: unknown) => e)).toBeInstanceOf(NotFound);
      await client.notify({ event: "in-process" });
      expect(await client.lastNotified()).toBe("in-process");
    } finally {
      await memory.close({ graceMs: 0 });
    }
  });
});
