/**
 * The registry as a library: a default store, `ready()`, the URL parser and opener, `kv.list` /
 * `kv.watch` with keys relative to the kv space, and the watch-fed Replica with its staleness bound.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  createRegistry,
  type Registry,
  serveRegistry,
  createEmbeddedStore,
  Replica,
  openRegistryStore,
  parseRegistryUrl,
} from "meridian-rpc/registry";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function track(registry: Registry): Registry {
  cleanups.push(() => registry.close());
  return registry;
}

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("registry as a library", () => {
  it("library - createRegistry without a store uses an embedded store in process; ready() resolves once it answered", async () => {
    const registry = track(createRegistry({ region: "fra" }));
    expect(registry.store.kind).toBe("embedded");
    await registry.ready({ services: ["demo.Profiles"] });
    expect(registry.health().reachable).toBe(true);
    await registry.ensurePrimary("demo.Profiles", "fra");
    expect((await registry.view("demo.Profiles")).primary?.region).toBe("fra");
  });

  it("library - ready() rejects with a clear error when the store never answers", async () => {
    const transport = new TcpClientTransport({ connectTimeoutMs: 200 });
    const store = await openRegistryStore("embedded://127.0.0.1:1", { transport, timeoutMs: 200 });
    const registry = track(createRegistry({ store, region: "fra", healthIntervalMs: 100 }));
    await expect(registry.ready({ timeoutMs: 800 })).rejects.toThrow(/did not answer within 800 ms; is it running and reachable from fra\?/);
  });

  it("library - parseRegistryUrl and openRegistryStore", async () => {
    expect(parseRegistryUrl("embedded:")).toEqual({ kind: "in-process" });
    expect(parseRegistryUrl("embedded://127.0.0.1:7000")).toEqual({ kind: "embedded", address: "127.0.0.1:7000" });
    expect(parseRegistryUrl(" etcd://a:2379,b:2379 ")).toEqual({ kind: "etcd", hosts: ["http://a:2379", "http://b:2379"] });
    expect(() => parseRegistryUrl("zookeeper://x:1")).toThrow(/a registry URL is embedded:, embedded:\/\/host:port, etcd:\/\/host:port.* or etcds:\/\/host:port/);
    await expect(openRegistryStore("embedded://127.0.0.1:7000")).rejects.toThrow(/needs a client transport/);
    const server = await serveRegistry({ insecure: true, transport: new TcpServerTransport() });
    cleanups.push(() => server.close());
    const store = await openRegistryStore(`embedded://${server.address}`, { transport: new TcpClientTransport(), timeoutMs: 1000 });
    cleanups.push(() => store.close());
    expect(store.kind).toBe("remote");
    expect((await store.compareAndSet("k", "v", 0)).ok).toBe(true);
    const local = await openRegistryStore("embedded:");
    cleanups.push(() => local.close());
    expect(local.kind).toBe("embedded");
  });

  it("library - kv.list and kv.watch use keys relative to the kv space", async () => {
    const registry = track(createRegistry({ store: await createEmbeddedStore(), region: "fra" }));
    await registry.kv.create("profiles/b", "2");
    await registry.kv.create("profiles/a", "1");
    await registry.kv.create("other/x", "0");
    const listed = await registry.kv.list("profiles/");
    expect(listed.kvs.map((kv) => [kv.key, kv.value])).toEqual([
      ["profiles/a", "1"],
      ["profiles/b", "2"],
    ]);
    expect((await registry.store.get("meridian/kv/profiles/a")).kv?.value).toBe("1");
    const controller = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const batch of registry.kv.watch("profiles/", listed.revision + 1, { signal: controller.signal })) {
        for (const e of batch.events) seen.push(`${e.type} ${e.key}`);
        if (seen.length >= 2) break;
      }
    })();
    await registry.kv.cas("profiles/a", "1b", listed.kvs[0]!.modRevision);
    await registry.kv.delete("profiles/b");
    await watching;
    controller.abort();
    expect(seen).toEqual(["put profiles/a", "delete profiles/b"]);
  });

  it("library - a Replica follows registry.kv, applies deletes, and knows how stale it may be", async () => {
    const registry = track(createRegistry({ store: await createEmbeddedStore(), region: "fra" }));
    await registry.kv.create("profiles/a", "1");
    const replica = new Replica(registry.kv, "profiles/", { syncMs: 50 });
    cleanups.push(async () => replica.stop());
    expect(replica.staleMs()).toBe(Infinity);
    await replica.ready();
    expect(replica.get("profiles/a")?.value).toBe("1");
    await registry.kv.create("profiles/b", "2");
    await until("the replica holds b", () => replica.get("profiles/b")?.value === "2");
    await registry.kv.delete("profiles/a");
    await until("the replica dropped a", () => replica.get("profiles/a") === undefined);
    await until("a staleness bound", () => Number.isFinite(replica.staleMs()));
    expect(replica.staleMs()).toBeLessThan(5000);
    expect(replica.list().map((kv) => kv.key)).toEqual(["profiles/b"]);
  });
});
