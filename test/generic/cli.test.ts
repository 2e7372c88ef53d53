/**
 * `meridian call` and `meridian list` end to end: the CLI spawned as a child process (through
 * tsx, as during development: test/support/meridian-cli.ts) against running servers: a Meridian server on tcp, grpc and nats
 * (generated code, every method kind), and a plain @grpc/grpc-js server (proto-loader) for grpc.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, createServer, type Server, type ServerTransport } from "meridian-rpc";
import type { ServiceDescriptor } from "meridian-rpc/runtime";
import { parseJsonSequence } from "../../cli/call.js";
import { GrpcServerTransport } from "meridian-rpc/transports/grpc";
import { NatsServerTransport } from "meridian-rpc/transports/nats";
import { TcpServerTransport } from "meridian-rpc/transports/tcp";
import { Observed, startPlainServer } from "../grpc/helpers.js";
import { EchoService, StreamService } from "../rpc/gen/echo.js";
import { meridianChild } from "../support/meridian-cli.js";
import { findNatsServer, startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";
import { registerEcho } from "./helpers.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `meridian <args>` with `input` on stdin. */
async function meridian(args: readonly string[], input = ""): Promise<Run> {
  const r = await meridianChild(args, {}, { input, timeoutMs: 20_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const ECHO = ["--proto", "echo.proto", "-I", "test/rpc/proto"];
const services: ServiceDescriptor[] = [EchoService, StreamService];
const seen: Record<string, string>[] = [];

function echoServer(transport: ServerTransport): Server {
  return registerEcho(createServer({ transport, region: "eu-1", metrics: false, logger: { error: () => undefined } }), seen);
}

const natsBin = findNatsServer();
let nats: NatsCluster | undefined;
const addresses: Record<string, string> = {};
const servers: Server[] = [];

beforeAll(async () => {
  const start = async (name: string, transport: ServerTransport): Promise<void> => {
    const server = echoServer(transport);
    servers.push(server);
    addresses[name] = (await server.listen()).address;
  };
  await start("tcp", new TcpServerTransport({ host: "127.0.0.1" }));
  await start("grpc", new GrpcServerTransport({ services }));
  if (natsBin !== undefined) {
    nats = await startNatsCluster();
    await start("nats", new NatsServerTransport({ servers: nats.urls[0]!, services }));
    addresses["nats"] = nats.urls[0]!;
  }
}, 30_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close({ graceMs: 0 })));
  await nats?.stop();
});

