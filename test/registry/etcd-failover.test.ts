/**
 * etcd host failover per call: with one member cut off from its peers (or frozen), a store (and
 * the `meridian registry primary --move-to` command) given every member's address keeps working,
 * paying at most one member's share of one call's budget, and errors name the member and say
 * what is wrong instead of grpc-js's "Waiting for LB pick".
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRegistry, type Store } from "meridian-rpc/registry";
import { registryCommand } from "../../cli/registry.js";
import { createEtcdStore } from "meridian-rpc/registry/etcd";
import { freePort, startEtcdCluster, type EtcdCluster } from "../support/etcd-cluster.js";
import { describeWithEtcd } from "../support/etcd-gate.js";

describeWithEtcd("etcd failover", () => {
  let cluster: EtcdCluster;
  const stores: Store[] = [];
  beforeAll(async () => {
    cluster = await startEtcdCluster();
  }, 60_000);
  afterAll(async () => {
    for (const s of stores) await s.close();
    await cluster?.stop();
  });

  it("failover - with the first member cut off, every call succeeds through the others and only the first pays a share", async () => {
    const store = createEtcdStore({ hosts: [...cluster.clientUrls], timeoutMs: 3000 });
    stores.push(store);
    expect((await store.compareAndSet("failover/a", "1", 0)).ok).toBe(true);
    const leader = await cluster.leader();
    // Cut off a member that is not the leader, so the other two keep their quorum at once.
    const cut = leader === 0 ? 1 : 0;
    const ordered = createEtcdStore({ hosts: [cluster.clientUrls[cut]!, ...cluster.clientUrls.filter((_, i) => i !== cut)], timeoutMs: 3000 });
    stores.push(ordered);
    cluster.cutOff(cut);
    try {
      const took: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = Date.now();
        const { kv } = await ordered.get("failover/a");
        expect(kv?.value).toBe("1");
        const r = await ordered.compareAndSet(`failover/w${i}`, String(i), 0);
        expect(r.ok).toBe(true);
        took.push(Date.now() - started);
      }
      // The first call waited for the cut-off member's share (3000 / 3), then stuck to a good one.
      expect(took.filter((ms) => ms >= 900).length).toBeLessThanOrEqual(2);
      console.log(`failover: calls took ${took.join(", ")} ms with member ${cut} cut off`);

      // The operator's command with every member given moves the primary every time.
      const operator = createRegistry({ store: createEtcdStore({ hosts: [...cluster.clientUrls], timeoutMs: 3000 }), region: "sg" });
      await operator.ensurePrimary("demo.Failover", "fra");
      await operator.close();
      const url = `etcd://${cluster.clientUrls.map((u) => u.replace("http://", "")).join(",")}`;
      for (const [i, to] of ["sg", "fra", "sg"].entries()) {
        const out: string[] = [];
        const err: string[] = [];
        const code = await registryCommand(["primary", "demo.Failover", "--move-to", to, "--registry", url], { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {} });
        expect(code, err.join("")).toBe(0);
        expect(out.join("")).toContain(`-> ${to} (epoch ${i + 2}`);
      }
    } finally {
      cluster.heal();
    }
  }, 90_000);

  it("failover - a member that cannot be reached is named in plain words", async () => {
    const port = await freePort();
    const store = createEtcdStore({ hosts: `http://127.0.0.1:${port}`, timeoutMs: 500 });
    stores.push(store);
    const error = (await store.get("x").then(
      () => new Error("the read succeeded"),
      (e: unknown) => e,
    )) as Error;
    expect(error.message).toContain(`could not connect to etcd at http://127.0.0.1:${port} (is the member running and reachable from here?)`);
    expect(error.message).not.toContain("LB pick");
    const write = (await store.compareAndSet("x", "1", 0).then(
      () => ({ code: "applied" }),
      (e: unknown) => e,
    )) as { code: string };
    // Never connected: certainly not applied.
    expect(write.code).toBe("UNAVAILABLE");
  }, 30_000);
});
