/**
 * The pause scenario on every store: an instance of the old primary admits a write, pauses (as a
 * GC pause or a stalled event loop would) between admitting it and writing, the primary moves,
 * the new primary writes the key, the old instance resumes: its write must be refused (its caller
 * told FAILED_PRECONDITION, not applied), the new primary's write stands, the history is
 * linearizable and, in the store's own order, every write of the service was made under the
 * epoch current at its revision (one primary at a time).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRegistry,
  type Registry,
  EmbeddedNode,
  serveRegistry,
  type RegistryServer,
  createEmbeddedStore,
  WRITE_OUTCOME_HEADER,
  fencedKv,
  createRemoteStore,
  fencingMiddleware,
  listenAndRegister,
  routingOptions,
  type RegisteredServer,
  type Store,
  type WatchEvent,
} from "meridian-rpc/registry";
import { createEtcdStore } from "meridian-rpc/registry/etcd";
import { createClient, type Client, Code, RpcError, createServer } from "meridian-rpc";
import { checkHistory, HistoryRecorder } from "../../tools/linearizability/index.js";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { startEtcdCluster, type EtcdCluster } from "../support/etcd-cluster.js";
import { describeWithEtcd } from "../support/etcd-gate.js";
import { Accounts } from "./gen/accounts.js";

const REGIONS = ["fra", "sg"] as const;
type Region = (typeof REGIONS)[number];

/** How a store kind is set up: one store per region over shared state. */
interface StoreKind {
  storeFor(region: Region, index: number): Promise<Store>;
  close(): Promise<void>;
}

