/**
 * The demo's auditor on hand-made histories: it passes a clean one, and catches each broken
 * promise on its own (a lost write, a write reported failed that was applied, a write nobody
 * made, two primaries accepting at once, a write by a region that was not the primary, a fenced
 * primary accepting a probe, a stale linearizable read, a replica left behind), so a demo run
 * that breaks one exits non-zero.
 */
import { describe, expect, it } from "vitest";
import { createEmbeddedStore, type EmbeddedStore } from "meridian-rpc/registry";
import { StoreLog, audit, type AuditInput } from "../../examples/cross-region/audit.js";
import { DATA_PREFIX, type OpRecord, type Region } from "../../examples/cross-region/protocol.js";
import type { Stamp } from "../../examples/cross-region/service.js";

const PRIMARY_KEY = "meridian/services/meridian.demo.kv.KeyValue/primary";

interface Setup {
  store: EmbeddedStore;
  /** The auditor's log, following the store from the start (as in the demo). */
  log: StoreLog;
  /** Writes a stamped value; resolves with its revision. */
  write: (key: string, stamp: Stamp, writeId: string) => Promise<number>;
}

/** A store with a primary record (cn-north, epoch 1), the auditor's log on it, and a writer. */
async function setup(): Promise<Setup> {
  const store = await createEmbeddedStore();
  await store.compareAndSet(PRIMARY_KEY, JSON.stringify({ region: "cn-north", epoch: 1, since: 0, leaseMs: 1500 }), 0);
  const log = await StoreLog.start(store, PRIMARY_KEY);
  const write = async (key: string, stamp: Stamp, writeId: string) => {
    const current = (await store.get(DATA_PREFIX + key)).kv;
    const r = await store.compareAndSet(DATA_PREFIX + key, JSON.stringify(stamp), current?.modRevision ?? 0, { writeId });
    if (!r.ok) throw new Error("write failed");
    return r.revision;
  };
  return { store, log, write };
}

function put(region: Region, key: string, value: string, writeId: string, call: number, ret: number, result: Partial<OpRecord>): OpRecord {
  return { region, kind: "put", key, value, writeId, call, ret, outcome: "ok", ...result };
}

function get(region: Region, key: string, call: number, ret: number, value: string | undefined, revision: number): OpRecord {
  return {
    region,
    kind: "get",
    consistency: "linearizable",
    key,
    call,
    ret,
    outcome: "ok",
    found: value !== undefined,
    ...(value === undefined ? {} : { readValue: value }),
    revision,
  };
}

