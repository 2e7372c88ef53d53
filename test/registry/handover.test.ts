/**
 * Handover without a gap, and errors that say what happened. Two regions over TCP on the
 * embedded registry: after the primary moves, the new primary says "I accept in N ms"
 * (`x-primary-in-ms`); a client that only writes waits that long and sends again, so its writes
 * resume within the old lease plus a round trip and none fails with "cannot be reached";
 * linearizable reads fall back meanwhile. Calls to a primary region without instances say so
 * and name where the instances are; a write that times out names its write id.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRegistry,
  type Registry,
  serveRegistry,
  type RegistryServer,
  WRITE_ID_HEADER,
  WRITE_OUTCOME_HEADER,
  fencedKv,
  createRemoteStore,
  fencingMiddleware,
  listenAndRegister,
  routingOptions,
  type RegisteredServer,
} from "meridian-rpc/registry";
import { createClient, type Client, Code, RpcError, createServer, HeaderKeys, type Headers } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { Accounts } from "./gen/accounts.js";

const LEASE_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("handover and errors", () => {
  let registryServer: RegistryServer;
  const registries = new Map<string, Registry>();
  const servers = new Map<string, RegisteredServer>();
  const transports: TcpClientTransport[] = [];
  /** Set while fra's handler should sleep (a slow write, for the timeout case). */
  let slowMs = 0;

  async function region(name: string): Promise<void> {
    const transport = new TcpClientTransport({ connectTimeoutMs: 1000 });
    transports.push(transport);
    const registry = createRegistry({
      store: createRemoteStore({ transport, address: registryServer.address, timeoutMs: 1000, pollWaitMs: 1000 }),
      region: name,
      healthIntervalMs: 100,
      staleAfterMs: 3000,
      primaryLeaseMs: LEASE_MS,
      leaseTtlMs: 5000,
      timeoutMs: 1000,
    });
    registries.set(name, registry);
    const server = createServer({ transport: new TcpServerTransport(), region: name, middleware: [fencingMiddleware(registry)], metrics: false }).register(Accounts, {
      async deposit(req, ctx) {
        if (slowMs > 0) await sleep(slowMs);
        const kv = fencedKv(registry, ctx);
        const key = `balance/${req.account}`;
        for (;;) {
          const current = (await kv.get(key)).kv;
          const balance = Number(current?.value ?? 0) + req.amount;
          if ((await kv.cas(key, String(balance), current?.modRevision ?? 0)).ok) return { balance };
        }
      },
      async balance(req, ctx) {
        if (ctx.consistency !== "linearizable") return { balance: -1 };
        return { balance: Number((await fencedKv(registry, ctx).get(`balance/${req.account}`)).kv?.value ?? 0) };
      },
    });
    servers.set(name, await listenAndRegister(server, registry, { services: [Accounts], transport: "tcp" }));
  }

  function client(name: string, timeoutMs = 10_000): Client<typeof Accounts> {
    const transport = new TcpClientTransport({ connectTimeoutMs: 1000 });
    transports.push(transport);
    return createClient(Accounts, { transport, ...routingOptions(registries.get(name)!, { transport: "tcp", downForMs: 2000 }), timeoutMs });
  }

  beforeAll(async () => {
    registryServer = await serveRegistry({ insecure: true, transport: new TcpServerTransport() });
    await region("fra");
    await region("sg");
    await registries.get("fra")!.ensurePrimary(Accounts.typeName, "sg");
    for (const r of registries.values()) {
      for (let i = 0; i < 200 && (await r.resolve(Accounts.typeName)).length < 2; i++) await sleep(50);
    }
  }, 30_000);

  afterAll(async () => {
    for (const t of transports) await t.close();
    for (const s of servers.values()) await s.close({ graceMs: 100 });
    for (const r of registries.values()) await r.close();
    await registryServer?.close();
  });

  it("handover - a write-only client's writes resume after the old lease, none fails, reads fall back meanwhile", async () => {
    const writer = client("fra");
    const reader = client("fra");
    expect((await writer.deposit({ account: "h", amount: 1 })).balance).toBe(1);

    const moved = await registries.get("fra")!.movePrimary(Accounts.typeName, "fra");
    const movedAt = Date.now();
    // Wait until fra's own cache knows (the client routes by it), then write at once.
    for (let i = 0; i < 100 && (await registries.get("fra")!.view(Accounts.typeName)).primary?.epoch !== moved.epoch; i++) await sleep(20);
    const readHeaders: Headers[] = [];
    const readErrors: unknown[] = [];
    const reads = (async () => {
      for (let i = 0; i < 10; i++) {
        await reader
          .balance({ account: "h" }, { consistency: "linearizable", onHeaders: (h) => readHeaders.push(h) })
          .catch((e: unknown) => readErrors.push(e));
        await sleep(50);
      }
    })();
    const written = await writer.deposit({ account: "h", amount: 10 }, { onHeaders: (h) => readHeaders.push({ ...h, write: "1" }) });
    const resumedAfterMs = Date.now() - movedAt;
    await reads;
    expect(written.balance).toBe(11);
    // The new primary waited out the old one's lease (the time a write could not be taken), and
    // the write resumed right after: well within lease + one round trip + scheduling slack.
    expect(resumedAfterMs).toBeGreaterThanOrEqual(LEASE_MS - 100);
    expect(resumedAfterMs).toBeLessThan(LEASE_MS + 4000);
    // No read failed meanwhile: they were served by fra's data, said so, or by the primary.
    expect(readErrors).toEqual([]);
    expect(readHeaders.filter((h) => h.write === undefined).every((h) => h[HeaderKeys.servedRegion] === "fra")).toBe(true);
    // And fra was never marked down: the next write goes through at once.
    expect((await writer.deposit({ account: "h", amount: 100 })).balance).toBe(111);
    console.log(`handover: writes resumed ${resumedAfterMs} ms after the move (lease ${LEASE_MS} ms)`);
  }, 30_000);

  it("errors - a primary region without instances is named, with where the instances are", async () => {
    const sgRegistry = registries.get("sg")!;
    const current = (await sgRegistry.primary(Accounts.typeName))!;
    // A region with no instance of the service becomes the primary.
    await sgRegistry.movePrimary(Accounts.typeName, "mars", { expectedEpoch: current.epoch });
    const sg = client("sg");
    for (let i = 0; i < 100 && (await sgRegistry.view(Accounts.typeName)).primary?.region !== "mars"; i++) await sleep(20);
    const error = await sg.deposit({ account: "x", amount: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).code).toBe(Code.UNAVAILABLE);
    expect((error as RpcError).message).toBe(`no instance of ${Accounts.typeName} in the primary region mars (1 in fra, 1 in sg)`);
    // A linearizable read falls back to the caller's region instead.
    const headers: Headers[] = [];
    await sg.balance({ account: "x" }, { consistency: "linearizable", onHeaders: (h) => headers.push(h) });
    expect(headers[0]?.[HeaderKeys.servedRegion]).toBe("sg");
    await sgRegistry.movePrimary(Accounts.typeName, "fra");
  }, 30_000);

  it("errors - a write that times out after it was sent names its write id, which resolves it", async () => {
    const fraRegistry = registries.get("fra")!;
    for (let i = 0; i < 100 && (await fraRegistry.view(Accounts.typeName)).primary?.region !== "fra"; i++) await sleep(20);
    const writer = client("fra", 6000);
    await writer.deposit({ account: "t", amount: 1 }).catch(() => undefined);
    slowMs = 800;
    let error: unknown;
    try {
      await writer.deposit({ account: "t", amount: 5 }, { timeoutMs: 400 });
    } catch (e) {
      error = e;
    } finally {
      slowMs = 0;
    }
    expect(error).toBeInstanceOf(RpcError);
    const rpc = error as RpcError;
    expect(rpc.code).toBe(Code.DEADLINE_EXCEEDED);
    const writeId = rpc.headers[WRITE_ID_HEADER]!;
    expect(writeId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(rpc.headers[WRITE_OUTCOME_HEADER]).toBe("unknown");
    expect(rpc.message).toContain(`write ${writeId} timed out after it was sent to fra; its outcome is unknown: settle it with store.resolveWrite("${writeId}")`);
    // The handler went on after the caller gave up; its store write carried that id. Either way
    // the resolution is final.
    await sleep(1000);
    const resolution = await fraRegistry.store.resolveWrite(writeId);
    expect(["applied", "not_applied"]).toContain(resolution.status);
  }, 30_000);
});