/** A value as the test's handlers store it: the balance and who wrote it under which epoch. */
interface Stamp {
  readonly balance: number;
  readonly epoch: number;
  readonly region: Region;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries `fn` until it resolves (generous bound: a loaded machine is slow, never wrong). */
async function eventually<T>(what: string, fn: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${String(e)}`);
      await sleep(50);
    }
  }
}

/** A gate the old primary's handler waits at between admitting a write and writing it. */
class Pause {
  private release!: () => void;
  private reachedResolve!: () => void;
  readonly reached = new Promise<void>((resolve) => (this.reachedResolve = resolve));
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));

  async hold(): Promise<void> {
    this.reachedResolve();
    await this.released;
  }

  resume(): void {
    this.release();
  }
}

function pauseScenario(kind: () => StoreKind): void {
  const registries = new Map<Region, Registry>();
  const servers: RegisteredServer[] = [];
  const clients = new Map<Region, Client<typeof Accounts>>();
  const transports: TcpClientTransport[] = [];
  const recorder = new HistoryRecorder();
  /** Set while a region's handler should pause before its store write. */
  const pauses = new Map<Region, Pause>();
  let startRevision = 0;

  beforeAll(async () => {
    for (const [index, region] of REGIONS.entries()) {
      const registry = createRegistry({
        store: await kind().storeFor(region, index),
        region,
        healthIntervalMs: 100,
        staleAfterMs: 3000,
        primaryLeaseMs: 600,
        leaseTtlMs: 5000,
        timeoutMs: 2000,
      });
      registries.set(region, registry);
      const server = createServer({ transport: new TcpServerTransport(), region, middleware: [fencingMiddleware(registry)], metrics: false }).register(Accounts, {
        async deposit(req, ctx) {
          const kv = fencedKv(registry, ctx);
          const key = `balance/${req.account}`;
          // The pause: admitted by the fence, nothing read or written yet (the case: the
          // instance then reads the key afresh, so a compare on the key alone cannot catch it).
          await pauses.get(region)?.hold();
          const read = recorder.invoke(region, key, { type: "get" });
          let current;
          try {
            current = (await kv.get(key)).kv;
          } catch (e) {
            read.fail();
            throw e;
          }
          read.ok(current ? { value: current.value, revision: current.modRevision } : { value: null });
          const balance = (current ? (JSON.parse(current.value) as Stamp).balance : 0) + req.amount;
          const value = JSON.stringify({ balance, epoch: kv.admitted.epoch, region } satisfies Stamp);
          const expected = current?.modRevision ?? 0;
          const write = recorder.invoke(region, key, { type: "cas", expected, value });
          try {
            const r = await kv.cas(key, value, expected);
            if (!r.ok) {
              write.ok({ ok: false, current: r.current ? { value: r.current.value, revision: r.current.modRevision } : null });
              throw new RpcError(Code.ABORTED, `${key} changed meanwhile; try again`);
            }
            write.ok({ ok: true, revision: r.revision });
            return { balance };
          } catch (e) {
            if (e instanceof RpcError && e.code === Code.ABORTED) throw e;
            if (ctx.responseHeaders[WRITE_OUTCOME_HEADER] === "not-applied") write.fail();
            else write.unknown();
            throw e;
          }
        },
        async balance(req, ctx) {
          const got = (await fencedKv(registry, ctx).get(`balance/${req.account}`)).kv;
          return { balance: got ? (JSON.parse(got.value) as Stamp).balance : 0 };
        },
      });
      servers.push(await listenAndRegister(server, registry, { services: [Accounts], transport: "tcp" }));
      const transport = new TcpClientTransport({ connectTimeoutMs: 1000 });
      transports.push(transport);
      clients.set(region, createClient(Accounts, { transport, ...routingOptions(registry, { transport: "tcp" }), timeoutMs: 30_000 }));
    }
    const fra = registries.get("fra")!;
    startRevision = (await fra.store.get("meridian/")).revision + 1;
    await fra.ensurePrimary(Accounts.typeName, "fra");
    for (const registry of registries.values()) {
      await eventually("both instances visible", async () => {
        if ((await registry.resolve(Accounts.typeName)).length !== 2) throw new Error("not yet");
      });
    }
  }, 90_000);

  afterAll(async () => {
    for (const t of transports) await t.close();
    for (const s of servers) await s.close({ graceMs: 100 });
    for (const r of registries.values()) await r.close();
    await kind().close();
  });

  it("fencing - a write admitted by the old primary and paused past a move is refused; the new primary's stands", async () => {
    const fraClient = clients.get("fra")!;
    const sgClient = clients.get("sg")!;
    expect((await eventually("a first write in fra", () => fraClient.deposit({ account: "alice", amount: 1 }))).balance).toBe(1);

    const pause = new Pause();
    pauses.set("fra", pause);
    const paused = fraClient.deposit({ account: "alice", amount: 100 }).then(
      (value) => ({ value, error: undefined }),
      (error: unknown) => ({ value: undefined, error: error as RpcError }),
    );
    await pause.reached;
    pauses.delete("fra");

    const moved = await registries.get("sg")!.movePrimary(Accounts.typeName, "sg");
    expect(moved.epoch).toBe(2);
    // The new primary takes over once the old one's lease has passed; its write stands.
    const newWrite = await eventually("the new primary's write", () => sgClient.deposit({ account: "alice", amount: 10 }));
    expect(newWrite.balance).toBe(11);

    pause.resume();
    const old = await paused;
    expect(old.value).toBeUndefined();
    expect(old.error).toBeInstanceOf(RpcError);
    expect(old.error?.code).toBe(Code.FAILED_PRECONDITION);
    expect(old.error?.message).toMatch(/refused: fra admitted it as the primary .* \(epoch 1\), but the primary has moved since; nothing was written/);
    expect(old.error?.headers[WRITE_OUTCOME_HEADER]).toBe("not-applied");

    const final = await eventually("a linearizable read in sg", () => sgClient.balance({ account: "alice" }, { consistency: "linearizable" }));
    expect(final.balance).toBe(11);
    const stored = await registries.get("sg")!.kv.get("balance/alice");
    expect(JSON.parse(stored.kv!.value)).toEqual({ balance: 11, epoch: 2, region: "sg" });

    // The store-level history (reads and compare-and-sets of the handlers) is linearizable.
    const verdict = checkHistory(recorder.history());
    expect(verdict.ok, JSON.stringify(verdict)).toBe(true);

    // One primary at a time, in the store's own order: every data write carries the epoch of the
    // primary record current at its revision.
    const store = registries.get("sg")!.store;
    const end = (await store.get("meridian/")).revision;
    const events: WatchEvent[] = [];
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 15_000);
    try {
      for await (const batch of store.watch("meridian/", startRevision, { signal: controller.signal })) {
        events.push(...batch.events);
        if (batch.revision >= end) break;
      }
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    let epoch = 0;
    const writes: { epoch: number; current: number }[] = [];
    for (const e of events) {
      if (e.type !== "put") continue;
      if (e.key.endsWith(`/${Accounts.typeName}/primary`)) epoch = (JSON.parse(e.kv.value) as { epoch: number }).epoch;
      else if (e.key.startsWith("meridian/kv/")) writes.push({ epoch: (JSON.parse(e.kv.value) as Stamp).epoch, current: epoch });
    }
    expect(writes.length).toBeGreaterThanOrEqual(2);
    for (const w of writes) expect(w.epoch).toBe(w.current);
  }, 60_000);
}

describe("fencing - embedded store in process", () => {
  let node: EmbeddedNode | undefined;
  pauseScenario(() => ({
    async storeFor() {
      node ??= await EmbeddedNode.open();
      return createEmbeddedStore({ node });
    },
    async close() {
      await node?.close();
    },
  }));
});

describe("fencing - remote embedded store over TCP", () => {
  let server: RegistryServer | undefined;
  pauseScenario(() => ({
    async storeFor() {
      server ??= await serveRegistry({ insecure: true, transport: new TcpServerTransport() });
      return createRemoteStore({ transport: new TcpClientTransport(), address: server.address, timeoutMs: 2000, pollWaitMs: 1000 });
    },
    async close() {
      await server?.close();
    },
  }));
});

describeWithEtcd("fencing - etcd cluster", () => {
  let cluster: EtcdCluster | undefined;
  pauseScenario(() => ({
    async storeFor(_region, index) {
      cluster ??= await startEtcdCluster();
      return createEtcdStore({ hosts: cluster.clientUrls[index]!, timeoutMs: 3000 });
    },
    async close() {
      await cluster?.stop();
    },
  }));
});
