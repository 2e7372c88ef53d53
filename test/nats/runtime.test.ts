/**
 * The NATS transport under the real framework: createClient / createServer over a nats-server on
 * 127.0.0.1.
 */
import { setTimeout as wait } from "node:timers/promises";
import { expect, it } from "vitest";
import { BizError, Code, RpcError, createClient, createServer, type CallContext, type ClientOptions, type Server } from "meridian-rpc";
import { NatsClientTransport, NatsServerTransport } from "meridian-rpc/transports/nats";
import { AdminService, EchoService } from "../rpc/gen/echo.js";
import { echoHandlers, expectContextCarried, type EchoServer } from "../rpc/helpers.js";
import { describeWithNats, StreamService, Tracker, useNatsServer } from "./helpers.js";

describeWithNats("nats runtime - createClient / createServer", () => {
  const t = new Tracker();
  const nats = useNatsServer(t);

  async function natsServer(name: string, handlers: Parameters<Server["register"]>[1] = {}, region = "cn-east") {
    const calls: EchoServer["calls"] = [];
    const server = createServer({
      transport: new NatsServerTransport({ servers: nats.url, services: [EchoService] }),
      region,
      metrics: false,
      logger: { error: () => undefined },
    });
    server.register(EchoService, { ...echoHandlers(name, calls), ...handlers });
    const { address } = await server.listen();
    t.add(() => server.close({ graceMs: 0 }));
    return { server, address, calls };
  }

  function natsClient(options: Partial<ClientOptions> = {}) {
    const transport = new NatsClientTransport({ servers: nats.url });
    t.add(() => transport.close());
    return { client: createClient(EchoService, { transport, region: "cn-north", ...options }), transport };
  }

  it("nats runtime - typed calls carry region, consistency and metainfo across NATS", async () => {
    const s = await natsServer("a");
    expect(s.address).toBe("meridian");
    const { client } = natsClient({ consistency: "linearizable" });
    await expectContextCarried(client, s.calls, /^_INBOX\./);
  });

  it("nats runtime - endpoints name the subject prefix", async () => {
    const server = createServer({ transport: new NatsServerTransport({ servers: nats.url, services: [EchoService], prefix: "blue" }), metrics: false });
    server.register(EchoService, echoHandlers("blue", []));
    const { address } = await server.listen();
    t.add(() => server.close({ graceMs: 0 }));
    expect(address).toBe("blue");
    const { client } = natsClient({ endpoints: [{ address }] });
    expect((await client.get({})).servedBy).toBe("blue");
  });

  it("nats runtime - the client's timeout reaches the handler, and a slow handler gives DEADLINE_EXCEEDED", async () => {
    const s = await natsServer("a");
    const { client } = natsClient();
    const e = await client.echo({ text: "slow", delayMs: 2000 }, { timeoutMs: 80 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(RpcError);
    expect((e as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
    const ctx = s.calls[0]!.ctx as CallContext;
    expect(ctx.deadline).toBeDefined();
    await wait(200);
    expect(ctx.signal.aborted).toBe(true);
  });

  it("nats runtime - errors keep their codes; business errors come back as BizError", async () => {
    await natsServer("a", {
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
    const { client } = natsClient();
    const notFound = (await client.echo({}).catch((e: unknown) => e)) as RpcError;
    expect(notFound.code).toBe(Code.NOT_FOUND);
    expect(notFound.message).toBe("no such thing");
    expect(notFound.headers["x-served-region"]).toBe("cn-east");
    const biz = (await client.get({}).catch((e: unknown) => e)) as BizError;
    expect(biz).toBeInstanceOf(BizError);
    expect(biz.bizCode).toBe(4001);
    expect(biz.extra).toEqual({ plan: "free" });
    const internal = (await client.put({}).catch((e: unknown) => e)) as RpcError;
    expect(internal.code).toBe(Code.INTERNAL);
    expect(internal.message).not.toContain("secret");
  });

  it("nats runtime - a service nobody serves is UNAVAILABLE (no responders); a method without a handler UNIMPLEMENTED", async () => {
    await natsServer("a");
    const transport = new NatsClientTransport({ servers: nats.url });
    t.add(() => transport.close());
    const admin = createClient(AdminService, { transport });
    const e = (await admin.status({}).catch((err: unknown) => err)) as RpcError;
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(e.notSent).toBe(true);
    const partial = createServer({ transport: new NatsServerTransport({ servers: nats.url, services: [AdminService] }), metrics: false });
    partial.register(AdminService, {});
    await partial.listen();
    t.add(() => partial.close({ graceMs: 0 }));
    const u = (await admin.status({}).catch((err: unknown) => err)) as RpcError;
    expect(u.code).toBe(Code.UNIMPLEMENTED);
  });

  it("nats runtime - cancelling a call", async () => {
    await natsServer("a");
    const { client } = natsClient();
    const ac = new AbortController();
    const p = client.echo({ text: "x", delayMs: 2000 }, { signal: ac.signal }).catch((e: unknown) => e);
    await wait(50);
    ac.abort();
    expect(((await p) as RpcError).code).toBe(Code.CANCELLED);
  });

  it("nats runtime - graceful shutdown: calls in flight finish, the queue group sends later calls to the other server", async () => {
    const a = await natsServer("a");
    await natsServer("b");
    const { client } = natsClient();
    const inflight = [1, 2, 3, 4, 5, 6].map((i) => client.get({ text: `g${i}`, delayMs: 150 }));
    await wait(50);
    const closing = a.server.close({ graceMs: 3000 });
    const done = await Promise.all(inflight);
    done.forEach((r, i) => expect(r.text).toBe(`g${i + 1}`));
    await closing;
    for (let i = 0; i < 6; i++) expect((await client.get({ text: "after" })).servedBy).toBe("b");
  });

  it("nats runtime - streaming methods of every kind through createClient / createServer", async () => {
    const server = createServer({ transport: new NatsServerTransport({ servers: nats.url, services: [StreamService] }), region: "cn-east", metrics: false });
    server.register(StreamService, {
      ticks: async function* (req) {
        for (let i = 0; i < req.delayMs; i++) yield { text: req.text, count: i };
      },
      collect: async (requests) => {
        const texts: string[] = [];
        for await (const r of requests) texts.push(r.text);
        return { text: texts.join(","), count: texts.length };
      },
      chat: async function* (requests) {
        for await (const r of requests) yield { text: `re:${r.text}` };
      },
    });
    await server.listen();
    t.add(() => server.close({ graceMs: 0 }));
    const transport = new NatsClientTransport({ servers: nats.url });
    t.add(() => transport.close());
    const client = createClient(StreamService, { transport, region: "cn-north", timeoutMs: 5000 });
    const ticks = client.ticks({ text: "t", delayMs: 100 });
    const counts: number[] = [];
    for await (const m of ticks) counts.push(m.count);
    expect(counts).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect((await ticks.headers)["x-served-region"]).toBe("cn-east");
    expect((await client.collect([{ text: "a" }, { text: "b" }, { text: "c" }])).text).toBe("a,b,c");
    const replies: string[] = [];
    for await (const m of client.chat([{ text: "x" }, { text: "y" }])) replies.push(m.text);
    expect(replies).toEqual(["re:x", "re:y"]);
  });
});
