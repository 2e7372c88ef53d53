/**
 * The TCP transport under the real framework: createClient / createServer over 127.0.0.1.
 */
import { setTimeout as wait } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { BizError, Code, RpcError, createClient, createServer, type CallContext, type ClientOptions, type Server } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { AdminService, EchoService, type EchoRequest } from "../rpc/gen/echo.js";
import { echoHandlers, expectContextCarried, type EchoServer } from "../rpc/helpers.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function tcpServer(name: string, handlers: Parameters<Server["register"]>[1] = {}, region = "cn-east") {
  const calls: EchoServer["calls"] = [];
  const logged: unknown[] = [];
  const server = createServer({
    transport: new TcpServerTransport({ host: "127.0.0.1" }),
    region,
    logger: { error: (message, details) => logged.push({ message, details }) },
  });
  server.register(EchoService, { ...echoHandlers(name, calls), ...handlers });
  const { address } = await server.listen();
  cleanup.push(() => server.close({ graceMs: 0 }));
  return { server, address, calls, logged };
}

function tcpClient(addresses: string[], options: Partial<ClientOptions> = {}) {
  const transport = new TcpClientTransport({ backoffBaseMs: 10, backoffMaxMs: 50 });
  cleanup.push(() => transport.close());
  const client = createClient(EchoService, {
    transport,
    endpoints: addresses.map((address) => ({ address })),
    region: "cn-north",
    ...options,
  });
  return { client, transport };
}

describe("tcp runtime - createClient / createServer", () => {
  it("tcp runtime - typed calls carry region, consistency and metainfo across the wire", async () => {
    const s = await tcpServer("a");
    const { client } = tcpClient([s.address], { consistency: "linearizable" });
    await expectContextCarried(client, s.calls, /^127\.0\.0\.1:/);
  });

  it("tcp runtime - many calls at once, answered out of order", async () => {
    const s = await tcpServer("a");
    const { client } = tcpClient([s.address]);
    const delays = [50, 0, 30, 10, 40, 20];
    const replies = await Promise.all(delays.map((d, i) => client.get({ text: `t${i}`, delayMs: d })));
    replies.forEach((r, i) => expect(r.text).toBe(`t${i}`));
  });

  it("tcp runtime - the client's timeout reaches the handler, and a slow handler gives DEADLINE_EXCEEDED", async () => {
    const s = await tcpServer("a");
    const { client } = tcpClient([s.address]);
    const e = await client.echo({ text: "slow", delayMs: 2000 }, { timeoutMs: 80 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(RpcError);
    expect((e as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
    const ctx = s.calls[0]!.ctx as CallContext;
    expect(ctx.deadline).toBeDefined();
    // The handler's sleep follows the call's signal, which the transport aborts at the deadline.
    await wait(200);
    expect(ctx.signal.aborted).toBe(true);
  });

  it("tcp runtime - errors keep their codes; business errors come back as BizError", async () => {
    const s = await tcpServer("a", {
      echo: () => {
        throw new RpcError(Code.NOT_FOUND, "no such thing");
      },
      get: () => {
        throw new BizError(4001, "quota", { plan: "free" });
      },
      put: () => {
        throw new Error("bug with a secret");
      },
    });
    const { client } = tcpClient([s.address]);
    const notFound = (await client.echo({}).catch((e: unknown) => e)) as RpcError;
    expect(notFound.code).toBe(Code.NOT_FOUND);
    expect(notFound.message).toBe("no such thing");
    const biz = (await client.get({}).catch((e: unknown) => e)) as BizError;
    expect(biz).toBeInstanceOf(BizError);
    expect(biz.bizCode).toBe(4001);
    expect(biz.extra).toEqual({ plan: "free" });
    const internal = (await client.put({}).catch((e: unknown) => e)) as RpcError;
    expect(internal.code).toBe(Code.INTERNAL);
    expect(internal.message).not.toContain("secret");
  });

  it("tcp runtime - a service the server does not have is UNIMPLEMENTED", async () => {
    const s = await tcpServer("a");
    const transport = new TcpClientTransport();
    cleanup.push(() => transport.close());
    const admin = createClient(AdminService, { transport, endpoints: [{ address: s.address }] });
    const e = (await admin.status({}).catch((err: unknown) => err)) as RpcError;
    expect(e.code).toBe(Code.UNIMPLEMENTED);
  });

  it("tcp runtime - cancelling a call", async () => {
    const s = await tcpServer("a");
    const { client } = tcpClient([s.address]);
    const ac = new AbortController();
    const p = client.echo({ text: "x", delayMs: 2000 }, { signal: ac.signal }).catch((e: unknown) => e);
    await wait(50);
    ac.abort();
    expect(((await p) as RpcError).code).toBe(Code.CANCELLED);
  });

  it("tcp runtime - graceful shutdown: calls in flight finish, the balancer moves to the other server", async () => {
    const a = await tcpServer("a");
    const b = await tcpServer("b");
    const { client, transport } = tcpClient([a.address, b.address], { retry: {} });
    await transport.warmUp([{ address: a.address }, { address: b.address }]);
    const inflight = [1, 2, 3, 4].map((i) => client.get({ text: `g${i}`, delayMs: 150 }));
    await wait(30);
    const closing = a.server.close({ graceMs: 3000 });
    const done = await Promise.all(inflight);
    done.forEach((r, i) => expect(r.text).toBe(`g${i + 1}`));
    await closing;
    // a is gone: every later call lands on b (UNAVAILABLE notSent from a is retried).
    for (let i = 0; i < 6; i++) expect((await client.get({ text: "after" })).servedBy).toBe("b");
  });

  it("tcp runtime - a server killed and restarted: calls recover", async () => {
    const first = await tcpServer("first");
    const { client } = tcpClient([first.address]);
    expect((await client.get({})).servedBy).toBe("first");
    await first.server.close({ graceMs: 0 });
    const port = Number(first.address.split(":")[1]);
    const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1", port }) });
    server.register(EchoService, echoHandlers("second", []));
    await server.listen();
    cleanup.push(() => server.close({ graceMs: 0 }));
    const end = Date.now() + 3000;
    let servedBy = "";
    while (servedBy !== "second" && Date.now() < end) {
      servedBy = await client.get({}).then(
        (r) => r.servedBy,
        () => "",
      );
      if (servedBy === "") await wait(10);
    }
    expect(servedBy).toBe("second");
  });
});

// keep the type import used
export type _Req = EchoRequest;
