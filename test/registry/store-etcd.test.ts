import { afterAll, beforeAll } from "vitest";
import { createEtcdStore } from "meridian-rpc/registry/etcd";
import type { Store } from "meridian-rpc/registry";
import { startEtcdCluster, type EtcdCluster } from "../support/etcd-cluster.js";
import { describeWithEtcd } from "../support/etcd-gate.js";
import { lossyOverLink } from "../support/lossy-store.js";
import { storeContract } from "./store-contract.js";

describeWithEtcd("etcd store", () => {
  let cluster: EtcdCluster;
  let store: Store;
  beforeAll(async () => {
    cluster = await startEtcdCluster();
    store = createEtcdStore({ hosts: cluster.clientUrls[0]!, timeoutMs: 5000 });
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await cluster?.stop();
  });

  storeContract({
    store: () => store,
    leaseTtlMs: 2000,
    expiryGraceMs: 5000,
    lossy: () =>
      // 300 ms each way: requests reach etcd at 300 ms, replies would be back at 600 ms.
      lossyOverLink(`127.0.0.1:${cluster.members[0]!.clientPort}`, 300, (address) => createEtcdStore({ hosts: `http://${address}`, timeoutMs: 1500 })),
    async compactBelow() {
      const { revision } = await store.get("compact/probe");
      const res = await fetch(`${cluster.clientUrls[0]}/v3/kv/compaction`, {
        method: "POST",
        body: JSON.stringify({ revision: String(revision), physical: true }),
      });
      if (!res.ok) throw new Error(`compaction failed: HTTP ${res.status}`);
      return 1;
    },
  });
});