describe("meridian call - tcp", () => {
  it("meridian call - a unary call prints the response as JSON", async () => {
    const r = await meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Echo", '{"text":"hi","delayMs":5}', ...ECHO]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ text: "hi", servedBy: "meridian", count: 5 });
  });

  it("meridian call - the request from stdin; headers, region and consistency sent; -v prints the response headers", async () => {
    seen.length = 0;
    const r = await meridian(
      ["call", addresses["tcp"]!, "rpctest.EchoService.Echo", ...ECHO, "-H", "x-trace=t-1", "--header=x-user=ada", "--region", "us-2", "--consistency", "linearizable", "-v"],
      '{"text": "from stdin"}',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ text: "from stdin", servedBy: "meridian" });
    expect(seen[0]).toMatchObject({ "x-trace": "t-1", "x-user": "ada", "x-region-id": "us-2", "x-consistency-level": "linearizable" });
    expect(r.stderr).toContain("response headers:");
    expect(r.stderr).toContain("  x-answer: 42");
    expect(r.stderr).toContain("  x-served-region: eu-1");
  });

  it("meridian call - server streaming prints one JSON value per line", async () => {
    const r = await meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Watch", '{"text":"w"}', ...ECHO]);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l))).toEqual([
      { text: "w", count: 1 },
      { text: "w", count: 2 },
      { text: "w", count: 3 },
    ]);
  });

  it("meridian call - client streaming and bidi read a sequence of JSON values", async () => {
    const collect = await meridian(["call", addresses["tcp"]!, "rpctest.StreamService/Collect", ...ECHO], '{"text":"a"}\n{"text":"b"} {"text":"c"}');
    expect(collect.code).toBe(0);
    expect(JSON.parse(collect.stdout)).toEqual({ text: "a,b,c", count: 3 });
    const chat = await meridian(["call", addresses["tcp"]!, "rpctest.StreamService/Chat", '{"text":"x"}{"text":"y"}', ...ECHO]);
    expect(chat.stdout).toBe('{"text":"X"}\n{"text":"Y"}\n');
  });

  it("meridian call - what a server sends is printed terminal-safe: control characters escaped, long text cut", async () => {
    const hostile = JSON.stringify({ text: `fail:\u001b]0;owned\u0007\u001b[2J${"z".repeat(10_000)}` });
    const r = await meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Echo", hostile, ...ECHO, "-v"]);
    expect(r.code).toBe(64 + Code.FAILED_PRECONDITION);
    expect(r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
    expect(r.stderr).toContain("FAILED_PRECONDITION: \\u001b]0;owned\\u0007\\u001b[2Jzzz");
    expect(r.stderr).toMatch(/more characters\)/);
    expect(r.stderr.length).toBeLessThan(3 * 4096);
  });

  it("meridian call - a failed call exits 64 + its code, printing the code's name", async () => {
    const r = await meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Echo", '{"text":"missing"}', ...ECHO]);
    expect(r.code).toBe(64 + Code.NOT_FOUND);
    expect(r.stderr).toBe("NOT_FOUND: no such thing\n");
    expect(r.stdout).toBe("");
    const biz = await meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Echo", '{"text":"biz"}', ...ECHO, "-v"]);
    expect(biz.code).toBe(64 + Code.UNKNOWN);
    expect(biz.stderr).toContain("biz-status: 1001");
    expect(biz.stderr).toContain("UNKNOWN: biz error 1001: out of stock");
  });

  it("meridian call - deadlines and unreachable servers", async () => {
    const [slow, down] = await Promise.all([
      meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Get", '{"delayMs":5000}', ...ECHO, "--timeout", "100"]),
      meridian(["call", "127.0.0.1:1", "rpctest.EchoService/Echo", "{}", ...ECHO]),
    ]);
    expect(slow.code).toBe(64 + Code.DEADLINE_EXCEEDED);
    expect(slow.stderr).toMatch(/^DEADLINE_EXCEEDED: /);
    expect(down.code).toBe(64 + Code.UNAVAILABLE);
    expect(down.stderr).toMatch(/^UNAVAILABLE: /);
  });

  it("meridian call - a request that does not fit, an unknown method, a bad .proto: INVALID_ARGUMENT naming it", async () => {
    const [field, type, json, method, proto] = await Promise.all([
      meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Echo", '{"txt":"a"}', ...ECHO]),
      meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Echo", '{"delayMs":"soon"}', ...ECHO]),
      meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Echo", "{text:1}", ...ECHO]),
      meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Nope", "{}", ...ECHO]),
      meridian(["call", addresses["tcp"]!, "x.S/M", "{}", "--proto", "test/generic/testdata/broken.proto", "-I", "test/generic/testdata"]),
    ]);
    expect(field.code).toBe(64 + Code.INVALID_ARGUMENT);
    expect(field.stderr).toMatch(/^INVALID_ARGUMENT: rpctest.EchoRequest.txt: unknown field "txt"/);
    expect(type.stderr).toBe('INVALID_ARGUMENT: rpctest.EchoRequest.delayMs: expected an integer, got "soon"\n');
    expect(json.code).toBe(64 + Code.INVALID_ARGUMENT);
    expect(json.stderr).toMatch(/^INVALID_ARGUMENT: the request is not JSON/);
    expect(method.stderr).toBe("INVALID_ARGUMENT: unknown method Nope of rpctest.EchoService: it has Echo, Get, Put, Watch\n");
    expect(proto.code).toBe(64 + Code.INVALID_ARGUMENT);
    expect(proto.stderr).toBe('INVALID_ARGUMENT: broken.proto:6:3: unknown type "strng"\n');
  });

  it("meridian call - bad usage exits 2 with the usage", async () => {
    const [r, t] = await Promise.all([
      meridian(["call", addresses["tcp"]!, "rpctest.EchoService/Echo"]),
      meridian(["call", "a:1", "x.S/M", "--proto", "x.proto", "--transport", "carrier-pigeon"]),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--proto <file.proto> is required/);
    expect(r.stderr).toContain("usage: meridian call");
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/--transport must be tcp, grpc or nats/);
  });
});

