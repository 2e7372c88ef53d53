import { describe, expect, it } from "vitest";
import { serveRegistry, createEmbeddedStore, createRemoteStore } from "meridian-rpc/registry";
import { createLink, type Link } from "../../tools/linkproxy/index.js";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { checkHistory } from "../../tools/linearizability/index.js";
import { describeVerdict, finalReads, lostWrites, resolveUnknown, runKvWorkload, type WorkloadClient } from "../support/kv-workload.js";
import { lossyStore } from "../support/lossy-store.js";

describe("embedded store under faults", () => {
  it("embedded - concurrent clients stay linearizable while writes lose their requests or replies", async () => {
    const server = await createEmbeddedStore();
    const clients: WorkloadClient[] = [];
    for (const region of ["cn-north", "eu-west", "us-east"]) {
      for (const c of [0, 1]) clients.push({ name: `${region}-${c}`, store: lossyStore(await createEmbeddedStore({ node: server.node }), { lossRate: 0.1 }) });
    }
    const keys = ["jepsen/a", "jepsen/b", "jepsen/c"];
    const run = await runKvWorkload(clients, { keys, opsPerClient: 200, durationMs: 5000, timeoutMs: 1000, maxPauseMs: 2 });
    const finals = await finalReads(run, clients, keys);
    const open = run.recorder.history();
    const resolved = await resolveUnknown(run, server);
    const history = run.recorder.history();
    expect(run.counts.unknown).toBeGreaterThan(10);
    expect(resolved.applied).toBeGreaterThan(0);
    expect(resolved.notApplied).toBeGreaterThan(0);
    const openVerdict = checkHistory(open, { timeBudgetMs: 15_000 });
    expect(openVerdict.ok, describeVerdict(openVerdict)).toBe(true);
    const verdict = checkHistory(history, { timeBudgetMs: 15_000 });
    expect(verdict.ok, describeVerdict(verdict)).toBe(true);
    expect(lostWrites(history, finals)).toEqual([]);
    await server.close();
  }, 30_000);
});

describe("remote embedded store under faults", () => {
  it("embedded - clients in three regions over TCP stay linearizable while a region is cut off and healed", async () => {
    const server = await serveRegistry({ insecure: true, transport: new TcpServerTransport() });
    const links: Link[] = [];
    const clients: WorkloadClient[] = [];
    for (const region of ["cn-north", "eu-west", "us-east"]) {
      const link = await createLink({ target: server.address, latencyMs: 2 });
      links.push(link);
      for (const c of [0, 1]) {
        clients.push({ name: `${region}-${c}`, store: createRemoteStore({ transport: new TcpClientTransport({ connectTimeoutMs: 1000 }), address: link.address, timeoutMs: 1000 }) });
      }
    }
    const keys = ["jepsen/a", "jepsen/b", "jepsen/c"];
    const nemesis = (async () => {
      await sleep(800);
      links[2]!.blackhole(true);
      await sleep(1500);
      links[2]!.heal();
      await sleep(500);
      links[0]!.drop();
      await sleep(800);
      links[0]!.heal();
    })();
    // Timeouts generous enough that a loaded machine does not turn healthy calls into unknown ones.
    const run = await runKvWorkload(clients, { keys, opsPerClient: 200, durationMs: 5000, timeoutMs: 1000 });
    await nemesis;
    const finals = await finalReads(run, clients, keys);
    const open = run.recorder.history();
    const resolver = createRemoteStore({ transport: new TcpClientTransport(), address: server.address });
    await resolveUnknown(run, resolver);
    const history = run.recorder.history();
    try {
      expect(run.counts.unknown + run.counts.failed).toBeGreaterThan(0);
      const openVerdict = checkHistory(open, { timeBudgetMs: 15_000 });
      expect(openVerdict.ok, describeVerdict(openVerdict)).toBe(true);
      const verdict = checkHistory(history, { timeBudgetMs: 15_000 });
      expect(verdict.ok, describeVerdict(verdict)).toBe(true);
      expect(lostWrites(history, finals)).toEqual([]);
    } finally {
      for (const c of clients) await c.store.close();
      await resolver.close();
      for (const l of links) await l.close();
      await server.close();
    }
  }, 30_000);
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