async function check({ store, log }: Setup, ops: OpRecord[], replicas?: AuditInput["replicas"]) {
  // Let the log's watch catch up with the store.
  const revision = (await store.get("none")).revision;
  const seen = () => Math.max(0, ...log.writes.map((w) => w.revision), ...log.primaries.map((p) => p.revision));
  for (let i = 0; i < 100 && seen() < revision; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  log.stop();
  const latest = log.latest();
  const revisions = Object.fromEntries([...latest].map(([k, w]) => [k, w.revision]));
  const result = audit({
    ops,
    log,
    resolutions: new Map(),
    replicas: replicas ?? new Map([["cn-north", revisions]]),
    checkBudgetMs: 5000,
  });
  return Object.fromEntries(result.invariants.map((i) => [i.id, i.ok])) as Record<string, boolean>;
}

const allOk = { "no-lost-writes": true, "no-doubled-writes": true, linearizable: true, fencing: true, converged: true };

describe("demo audit", () => {
  it("demo audit - a clean history passes every invariant", async () => {
    const s = await setup();
    const { write } = s;
    const r1 = await write("k", { v: "a", e: 1, r: "cn-north", t: 10 }, "w1");
    const r2 = await write("k", { v: "b", e: 1, r: "cn-north", t: 30 }, "w2");
    const ops = [
      put("eu-west", "k", "a", "w1", 0, 20, { revision: r1 }),
      put("us-east", "k", "b", "w2", 25, 40, { revision: r2 }),
      get("cn-north", "k", 50, 60, "b", r2),
    ];
    expect(await check(s, ops)).toEqual(allOk);
  });

  it("demo audit - an acknowledged write missing from the store is lost", async () => {
    const s = await setup();
    const { write } = s;
    const r1 = await write("k", { v: "a", e: 1, r: "cn-north", t: 10 }, "w1");
    const ops = [put("eu-west", "k", "a", "w1", 0, 20, { revision: r1 }), put("eu-west", "k", "b", "w2", 30, 40, { revision: r1 + 5 })];
    expect((await check(s, ops))["no-lost-writes"]).toBe(false);
  });

  it("demo audit - a write reported as failed that is in the store breaks the promise too", async () => {
    const s = await setup();
    const { write } = s;
    await write("k", { v: "a", e: 1, r: "cn-north", t: 10 }, "w1");
    const ops: OpRecord[] = [{ region: "eu-west", kind: "put", key: "k", value: "a", writeId: "w1", call: 0, ret: 20, outcome: "failed", code: "UNAVAILABLE" }];
    expect((await check(s, ops))["no-lost-writes"]).toBe(false);
  });

  it("demo audit - a stored write that no call made counts as doubled", async () => {
    const s = await setup();
    const { write } = s;
    const r1 = await write("k", { v: "a", e: 1, r: "cn-north", t: 10 }, "w1");
    await write("k", { v: "a", e: 1, r: "cn-north", t: 15 }, "w1-again");
    const ops = [put("eu-west", "k", "a", "w1", 0, 20, { revision: r1 })];
    expect((await check(s, ops))["no-doubled-writes"]).toBe(false);
  });

  it("demo audit - two primaries accepting writes at once, or a write by a non-primary, break fencing", async () => {
    const s = await setup();
    const { store, write } = s;
    const r1 = await write("k", { v: "a", e: 1, r: "cn-north", t: 10 }, "w1");
    const current = (await store.get(PRIMARY_KEY)).kv!;
    await store.compareAndSet(PRIMARY_KEY, JSON.stringify({ region: "eu-west", epoch: 2, since: 40, leaseMs: 1500 }), current.modRevision);
    const r2 = await write("k", { v: "b", e: 2, r: "eu-west", t: 50 }, "w2");
    // The old primary accepted a write after the new one had started.
    const r3 = await write("k", { v: "c", e: 1, r: "cn-north", t: 60 }, "w3");
    const ops = [
      put("eu-west", "k", "a", "w1", 0, 20, { revision: r1 }),
      put("eu-west", "k", "b", "w2", 45, 55, { revision: r2 }),
      put("cn-north", "k", "c", "w3", 58, 65, { revision: r3 }),
    ];
    expect((await check(s, ops)).fencing).toBe(false);

    const other = await setup();
    const r = await other.write("k", { v: "a", e: 1, r: "us-east", t: 10 }, "w1");
    expect((await check(other, [put("us-east", "k", "a", "w1", 0, 20, { revision: r })])).fencing).toBe(false);
  });

  it("demo audit - a fenced primary that accepts a probe breaks fencing", async () => {
    const s = await setup();
    const { write } = s;
    const r1 = await write("k", { v: "probe:cn-north:1", e: 1, r: "cn-north", t: 10 }, "p1");
    const ops = [put("cn-north", "k", "probe:cn-north:1", "p1", 0, 20, { revision: r1, probe: true })];
    expect((await check(s, ops)).fencing).toBe(false);
  });

  it("demo audit - a linearizable read of an overwritten value is a violation", async () => {
    const s = await setup();
    const { write } = s;
    const r1 = await write("k", { v: "a", e: 1, r: "cn-north", t: 10 }, "w1");
    const r2 = await write("k", { v: "b", e: 1, r: "cn-north", t: 30 }, "w2");
    const ops = [
      put("eu-west", "k", "a", "w1", 0, 20, { revision: r1 }),
      put("eu-west", "k", "b", "w2", 25, 40, { revision: r2 }),
      get("us-east", "k", 50, 60, "a", r1),
    ];
    const result = await check(s, ops);
    expect(result.linearizable).toBe(false);
    expect(result["no-lost-writes"]).toBe(true);
  });

  it("demo audit - a replica behind the store after healing has not converged", async () => {
    const s = await setup();
    const { write } = s;
    const r1 = await write("k", { v: "a", e: 1, r: "cn-north", t: 10 }, "w1");
    const r2 = await write("k", { v: "b", e: 1, r: "cn-north", t: 30 }, "w2");
    const ops = [put("eu-west", "k", "a", "w1", 0, 20, { revision: r1 }), put("eu-west", "k", "b", "w2", 25, 40, { revision: r2 })];
    const replicas = new Map<Region, Record<string, number>>([
      ["cn-north", { k: r2 }],
      ["us-east", { k: r1 }],
    ]);
    expect((await check(s, ops, replicas)).converged).toBe(false);
  });
});
