/**
 * Interop with Apache Thrift: Debian's python3-thrift 0.17 (test/thrift/interop/peer.py) against
 * Meridian's code generated from the same IDL (interop/gen-ts, by `meridian gen`) over real sockets, both directions, over THeader and framed transport, both
 * protocols, with headers, declared exceptions, undeclared errors, oneway calls and a value of
 * every field kind.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, RpcError, createClient, createServer } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport, type Framing } from "meridian-rpc/transports/tcp";
import { describeWithBinary } from "../support/gate.js";
import { InteropService, Invalid, NotFound, type Everything } from "./interop/gen-ts/interop.js";
import {
  PYTHON,
  everything,
  everythingToJson,
  pythonClient,
  pythonThriftAvailable,
  startPythonServer,
  type PythonServer,
} from "../support/thrift-interop.js";

const MISSING = `${PYTHON} with python3-thrift and python3-six is needed (scripts/setup.sh installs them)`;
const PROTOCOLS = ["binary", "compact"] as const;

/** Meridian clients of a Python server: a THeader server takes THeader and framed clients; a framed server framed ones. */
const CLIENT_CASES: { server: "header" | "framed"; framing: Framing; protocol: (typeof PROTOCOLS)[number] }[] = PROTOCOLS.flatMap((protocol) => [
  { server: "header" as const, framing: "theader" as const, protocol },
  { server: "header" as const, framing: "framed" as const, protocol },
  { server: "framed" as const, framing: "framed" as const, protocol },
]);

describeWithBinary("python3-thrift", pythonThriftAvailable() ? PYTHON : undefined, MISSING, "thrift interop - Meridian client, Python server", () => {
  describe.each(CLIENT_CASES)("$framing $protocol to a Python $server server", ({ server: kind, framing, protocol }) => {
    let server: PythonServer;
    let transport: TcpClientTransport;
    let client: ReturnType<typeof createClient<typeof InteropService>>;
    beforeAll(async () => {
      server = await startPythonServer(kind, protocol);
      transport = new TcpClientTransport({ address: `127.0.0.1:${server.port}`, thrift: { framing, protocol } });
      client = createClient(InteropService, { transport });
    }, 20_000);
    afterAll(async () => {
      await transport?.close();
      await server?.stop();
    });

    it("calls functions of the service and of the one it extends", async () => {
      expect(await client.ping()).toBe("pong");
      expect(await client.add({ a: -2, b: 9007199254740993n })).toBe(9007199254740991n);
    });

    it("round-trips every field kind", async () => {
      const value = everything() as unknown as Everything;
      const back = await client.echo({ value });
      // A set comes back in Python's order, which varies from process to process.
      expect({ ...back, tags: [...back.tags!].sort() }).toEqual(value);
    });

    it("receives declared exceptions as their classes", async () => {
      const notFound = await client.fail({ why: "gone", code: 1 }).catch((e: unknown) => e);
      expect(notFound).toBeInstanceOf(NotFound);
      expect(notFound).toMatchObject({ message: "gone" });
      const invalid = await client.fail({ why: "bad", code: 2 }).catch((e: unknown) => e);
      expect(invalid).toBeInstanceOf(Invalid);
      expect(invalid).toMatchObject({ reason: "bad", code: 2 });
    });

    it("turns a TApplicationException into an RpcError", async () => {
      const e = (await client.fail({ why: "boom", code: 3 }).catch((x: unknown) => x)) as RpcError;
      expect(e).toBeInstanceOf(RpcError);
      expect(e.code).toBe(Code.INTERNAL);
    });

    it("sends oneway calls", async () => {
      await client.notify({ event: `from-ts-${framing}-${protocol}` });
      expect(await client.lastNotified()).toBe(`from-ts-${framing}-${protocol}`);
    });

    it("sends and receives headers over THeader", async () => {
      const headers = { "x-region-id": "eu-west", "x-consistency-level": "eventual" };
      let responseHeaders: Record<string, string> = {};
      const got = (await client.headers({}, { headers, onHeaders: (h) => (responseHeaders = h) })) as Map<string, string>;
      if (framing === "theader") {
        expect(got.get("x-region-id")).toBe("eu-west");
        expect(got.get("x-consistency-level")).toBe("eventual");
        expect(responseHeaders["x-served-region"]).toBe("py");
      } else {
        expect(got.size).toBe(0);
      }
    });

    it("gives up on a slow call at its deadline", async () => {
      const e = (await client.sleep({ ms: 1500 }, { timeoutMs: 100 }).catch((x: unknown) => x)) as RpcError;
      expect(e.code).toBe(Code.DEADLINE_EXCEEDED);
    });
  });
});

