import { afterEach, describe, expect, it } from "vitest";
import {
  createRegistry,
  PrimaryConflictError,
  type Registry,
  type ServiceSnapshot,
  createEmbeddedStore,
  type EmbeddedStore,
} from "meridian-rpc/registry";
import { cuttableStore } from "../support/cuttable-store.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ server: EmbeddedStore; registry: (region: string, options?: { leaseTtlMs?: number; cuttable?: boolean }) => Promise<Registry> }> {
  const server = await createEmbeddedStore();
  cleanups.push(() => server.close());
  return {
    server,
    async registry(region, options = {}) {
      const inner = await createEmbeddedStore({ node: server.node });
      const store = options.cuttable ? cuttableStore(inner) : inner;
      const registry = createRegistry({ store, region, leaseTtlMs: options.leaseTtlMs ?? 5000, healthIntervalMs: 100, timeoutMs: 1000 });
      cleanups.push(() => registry.close());
      return registry;
    },
  };
}

/** Waits for `probe` to hold; bounds are generous (a loaded machine is slow, never wrong). */
async function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("registry client", () => {
  it("registry - instances registered in several regions are resolved from the watch-fed cache", async () => {
    const { registry } = await setup();
    const cn = await registry("cn-north");
    const eu = await registry("eu-west");
    const reader = await registry("us-east");
    const seen: ServiceSnapshot[] = [];
    reader.subscribe("demo.Accounts", (v) => seen.push(v));
    expect(await reader.resolve("demo.Accounts")).toEqual([]);
    const a = await cn.register({ service: "demo.Accounts", address: "127.0.0.1:1001", transport: "tcp", tags: { v: "1" } });
    await eu.register({ service: "demo.Accounts", address: "127.0.0.1:1002", transport: "tcp", weight: 3 });
    await until("both instances", async () => (await reader.resolve("demo.Accounts")).length === 2);
    expect((await reader.resolve("demo.Accounts", { region: "eu-west" })).map((i) => [i.address, i.weight])).toEqual([["127.0.0.1:1002", 3]]);
    const view = await reader.view("demo.Accounts");
    expect(view.endpoints("cn-north")).toEqual([{ address: "127.0.0.1:1001", region: "cn-north", weight: 1, tags: { v: "1" } }]);
    // Endpoint arrays stay the same objects while nothing changes (load balancers key on them).
    expect(view.endpoints("cn-north")).toBe(view.endpoints("cn-north"));
    await a.deregister();
    await until("the deregistered instance gone", async () => (await reader.resolve("demo.Accounts")).length === 1);
    expect(seen.length).toBeGreaterThan(0);
  });

  it("registry - an instance cut off from the store disappears when its lease runs out and comes back when healed", async () => {
    const { registry } = await setup();
    const cut = await registry("cn-north", { leaseTtlMs: 500, cuttable: true });
    const reader = await registry("eu-west");
    await cut.register({ service: "demo.Accounts", address: "127.0.0.1:1001", transport: "tcp" });
    await until("registered", async () => (await reader.resolve("demo.Accounts")).length === 1);
    (cut.store as ReturnType<typeof cuttableStore>).cut(true);
    await until("expired", async () => (await reader.resolve("demo.Accounts")).length === 0);
    await until("health shows the cut", () => !cut.health().reachable);
    (cut.store as ReturnType<typeof cuttableStore>).cut(false);
    await until("registered again", async () => (await reader.resolve("demo.Accounts")).length === 1);
    await until("health back", () => cut.health().reachable);
  });

  it("registry - the primary region moves by compare-and-set with a growing epoch; concurrent moves conflict", async () => {
    const { registry } = await setup();
    const cn = await registry("cn-north");
    const eu = await registry("eu-west");
    const first = await cn.ensurePrimary("demo.Accounts", "cn-north");
    expect(first).toMatchObject({ region: "cn-north", epoch: 1 });
    expect(await eu.ensurePrimary("demo.Accounts", "eu-west")).toMatchObject({ region: "cn-north", epoch: 1 });
    const moved = await eu.movePrimary("demo.Accounts", "eu-west", { expectedEpoch: 1 });
    expect(moved).toMatchObject({ region: "eu-west", epoch: 2 });
    expect(moved.since).toBeGreaterThan(first.since);
    // The lease stays the record's; the new primary waits out the previous one.
    expect(moved).toMatchObject({ leaseMs: first.leaseMs, previousLeaseMs: first.leaseMs });
    expect(first.previousLeaseMs).toBeUndefined();
    expect(await eu.movePrimary("demo.Accounts", "eu-west")).toMatchObject({ epoch: 2 });
    // A second operator who also saw epoch 1 loses.
    await expect(cn.movePrimary("demo.Accounts", "us-east", { expectedEpoch: 1 })).rejects.toBeInstanceOf(PrimaryConflictError);
    const results = await Promise.allSettled([cn.movePrimary("demo.Accounts", "us-east", { expectedEpoch: 2 }), eu.movePrimary("demo.Accounts", "cn-north", { expectedEpoch: 2 })]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect((await cn.primary("demo.Accounts"))?.epoch).toBe(3);
    // Every cache learns the move from the watch.
    await until("cache updated", async () => (await eu.view("demo.Accounts")).primary?.epoch === 3);
  });

  it("registry - the key/value API is compare-and-set on revisions", async () => {
    const { registry } = await setup();
    const r = await registry("cn-north");
    const created = await r.kv.create("balance/alice", "10");
    expect(created.ok).toBe(true);
    expect((await r.kv.create("balance/alice", "99")).ok).toBe(false);
    if (!created.ok) return;
    expect((await r.kv.cas("balance/alice", "15", created.revision)).ok).toBe(true);
    expect((await r.kv.cas("balance/alice", "20", created.revision)).ok).toBe(false);
    expect((await r.kv.get("balance/alice")).kv?.value).toBe("15");
    expect((await r.kv.delete("balance/alice")).ok).toBe(true);
    expect((await r.kv.get("balance/alice")).kv).toBeUndefined();
  });
});
