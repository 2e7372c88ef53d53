import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRegistry,
  type Registry,
  serveRegistry,
  type RegistryServer,
  createRemoteStore,
  fencingMiddleware,
  listenAndRegister,
  routingOptions,
  type RegisteredServer,
  ReplicaClock,
} from "meridian-rpc/registry";
import { createClient, type Client, Code, RpcError, createServer, HeaderKeys, type Headers } from "meridian-rpc";
import { createLink, type Link } from "../../tools/linkproxy/index.js";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { freePort } from "../support/etcd-cluster.js";
import { Accounts } from "./gen/accounts.js";

const REGIONS = ["cn-north", "eu-west", "us-east"] as const;
type Region = (typeof REGIONS)[number];

interface RegionSetup {
  registry: Registry;
  /** The region's link to the registry server. */
  registryLink: Link;
  /** The link in front of the region's Accounts server (what the other regions call). */
  serviceLink: Link;
  /** The server's own address, bypassing the link. */
  directAddress: string;
  server: RegisteredServer;
}

/** Waits for `probe` to hold; bounds are generous (a loaded machine is slow, never wrong). */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last error: ${String(last)})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Calls and returns the response headers with the result or the error. */
async function call<T>(fn: (onHeaders: (h: Headers) => void) => Promise<T>): Promise<{ value?: T; error?: RpcError; headers: Headers; ms: number }> {
  let headers: Headers = {};
  const started = Date.now();
  try {
    const value = await fn((h) => (headers = h));
    return { value, headers, ms: Date.now() - started };
  } catch (e) {
    return { error: e as RpcError, headers: (e as RpcError).headers ?? headers, ms: Date.now() - started };
  }
}

