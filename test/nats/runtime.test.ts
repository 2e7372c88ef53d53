/**
 * The NATS transport under the real framework: createClient / createServer over a nats-server on
 * 127.0.0.1.
 */
import { expect, it } from "vitest";
import { Code, RpcError, createClient, createServer, type ClientOptions, type Server } from "meridian-rpc";
import { NatsClientTransport, NatsServerTransport } from "meridian-rpc/transports/nats";
import { AdminService, EchoService } from "../rpc/gen/echo.js";
import { echoHandlers, expectContextCarried, type EchoServer } from "../rpc/helpers.js";
import { describeWithNats, Tracker, useNatsServer } from "./helpers.js";

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

  it("nats runtime - says it settles on abort: a call ends at its deadline and on its caller's abort while the handler never answers", async () => {
    await natsServer("silent", { echo: () => new Promise<never>(() => undefined) });
    const { client, transport } = natsClient();
    expect(transport.settlesOnAbort).toBe(true);
    await client.get({});
    const t0 = performance.now();
    expect(await client.echo({}, { timeoutMs: 80 }).catch((e: unknown) => e)).toMatchObject({ code: Code.DEADLINE_EXCEEDED });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(70);
    const caller = new AbortController();
    setTimeout(() => caller.abort(), 40);
    const t1 = performance.now();
    expect(await client.echo({}, { timeoutMs: 10_000, signal: caller.signal }).catch((e: unknown) => e)).toMatchObject({ code: Code.CANCELLED });
    expect(performance.now() - t1).toBeLessThan(2000);
  });
});