describe("down-marking of an unreachable primary", () => {
  it("down - a write-only client pays one call timeout, then fails fast while background probes fail", async () => {
    const { createLink } = await import("../../tools/linkproxy/index.js");
    const { freePort } = await import("../support/etcd-cluster.js");
    const registryServer = await serveRegistry({ insecure: true, transport: new TcpServerTransport() });
    const transports: TcpClientTransport[] = [];
    const registries: Registry[] = [];
    const open = (name: string) => {
      const transport = new TcpClientTransport({ connectTimeoutMs: 500 });
      transports.push(transport);
      const registry = createRegistry({
        store: createRemoteStore({ transport, address: registryServer.address, timeoutMs: 1000, pollWaitMs: 1000 }),
        region: name,
        healthIntervalMs: 100,
        primaryLeaseMs: 500,
        timeoutMs: 1000,
      });
      registries.push(registry);
      return registry;
    };
    const fra = open("fra");
    const sg = open("sg");
    const port = await freePort();
    const link = await createLink({ target: `127.0.0.1:${port}` });
    const server = createServer({ transport: new TcpServerTransport({ port }), region: "fra", middleware: [fencingMiddleware(fra)], metrics: false }).register(Accounts, {
      deposit: () => ({ balance: 1 }),
      balance: () => ({ balance: 1 }),
    });
    const registered = await listenAndRegister(server, fra, { services: [Accounts], transport: "tcp", advertise: link.address });
    try {
      await sg.ensurePrimary(Accounts.typeName, "fra");
      const transport = new TcpClientTransport({ connectTimeoutMs: 500 });
      transports.push(transport);
      const writer = createClient(Accounts, { transport, ...routingOptions(sg, { transport: "tcp", downForMs: 400, probeIntervalMs: 100 }), timeoutMs: 800 });
      for (let i = 0; i < 100 && (await writer.deposit({ account: "a", amount: 1 }).then(() => false, () => true)); i++) await sleep(50);

      link.blackhole(true);
      const slow: number[] = [];
      let failedFast = 0;
      const until = Date.now() + 4000;
      while (Date.now() < until) {
        const started = Date.now();
        const error = await writer.deposit({ account: "a", amount: 1 }).then(() => undefined, (e: unknown) => e as RpcError);
        const took = Date.now() - started;
        expect(error).toBeInstanceOf(RpcError);
        if (took >= 600) slow.push(took);
        else if (error?.message.includes("cannot be reached; writes fail fast")) failedFast++;
        await sleep(50);
      }
      // The first write found out (a full timeout); the probes kept the region down after that.
      expect(slow.length).toBeLessThanOrEqual(2);
      expect(failedFast).toBeGreaterThan(10);
      console.log(`down: ${slow.length} write(s) paid a timeout (${slow.join(", ")} ms), ${failedFast} failed fast over 4 s (downForMs 400)`);

      // The region comes back: a probe answers and writes go through again without waiting out the window.
      link.heal();
      let recovered = false;
      for (let i = 0; i < 100 && !recovered; i++) {
        recovered = await writer.deposit({ account: "a", amount: 1 }).then(() => true, () => false);
        if (!recovered) await sleep(50);
      }
      expect(recovered).toBe(true);
    } finally {
      await registered.close({ graceMs: 0 });
      await link.close();
      for (const t of transports) await t.close();
      for (const r of registries) await r.close();
      await registryServer.close();
    }
  }, 40_000);
});
