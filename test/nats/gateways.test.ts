/**
 * Cross-region over NATS: three nats-server processes on 127.0.0.1, one per region, joined by
 * gateways. A request goes to a queue subscriber in the caller's own cluster when there is one,
 * and crosses a gateway only when there is none.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { Code, RpcError, createClient, createServer, type Server } from "meridian-rpc";
import { NatsClientTransport, NatsServerTransport } from "meridian-rpc/transports/nats";
import { EchoService } from "../rpc/gen/echo.js";
import { echoHandlers, type EchoServer } from "../rpc/helpers.js";
import { startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";
import { describeWithNats, Tracker } from "./helpers.js";

const REGIONS = ["cn-north", "cn-east", "eu-west"] as const;

describeWithNats("nats gateways - cross-region", () => {
  let cluster: NatsCluster;
  const t = new Tracker();
  beforeAll(async () => {
    cluster = await startNatsCluster({ regions: REGIONS });
  }, 30_000);
  afterEach(() => t.closeAll());
  afterAll(async () => {
    await t.closeAll();
    await cluster?.stop();
  });

  /** An echo server of `region`, connected to that region's nats-server. */
  async function serve(region: string): Promise<Server> {
    const calls: EchoServer["calls"] = [];
    const server = createServer({
      transport: new NatsServerTransport({ servers: cluster.url(region), services: [EchoService] }),
      region,
      metrics: false,
    });
    server.register(EchoService, echoHandlers(`echo-${region}`, calls));
    await server.listen();
    t.add(() => server.close({ graceMs: 0 }));
    return server;
  }

  /** A client in `region`, connected to that region's nats-server. */
  function client(region: string) {
    const transport = new NatsClientTransport({ servers: cluster.url(region) });
    t.add(() => transport.close());
    return createClient(EchoService, { transport, region, timeoutMs: 3000 });
  }

  /** The region that served a call. */
  async function servedRegion(c: ReturnType<typeof client>): Promise<string> {
    let served = "";
    await c.get({ text: "where" }, { onHeaders: (h) => (served = h["x-served-region"] ?? "") });
    return served;
  }

  /** Waits until `check` holds for a call, retrying while gateway interest propagates. */
  async function eventually(c: ReturnType<typeof client>, check: (region: string) => boolean, ms = 5000): Promise<string> {
    const end = Date.now() + ms;
    let last = "";
    while (Date.now() < end) {
      last = await servedRegion(c).catch((e: unknown) => `error: ${(e as Error).message}`);
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no call satisfied the check within ${ms} ms; last: ${last}`);
  }

  it("nats gateways - every region's calls are served by its own region while it has an instance", async () => {
    for (const r of REGIONS) await serve(r);
    for (const r of REGIONS) {
      const c = client(r);
      // Gateway interest is asynchronous: the first calls may still be settling in.
      await eventually(c, (served) => served === r);
      const seen = new Set<string>();
      for (let i = 0; i < 30; i++) seen.add(await servedRegion(c));
      expect([...seen]).toEqual([r]);
    }
  });

  it("nats gateways - with no instance in the caller's region, the call crosses a gateway and still succeeds", async () => {
    const north = await serve("cn-north");
    await serve("cn-east");
    await serve("eu-west");
    const c = client("cn-north");
    await eventually(c, (served) => served === "cn-north");
    await north.close({ graceMs: 100 });
    // The very next calls already go elsewhere: the queue group has remote members.
    const served = await servedRegion(c);
    expect(["cn-east", "eu-west"]).toContain(served);
    for (let i = 0; i < 20; i++) expect(["cn-east", "eu-west"]).toContain(await servedRegion(c));
    // A caller in a region with an instance still stays at home.
    expect(await eventually(client("eu-west"), (s) => s === "eu-west")).toBe("eu-west");
    // The local instance comes back: calls return home.
    await serve("cn-north");
    expect(await eventually(c, (s) => s === "cn-north")).toBe("cn-north");
  });

  it("nats gateways - a caller in a region without instances is served by the one region that has one", async () => {
    await serve("eu-west");
    const c = client("cn-east");
    expect(await eventually(c, (s) => s !== "" && !s.startsWith("error"))).toBe("eu-west");
  });

  it("nats gateways - no instance in any region is UNAVAILABLE, notSent, quickly", async () => {
    const c = client("cn-north");
    const t0 = Date.now();
    const e = await c.get({ text: "anyone?" }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(RpcError);
    expect((e as RpcError).code).toBe(Code.UNAVAILABLE);
    expect((e as RpcError).notSent).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