describe("meridian call - grpc", () => {
  it("meridian call - unary and server streaming against a Meridian gRPC server", async () => {
    const r = await meridian(["call", addresses["grpc"]!, "rpctest.EchoService/Echo", '{"text":"g"}', ...ECHO, "--transport", "grpc", "-v"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ text: "g", servedBy: "meridian" });
    expect(r.stderr).toContain("x-answer: 42");
    const s = await meridian(["call", addresses["grpc"]!, "rpctest.EchoService/Watch", '{"text":"s"}', ...ECHO, "--transport=grpc"]);
    expect(s.stdout.trimEnd().split("\n")).toHaveLength(3);
  });

  it("meridian call - against a plain @grpc/grpc-js server: int64 and bytes, streaming, errors", async () => {
    const observed = new Observed();
    const { server, address } = await startPlainServer(observed);
    try {
      const proto = ["--proto", "test/grpc/proto/interop.proto", "-I", "test/grpc/proto", "--transport", "grpc"]; // a path, as protoc takes it
      const r = await meridian(["call", address, "grpctest.Interop/Unary", '{"text":"plain","id":"9007199254740993","size":3}', ...proto, "-H", "x-from=cli"]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const reply = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(reply).toMatchObject({ text: "plain", id: "9007199254740993", payload: "AAEC" });
      expect(observed.headers["x-from"]).toBe("cli");
      const s = await meridian(["call", address, "grpctest.Interop/ServerStream", '{"text":"st","count":2}', ...proto]);
      expect(s.code).toBe(0);
      expect(s.stdout.trimEnd().split("\n").map((l) => (JSON.parse(l) as { seq?: number }).seq ?? 0)).toEqual([0, 1]);
      const e = await meridian(["call", address, "grpctest.Interop/Unary", '{"failCode":7}', ...proto]);
      expect(e.code).toBe(64 + Code.PERMISSION_DENIED);
      expect(e.stderr).toMatch(/^PERMISSION_DENIED: /);
    } finally {
      server.forceShutdown();
    }
  });
});

(natsBin === undefined ? describe.skip : describe)("meridian call - nats", () => {
  it("meridian call - unary and server streaming over a NATS server", async () => {
    const r = await meridian(["call", addresses["nats"]!, "rpctest.EchoService/Echo", '{"text":"n"}', ...ECHO, "--transport", "nats"]);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ text: "n", servedBy: "meridian" });
    const s = await meridian(["call", addresses["nats"]!, "rpctest.EchoService/Watch", '{"text":"s"}', ...ECHO, "--transport", "nats"]);
    expect(s.code).toBe(0);
    expect(s.stdout.trimEnd().split("\n")).toHaveLength(3);
  });
});

describe("meridian list", () => {
  it("meridian list - services and methods with their kinds, input and output, idempotency", async () => {
    const [r, one, missing] = await Promise.all([meridian(["list", ...ECHO]), meridian(["list", ...ECHO, "rpctest.AdminService"]), meridian(["list", ...ECHO, "rpctest.Nope"])]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "rpctest.EchoService",
        "  Echo   unary             rpctest.EchoRequest -> rpctest.EchoReply",
        "  Get    unary             rpctest.EchoRequest -> rpctest.EchoReply         NO_SIDE_EFFECTS",
        "  Put    unary             rpctest.EchoRequest -> rpctest.EchoReply         IDEMPOTENT",
        "  Watch  server_streaming  rpctest.EchoRequest -> stream rpctest.EchoReply",
        "rpctest.AdminService",
        "  Status  unary  rpctest.EchoRequest -> rpctest.EchoReply  NO_SIDE_EFFECTS",
        "rpctest.StreamService",
        "  Ticks    server_streaming  rpctest.EchoRequest -> stream rpctest.EchoReply         NO_SIDE_EFFECTS",
        "  Collect  client_streaming  stream rpctest.EchoRequest -> rpctest.EchoReply",
        "  Chat     bidi_streaming    stream rpctest.EchoRequest -> stream rpctest.EchoReply",
        "",
      ].join("\n"),
    );
    expect(one.stdout.split("\n")[0]).toBe("rpctest.AdminService");
    expect(missing.code).toBe(64 + Code.INVALID_ARGUMENT);
  });
});

describe("meridian call - JSON sequences", () => {
  it("meridian call - values one after another, with or without whitespace", () => {
    expect(parseJsonSequence(' {"a":"}{"} [1,[2]]"x\\"y" 3 true null\n{}')).toEqual([{ a: "}{" }, [1, [2]], 'x"y', 3, true, null, {}]);
    expect(parseJsonSequence("  ")).toEqual([]);
    expect(() => parseJsonSequence("{a:1}")).toThrow(/the request is not JSON/);
  });
});
