import { afterAll, beforeAll, expect, it } from "vitest";
import { createEtcdStore } from "meridian-rpc/registry/etcd";
import type { Store } from "meridian-rpc/registry";
import { checkHistory, type Operation } from "../../tools/linearizability/index.js";
import { startEtcdCluster, type EtcdCluster } from "../support/etcd-cluster.js";
import { describeWithEtcd } from "../support/etcd-gate.js";
import { describeVerdict, finalReads, lostWrites, resolveUnknown, runKvWorkload, type WorkloadClient } from "../support/kv-workload.js";

const REGIONS = ["cn-north", "eu-west", "us-east"];

describeWithEtcd("etcd under faults", () => {
  let cluster: EtcdCluster;
  const stores: Store[] = [];
  beforeAll(async () => {
    cluster = await startEtcdCluster({ names: REGIONS, latencyMs: 5 });
  }, 60_000);
  afterAll(async () => {
    for (const s of stores) await s.close();
    await cluster?.stop();
  });

  it("etcd - concurrent clients in three regions stay linearizable while the leader is killed and a member is cut off", async () => {
    // Three regions, two clients each, each client talking to its own region's member only.
    const clients: WorkloadClient[] = REGIONS.flatMap((region, i) =>
      [0, 1].map((c) => {
        const store = createEtcdStore({ hosts: cluster.clientUrls[i]!, timeoutMs: 1000, keepaliveMs: 2000 });
        stores.push(store);
        return { name: `${region}-${c}`, store };
      }),
    );
    const keys = ["jepsen/a", "jepsen/b", "jepsen/c"];
    const faults: string[] = [];
    const nemesis = (async () => {
      await sleep(1500);
      const leader = await cluster.leader();
      faults.push(`kill leader ${REGIONS[leader]}`);
      await cluster.kill(leader);
      await sleep(2500);
      faults.push(`restart ${REGIONS[leader]}`);
      await cluster.restart(leader);
      await sleep(2000);
      const next = await cluster.leader();
      faults.push(`cut off ${REGIONS[next]} (leader)`);
      cluster.cutOff(next);
      await sleep(3000);
      faults.push("heal");
      cluster.heal();
    })();
    const run = await runKvWorkload(clients, { keys, opsPerClient: 250, durationMs: 11_000, timeoutMs: 1000 });
    await nemesis;
    await cluster.waitHealthy(20_000);
    const finals = await finalReads(run, clients, keys);
    // Unknown outcomes left open first, then resolved by write id.
    const open = run.recorder.history();
    const resolver = createEtcdStore({ hosts: [...cluster.clientUrls], timeoutMs: 3000 });
    stores.push(resolver);
    const resolved = await resolveUnknown(run, resolver);
    const history = run.recorder.history();

    console.log(`etcd under faults - faults: ${faults.join(", ")}; ops ${JSON.stringify(run.counts)}; unknown resolved ${JSON.stringify(resolved)}`);
    expect(faults).toHaveLength(4);
    expect(run.counts.ok).toBeGreaterThan(100);
    const openVerdict = checkHistory(open, { timeBudgetMs: 15_000 });
    expect(openVerdict.ok, describeVerdict(openVerdict)).toBe(true);
    const verdict = checkHistory(history, { timeBudgetMs: 15_000 });
    expect(verdict.ok, describeVerdict(verdict)).toBe(true);
    expect(lostWrites(history, finals)).toEqual([]);

    // The same real history with one final read made stale must be rejected.
    const stale = staleFinalRead(history);
    expect(stale).toBeDefined();
    expect(checkHistory(stale!, { timeBudgetMs: 15_000, shrink: false }).verdict).toBe("violation");
  }, 60_000);
});

/**
 * The history with the last final read of some key replaced by the value of an older
 * acknowledged write to that key (a stale read), or undefined when no key has one.
 */
function staleFinalRead(history: readonly Operation[]): Operation[] | undefined {
  for (let i = history.length - 1; i >= 0; i--) {
    const read = history[i]!;
    if (!String(read.client).endsWith("/final") || !read.output || !("value" in read.output)) continue;
    const current = read.output.value;
    const older = history.find(
      (w) => w.key === read.key && w.input.type === "cas" && w.input.value !== current && w.return !== undefined && w.output !== undefined && "ok" in w.output && w.output.ok,
    );
    if (!older || older.input.type !== "cas") continue;
    const copy = [...history];
    copy[i] = { ...read, output: { value: older.input.value } };
    return copy;
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