describe("consistency routing", () => {
  let registryServer: RegistryServer;
  const regions = new Map<Region, RegionSetup>();
  /** eu-west's client (and cn-north's, whose server knows no staleness bound). */
  let client: Client<typeof Accounts>;
  let cnClient: Client<typeof Accounts>;
  let clientTransport: TcpClientTransport;
  const transports: TcpClientTransport[] = [];
  /**
   * eu-west's replica clock: synced by a loop of linearizable reads of the primary (us-east,
   * through its link) as a replica pulling from its primary would; eu-west's server reports it.
   */
  const euClock = new ReplicaClock();
  let replicating = true;
  let replication: Promise<void> | undefined;

  beforeAll(async () => {
    registryServer = await serveRegistry({ insecure: true, transport: new TcpServerTransport() });
    for (const region of REGIONS) {
      const registryLink = await createLink({ target: registryServer.address });
      const transport = new TcpClientTransport({ connectTimeoutMs: 1000 });
      const registry = createRegistry({
        store: createRemoteStore({ transport, address: registryLink.address, timeoutMs: 1000, pollWaitMs: 1000 }),
        region,
        healthIntervalMs: 150,
        staleAfterMs: 2000,
        primaryLeaseMs: 1000,
        leaseTtlMs: 5000,
        timeoutMs: 1000,
      });
      const port = await freePort();
      const serviceLink = await createLink({ target: `127.0.0.1:${port}` });
      // Each region's server keeps balances in memory; the served region tells who answered.
      const balances = new Map<string, number>();
      const fencing = fencingMiddleware(registry, region === "eu-west" ? { staleness: () => euClock.staleMs() } : {});
      const rpcServer = createServer({ transport: new TcpServerTransport({ port }), region, middleware: [fencing], metrics: false }).register(Accounts, {
        deposit: (req) => {
          const balance = (balances.get(req.account) ?? 0) + req.amount;
          balances.set(req.account, balance);
          return { balance };
        },
        balance: (req) => ({ balance: balances.get(req.account) ?? 0 }),
      });
      const server = await listenAndRegister(rpcServer, registry, { services: [Accounts], transport: "tcp", advertise: serviceLink.address });
      regions.set(region, { registry, registryLink, serviceLink, directAddress: `127.0.0.1:${port}`, server });
    }
    await regions.get("us-east")!.registry.ensurePrimary(Accounts.typeName, "us-east");
    const eu = regions.get("eu-west")!;
    // An instance of another transport kind in eu-west, at an address where nothing listens:
    // clients routing with `transport: "tcp"` must never pick it.
    await eu.registry.register({ service: Accounts.typeName, address: "127.0.0.1:1", transport: "grpc" });
    clientTransport = new TcpClientTransport({ connectTimeoutMs: 1000 });
    client = createClient(Accounts, { transport: clientTransport, ...routingOptions(eu.registry, { downForMs: 2000, transport: "tcp" }), timeoutMs: 3000 });
    cnClient = createClient(Accounts, {
      transport: clientTransport,
      ...routingOptions(regions.get("cn-north")!.registry, { downForMs: 2000, transport: "tcp" }),
      timeoutMs: 3000,
    });
    await until("every instance visible from eu-west", async () => ((await eu.registry.resolve(Accounts.typeName)).length === 4 ? true : undefined));
    const replicaTransport = new TcpClientTransport({ connectTimeoutMs: 1000 });
    transports.push(replicaTransport);
    const primary = createClient(Accounts, { transport: replicaTransport, endpoints: [{ address: regions.get("us-east")!.serviceLink.address }], timeoutMs: 1000 });
    replication = (async () => {
      while (replicating) {
        const issued = Date.now();
        const ok = await primary.balance({ account: "alice" }, { consistency: "linearizable" }).then(
          () => true,
          () => false,
        );
        if (ok) euClock.synced(issued);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
  }, 30_000);

  afterAll(async () => {
    replicating = false;
    await replication;
    await clientTransport?.close();
    for (const t of transports) await t.close();
    for (const r of regions.values()) {
      await r.server.close({ graceMs: 100 });
      await r.registry.close();
      await r.serviceLink.close();
      await r.registryLink.close();
    }
    await registryServer?.close();
  });

  /** A client straight to one region's server (no routing), for fencing checks. */
  function direct(region: Region): Client<typeof Accounts> {
    const transport = new TcpClientTransport({ connectTimeoutMs: 1000 });
    transports.push(transport);
    return createClient(Accounts, { transport, endpoints: [{ address: regions.get(region)!.directAddress }], timeoutMs: 2000 });
  }

  it("routing - writes and linearizable reads go to the primary region, eventual reads stay in the caller's", async () => {
    const write = await call((onHeaders) => client.deposit({ account: "alice", amount: 5 }, { onHeaders }));
    expect(write.error).toBeUndefined();
    expect(write.headers[HeaderKeys.servedRegion]).toBe("us-east");
    expect(write.headers[HeaderKeys.epoch]).toBe("1");
    const strong = await call((onHeaders) => client.balance({ account: "alice" }, { onHeaders, consistency: "linearizable" }));
    expect(strong.value?.balance).toBe(5);
    expect(strong.headers[HeaderKeys.servedRegion]).toBe("us-east");
    expect(strong.headers[HeaderKeys.staleness]).toBeUndefined();
    const eventual = await call((onHeaders) => client.balance({ account: "alice" }, { onHeaders, consistency: "eventual" }));
    expect(eventual.headers[HeaderKeys.servedRegion]).toBe("eu-west");
  });

  it("routing - a client routing with a transport kind only calls instances registered with it", async () => {
    const eu = regions.get("eu-west")!;
    expect((await eu.registry.resolve(Accounts.typeName, { region: "eu-west" })).map((i) => i.transport).sort()).toEqual(["grpc", "tcp"]);
    expect(await eu.registry.resolve(Accounts.typeName, { transport: "grpc" })).toHaveLength(1);
    // Eventual reads stay in eu-west, and never pick the grpc instance (nothing listens there).
    for (let i = 0; i < 6; i++) {
      const r = await call((onHeaders) => client.balance({ account: "alice" }, { onHeaders, consistency: "eventual" }));
      expect(r.error).toBeUndefined();
      expect(r.headers[HeaderKeys.servedRegion]).toBe("eu-west");
    }
    // Without the filter, round robin over eu-west's two instances reaches the grpc one.
    const unfiltered = createClient(Accounts, { transport: clientTransport, ...routingOptions(eu.registry), timeoutMs: 3000 });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await call(() => unfiltered.balance({ account: "alice" }, { consistency: "eventual" })));
    expect(results.filter((r) => r.error?.code === Code.UNAVAILABLE).length).toBeGreaterThan(0);
  });

  it("routing - with the primary region cut off, reads fall back and say so, writes fail fast, the old primary stops, and healing recovers", async () => {
    const us = regions.get("us-east")!;
    await until("eu-west's replica synced", async () => (euClock.syncedAt !== undefined ? true : undefined));
    us.serviceLink.blackhole(true);
    us.registryLink.blackhole(true);
    try {
      const read = await call((onHeaders) => client.balance({ account: "alice" }, { onHeaders, consistency: "linearizable" }));
      expect(read.error).toBeUndefined();
      expect(read.headers[HeaderKeys.servedRegion]).toBe("eu-west");
      // eu-west's replica last synced before the cut, and the read fell back only after the
      // primary's share of its budget (1.5 s): the bound is at least that.
      expect(read.headers[HeaderKeys.staleness]).toMatch(/^\d+$/);
      expect(Number(read.headers[HeaderKeys.staleness])).toBeGreaterThanOrEqual(1400);
      // The primary is known down now: writes fail fast, without being sent.
      const write = await call((onHeaders) => client.deposit({ account: "alice", amount: 1 }, { onHeaders }));
      expect(write.error?.code).toBe(Code.UNAVAILABLE);
      expect(write.error?.notSent).toBe(true);
      // cn-north's server knows no bound.
      const cnRead = await call((onHeaders) => cnClient.balance({ account: "alice" }, { onHeaders, consistency: "linearizable" }));
      expect(cnRead.error).toBeUndefined();
      expect(cnRead.headers[HeaderKeys.servedRegion]).toBe("cn-north");
      expect(cnRead.headers[HeaderKeys.staleness]).toBe("unknown");
      // The cut-off primary cannot confirm its role any more and refuses writes by itself.
      const fenced = await until("the cut-off primary refusing writes", async () => {
        const r = await call(() => direct("us-east").deposit({ account: "bob", amount: 1 }));
        return r.error?.code === Code.UNAVAILABLE ? r.error : undefined;
      });
      expect(fenced.message).toMatch(/cannot confirm/);
    } finally {
      us.serviceLink.heal();
      us.registryLink.heal();
    }
    const back = await until("linearizable reads served by the primary again", async () => {
      const r = await call((onHeaders) => client.balance({ account: "alice" }, { onHeaders, consistency: "linearizable" }));
      return r.headers[HeaderKeys.servedRegion] === "us-east" ? r : undefined;
    });
    expect(back.value?.balance).toBe(5);
    const write = await until("writes accepted again", async () => {
      const r = await call((onHeaders) => client.deposit({ account: "alice", amount: 2 }, { onHeaders }));
      return r.error === undefined ? r : undefined;
    });
    expect(write.value?.balance).toBe(7);
  });

  it("routing - moving the primary bumps the epoch and fences the old primary", async () => {
    const eu = regions.get("eu-west")!;
    const moved = await eu.registry.movePrimary(Accounts.typeName, "eu-west", { expectedEpoch: 1 });
    expect(moved).toMatchObject({ region: "eu-west", epoch: 2 });
    const write = await until("writes served by the new primary", async () => {
      const r = await call((onHeaders) => client.deposit({ account: "carol", amount: 3 }, { onHeaders }));
      return r.error === undefined ? r : undefined;
    });
    expect(write.headers[HeaderKeys.servedRegion]).toBe("eu-west");
    expect(write.headers[HeaderKeys.epoch]).toBe("2");
    // A caller still routing under epoch 1 reaches the old primary: refused.
    const stale = await call(() => direct("us-east").deposit({ account: "carol", amount: 1 }, { headers: { [HeaderKeys.epoch]: "1" } }));
    expect(stale.error?.code).toBe(Code.FAILED_PRECONDITION);
    expect(stale.error?.message).toMatch(/not the primary/);
    const wrongEpoch = await call(() => direct("eu-west").deposit({ account: "carol", amount: 1 }, { headers: { [HeaderKeys.epoch]: "1" } }));
    expect(wrongEpoch.error?.code).toBe(Code.FAILED_PRECONDITION);
    expect(wrongEpoch.error?.message).toMatch(/stale primary epoch/);
  });
});