/** Python clients of a Meridian server, which answers each in the framing and protocol it used. */
describeWithBinary("python3-thrift", pythonThriftAvailable() ? PYTHON : undefined, MISSING, "thrift interop - Python client, Meridian server", () => {
  let lastNotified = "";
  const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), metrics: false, logger: { error: () => {} } });
  // Handlers typed by the generated module: arguments as its args interfaces, results as declared.
  server.register(InteropService, {
    ping: () => "pong",
    echo: ({ value }) => value!,
    add: ({ a, b }) => BigInt(a!) + b!,
    fail: ({ why, code }) => {
      if (code === 1) throw new NotFound({ message: why! });
      if (code === 2) throw new Invalid({ reason: why!, code });
      throw new RpcError(Code.FAILED_PRECONDITION, `undeclared: ${why}`);
    },
    headers: (_, ctx) => {
      ctx.responseHeaders["x-served-region"] = "ts";
      return new Map(Object.entries(ctx.headers));
    },
    notify: ({ event }) => {
      lastNotified = event!;
    },
    lastNotified: () => lastNotified,
  });
  let port = 0;
  beforeAll(async () => {
    const { address } = await server.listen();
    port = Number(address.slice(address.lastIndexOf(":") + 1));
  });
  afterAll(() => server.close({ graceMs: 0 }));

  describe.each(["header", "framed"] as const)("Python %s client", (transport) => {
    describe.each(PROTOCOLS)("%s", (protocol) => {
      const call = (name: string, arg?: Parameters<typeof pythonClient>[4]) => pythonClient(port, transport, protocol, name, arg);

      it("calls functions of the service and of the one it extends", async () => {
        expect(await call("ping")).toEqual({ result: "pong" });
        expect(await call("add", { a: 40, b: "2" })).toEqual({ result: "42" });
      });

      it("round-trips every field kind", async () => {
        const value = everythingToJson(everything());
        expect(await call("echo", value)).toEqual({ result: value });
      });

      it("raises declared exceptions as their classes", async () => {
        expect((await call("fail", { why: "gone", code: 1 })).error).toMatchObject({ type: "NotFound", fields: { message: "gone" } });
        expect((await call("fail", { why: "bad", code: 2 })).error).toMatchObject({ type: "Invalid", fields: { reason: "bad", code: 2 } });
      });

      it("answers an undeclared error with a TApplicationException", async () => {
        const { error } = await call("fail", { why: "boom", code: 3 });
        expect(error).toMatchObject({ type: "TApplicationException", fields: { type: 6 } });
        expect(error!.message).toContain("undeclared: boom");
      });

      it("serves oneway calls", async () => {
        expect(await call("notify", { event: `from-py-${transport}-${protocol}` })).toEqual({ result: `from-py-${transport}-${protocol}` });
      });

      it("exchanges headers over THeader", async () => {
        if (transport !== "header") return;
        const out = await call("headers", { "x-region-id": "ap-south", "x-consistency-level": "linearizable" });
        expect(out.result).toMatchObject({ "x-region-id": "ap-south", "x-consistency-level": "linearizable" });
        expect(out.responseHeaders).toMatchObject({ "x-served-region": "ts" });
      });
    });
  });
});
