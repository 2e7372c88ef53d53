/**
 * The Store contract: one suite run against every store implementation (embedded, etcd), so
 * they cannot drift apart. Each implementation's test file supplies a ContractTarget.
 */
import { expect, it } from "vitest";
import {
  CompactedError,
  FencedError,
  LeaseNotFoundError,
  OutcomeUnknownError,
  newWriteId,
  type Store,
  type WatchBatch,
  type WatchEvent,
} from "meridian-rpc/registry";
import type { LossyTarget } from "../support/lossy-store.js";

/** What the contract needs from an implementation. */
export interface ContractTarget {
  /** The store under test (shared by the tests of a file; keys are unique per test). */
  store(): Store;
  /** The TTL to ask for in lease tests, ms. */
  readonly leaseTtlMs: number;
  /** How long after its TTL a lease may take to expire, ms. */
  readonly expiryGraceMs: number;
  /** A store whose next write can be made to lose its request or its reply. */
  lossy(): Promise<LossyTarget>;
  /** Whether `watch` from a revision older than the kept history throws CompactedError here. */
  compactBelow?(): Promise<number>;
}

let counter = 0;
/** A key prefix no other test uses. */
function space(name: string): string {
  return `contract/${name}/${process.pid}-${Date.now().toString(36)}-${counter++}/`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Collects watch events until `count` arrived (or fails after `timeoutMs`). */
async function collect(iterable: AsyncIterable<WatchBatch>, count: number, timeoutMs = 10_000): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  const iterator = iterable[Symbol.asyncIterator]();
  const deadline = Date.now() + timeoutMs;
  try {
    while (events.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`watch delivered ${events.length} of ${count} events`);
      const next = await Promise.race([
        iterator.next(),
        sleep(left).then(() => ({ done: true as const, value: undefined, timedOut: true })),
      ]);
      if ("timedOut" in next) throw new Error(`watch delivered ${events.length} of ${count} events in ${timeoutMs} ms`);
      if (next.done) break;
      events.push(...next.value.events);
    }
  } finally {
    await iterator.return?.();
  }
  return events;
}

/** Defines the contract tests in the current describe block. */
export function storeContract(target: ContractTarget): void {
  it("store - create-if-absent succeeds once, then reports the current value", async () => {
    const store = target.store();
    const key = `${space("create")}k`;
    const first = await store.compareAndSet(key, "v1", 0);
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    const second = await store.compareAndSet(key, "v2", 0);
    expect(second.ok).toBe(false);
    if (second.ok) return;
    expect(second.current?.value).toBe("v1");
    expect(second.current?.modRevision).toBe(first.revision);
    expect(second.current?.writeId).toBe(first.writeId);
    const got = await store.get(key);
    expect(got.kv).toMatchObject({ key, value: "v1", modRevision: first.revision, createRevision: first.revision, version: 1 });
    expect(got.revision).toBeGreaterThanOrEqual(first.revision);
  });

  it("store - compare-and-set applies only on the expected mod revision", async () => {
    const store = target.store();
    const key = `${space("cas")}k`;
    const created = await store.compareAndSet(key, "a", 0);
    if (!created.ok) throw new Error("create failed");
    const updated = await store.compareAndSet(key, "b", created.revision);
    expect(updated.ok).toBe(true);
    if (!updated.ok) return;
    expect(updated.revision).toBeGreaterThan(created.revision);
    // A second writer still holding the old revision loses, and learns the current value.
    const stale = await store.compareAndSet(key, "c", created.revision);
    expect(stale.ok).toBe(false);
    if (stale.ok) return;
    expect(stale.current).toMatchObject({ value: "b", modRevision: updated.revision, version: 2 });
    expect((await store.get(key)).kv?.value).toBe("b");
    // Compare-and-set on an absent key with a non-zero revision fails with no current value.
    const absent = await store.compareAndSet(`${key}-missing`, "x", updated.revision);
    expect(absent).toMatchObject({ ok: false, current: undefined });
  });

  it("store - concurrent compare-and-sets from one revision: exactly one wins", async () => {
    const store = target.store();
    const key = `${space("race")}k`;
    const created = await store.compareAndSet(key, "0", 0);
    if (!created.ok) throw new Error("create failed");
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.compareAndSet(key, `w${i}`, created.revision)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    const winner = results.findIndex((r) => r.ok);
    expect((await store.get(key)).kv?.value).toBe(`w${winner}`);
  });

  it("store - delete with a revision applies only on that revision; unconditional delete is idempotent", async () => {
    const store = target.store();
    const key = `${space("delete")}k`;
    const created = await store.compareAndSet(key, "a", 0);
    if (!created.ok) throw new Error("create failed");
    const updated = await store.compareAndSet(key, "b", created.revision);
    if (!updated.ok) throw new Error("update failed");
    const wrong = await store.delete(key, created.revision);
    expect(wrong.ok).toBe(false);
    if (!wrong.ok) expect(wrong.current?.value).toBe("b");
    const right = await store.delete(key, updated.revision);
    expect(right.ok).toBe(true);
    expect((await store.get(key)).kv).toBeUndefined();
    expect((await store.delete(key)).ok).toBe(true);
    // Deleted keys can be created again, with a fresh create revision and version.
    const again = await store.compareAndSet(key, "c", 0);
    expect(again.ok).toBe(true);
    expect((await store.get(key)).kv).toMatchObject({ value: "c", version: 1 });
  });

  it("store - list returns the keys under a prefix in key order", async () => {
    const store = target.store();
    const prefix = space("list");
    for (const k of ["b", "a", "c/d"]) await store.compareAndSet(prefix + k, k, 0);
    await store.compareAndSet(`${prefix.slice(0, -1)}x`, "outside", 0);
    const listed = await store.list(prefix);
    expect(listed.kvs.map((kv) => kv.key)).toEqual([`${prefix}a`, `${prefix}b`, `${prefix}c/d`]);
    expect(listed.kvs.map((kv) => kv.value)).toEqual(["a", "b", "c/d"]);
    expect(listed.revision).toBeGreaterThanOrEqual(Math.max(...listed.kvs.map((kv) => kv.modRevision)));
    const serial = await store.list(prefix, { mode: "serializable" });
    expect(serial.kvs.length).toBeLessThanOrEqual(3);
  });

  it("store - a write retried with the same write id answers with the first outcome", async () => {
    const store = target.store();
    const key = `${space("retry")}k`;
    const writeId = newWriteId();
    const first = await store.compareAndSet(key, "a", 0, { writeId });
    const retry = await store.compareAndSet(key, "a", 0, { writeId });
    expect(first.ok && retry.ok).toBe(true);
    if (first.ok && retry.ok) expect(retry.revision).toBe(first.revision);
    expect((await store.get(key)).kv?.version).toBe(1);
  });

  it("store - resolveWrite answers applied, or fences an unknown id so it can never apply", async () => {
    const store = target.store();
    const key = `${space("resolve")}k`;
    const applied = await store.compareAndSet(key, "a", 0);
    if (!applied.ok) throw new Error("create failed");
    expect(await store.resolveWrite(applied.writeId)).toEqual({ status: "applied", revision: applied.revision });
    const ghost = newWriteId();
    expect(await store.resolveWrite(ghost)).toEqual({ status: "not_applied" });
    expect(await store.resolveWrite(ghost)).toEqual({ status: "not_applied" });
    // The write arrives late: it must not apply.
    const late = await store.compareAndSet(key, "late", applied.revision, { writeId: ghost });
    expect(late.ok).toBe(false);
    expect((await store.get(key)).kv?.value).toBe("a");
  });

  it("store - a write whose reply is lost is reported unknown and resolved as applied", async () => {
    const lossy = await target.lossy();
    try {
      const key = `${space("lost-reply")}k`;
      // Warm up: connected, and any per-store set-up (etcd's marker lease) done.
      await lossy.store.compareAndSet(`${key}-warm-up`, "w", 0);
      lossy.loseNext("reply");
      const error = await lossy.store.compareAndSet(key, "v", 0).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OutcomeUnknownError);
      const { writeId } = error as OutcomeUnknownError;
      expect((error as OutcomeUnknownError).key).toBe(key);
      await lossy.settle();
      const resolution = await target.store().resolveWrite(writeId);
      const now = await target.store().get(key);
      expect(resolution).toEqual({ status: "applied", revision: now.kv?.modRevision });
      expect(now.kv?.writeId).toBe(writeId);
    } finally {
      await lossy.close();
    }
  });

  it("store - a write whose request is lost is reported unknown and resolved as not applied", async () => {
    const lossy = await target.lossy();
    try {
      const key = `${space("lost-request")}k`;
      // Warm up: connected, and any per-store set-up (etcd's marker lease) done.
      await lossy.store.compareAndSet(`${key}-warm-up`, "w", 0);
      lossy.loseNext("request");
      const error = await lossy.store.compareAndSet(key, "v", 0).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OutcomeUnknownError);
      await lossy.settle();
      const { writeId } = error as OutcomeUnknownError;
      expect(await target.store().resolveWrite(writeId)).toEqual({ status: "not_applied" });
      expect((await target.store().get(key)).kv).toBeUndefined();
      // Retrying the same write id after it was resolved cannot apply it any more.
      expect((await target.store().compareAndSet(key, "v", 0, { writeId })).ok).toBe(false);
      expect((await target.store().get(key)).kv).toBeUndefined();
    } finally {
      await lossy.close();
    }
  });

  it("store - watch delivers every change in order from a revision, then live changes", async () => {
    const store = target.store();
    const prefix = space("watch");
    const first = await store.compareAndSet(`${prefix}a`, "1", 0);
    if (!first.ok) throw new Error("create failed");
    const second = await store.compareAndSet(`${prefix}a`, "2", first.revision);
    if (!second.ok) throw new Error("update failed");
    await store.compareAndSet(`${prefix}b`, "x", 0);
    await store.compareAndSet(`${prefix.slice(0, -1)}-other`, "not mine", 0);
    const watching = collect(store.watch(prefix, first.revision), 6);
    await sleep(50);
    await store.delete(`${prefix}b`);
    const c = await store.compareAndSet(`${prefix}c`, "y", 0);
    if (!c.ok) throw new Error("create c failed");
    await store.compareAndSet(`${prefix}c`, "z", c.revision);
    const events = await watching;
    expect(events.map((e) => [e.type, e.key.slice(prefix.length), e.type === "put" ? e.kv.value : null])).toEqual([
      ["put", "a", "1"],
      ["put", "a", "2"],
      ["put", "b", "x"],
      ["delete", "b", null],
      ["put", "c", "y"],
      ["put", "c", "z"],
    ]);
    const revisions = events.map((e) => e.revision);
    expect([...revisions].sort((x, y) => x - y)).toEqual(revisions);
    expect(new Set(revisions).size).toBe(revisions.length);
  });

  it("store - watch delivers a burst of concurrent changes once each, in order", async () => {
    const store = target.store();
    const prefix = space("watch-burst");
    const { revision } = await store.get(`${prefix}none`);
    const iterable = store.watch(prefix, revision + 1);
    const n = 40;
    // In waves, so changes keep arriving while answers to the watch are on their way.
    for (let wave = 0; wave < 4; wave++) {
      await Promise.all(Array.from({ length: n / 4 }, (_, i) => store.compareAndSet(`${prefix}${wave}-${i}`, "v", 0)));
      await sleep(5);
    }
    const events = await collect(iterable, n);
    const revisions = events.map((e) => e.revision);
    expect(events).toHaveLength(n);
    expect(new Set(events.map((e) => e.key)).size).toBe(n);
    expect([...revisions].sort((x, y) => x - y)).toEqual(revisions);
  });

  it("store - watch from 0 sees only changes from now on", async () => {
    const store = target.store();
    const prefix = space("watch-now");
    await store.compareAndSet(`${prefix}old`, "old", 0);
    const iterable = store.watch(prefix, 0);
    await sleep(300);
    // "Now" is when the store set the watch up, which a loaded machine may delay past the first
    // write: keep writing new keys until the watch sees one. It must never see the old key.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 20; i++) {
        await store.compareAndSet(`${prefix}new-${i}`, "new", 0);
        await sleep(500);
      }
    })();
    const events = await collect(iterable, 1).finally(() => (writing = false));
    await writer;
    expect(events[0]?.key).toMatch(/new-\d+$/);
  });

  it("store - a stopped watch ends its iteration", async () => {
    const store = target.store();
    const controller = new AbortController();
    const iterable = store.watch(space("watch-stop"), 0, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const seen: WatchBatch[] = [];
    for await (const batch of iterable) seen.push(batch);
    expect(seen.every((b) => b.events.length === 0)).toBe(true);
  });

  it("store - a key under a lease lives while kept alive and disappears when keepalive stops", async () => {
    const store = target.store();
    const key = `${space("lease")}instance`;
    const lease = await store.grantLease(target.leaseTtlMs);
    expect(lease.ttlMs).toBeGreaterThanOrEqual(target.leaseTtlMs);
    const put = await store.compareAndSet(key, "up", 0, { lease: lease.id });
    expect(put.ok).toBe(true);
    expect((await store.get(key)).kv?.lease).toBe(lease.id);
    if (!put.ok) return;
    const watching = collect(store.watch(key, put.revision + 1), 1, lease.ttlMs * 3 + target.expiryGraceMs + 5000);
    // Keep it alive past its TTL.
    const keepUntil = Date.now() + lease.ttlMs * 1.5;
    while (Date.now() < keepUntil) {
      await store.keepAlive(lease.id);
      await sleep(lease.ttlMs / 4);
    }
    expect((await store.get(key)).kv?.value).toBe("up");
    const stoppedAt = Date.now();
    const [event] = await watching;
    expect(event).toMatchObject({ type: "delete", key });
    expect(Date.now() - stoppedAt).toBeLessThan(lease.ttlMs + target.expiryGraceMs);
    expect((await store.get(key)).kv).toBeUndefined();
    await expect(store.keepAlive(lease.id)).rejects.toBeInstanceOf(LeaseNotFoundError);
    await expect(store.compareAndSet(`${key}-2`, "x", 0, { lease: lease.id })).rejects.toBeInstanceOf(LeaseNotFoundError);
  });

  it("store - revoking a lease deletes its keys at once", async () => {
    const store = target.store();
    const prefix = space("revoke");
    const lease = await store.grantLease(target.leaseTtlMs * 10);
    await store.compareAndSet(`${prefix}a`, "a", 0, { lease: lease.id });
    await store.compareAndSet(`${prefix}b`, "b", 0, { lease: lease.id });
    await store.compareAndSet(`${prefix}c`, "c", 0);
    await store.revokeLease(lease.id);
    expect((await store.list(prefix)).kvs.map((kv) => kv.key)).toEqual([`${prefix}c`]);
    await store.revokeLease(lease.id);
  });

  it("store - a fenced write applies only while its fence key is at the fenced revision, atomically", async () => {
    const store = target.store();
    const prefix = space("fence");
    const fenceKey = `${prefix}primary`;
    const key = `${prefix}data`;
    const epoch1 = await store.compareAndSet(fenceKey, "epoch-1", 0);
    if (!epoch1.ok) throw new Error("could not create the fence key");
    const fence = { key: fenceKey, modRevision: epoch1.revision };
    const first = await store.compareAndSet(key, "under epoch 1", 0, { fence });
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    // The fence key moves on (the primary moved): writes admitted under the old revision are refused.
    const epoch2 = await store.compareAndSet(fenceKey, "epoch-2", epoch1.revision);
    if (!epoch2.ok) throw new Error("could not move the fence key");
    const refused = await store.compareAndSet(key, "late", first.revision, { fence, writeId: newWriteId() }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(FencedError);
    expect(refused).toMatchObject({ code: "FENCED", key, fence, currentRevision: epoch2.revision });
    const deleteRefused = await store.delete(key, undefined, { fence }).catch((e: unknown) => e);
    expect(deleteRefused).toBeInstanceOf(FencedError);
    // Nothing was written, and a refused write id resolves as not applied for good.
    expect((await store.get(key)).kv).toMatchObject({ value: "under epoch 1", modRevision: first.revision });
    const refusedId = newWriteId();
    await store.compareAndSet(key, "late", first.revision, { fence, writeId: refusedId }).catch(() => undefined);
    expect(await store.resolveWrite(refusedId)).toEqual({ status: "not_applied" });
    // Under the new revision the same write applies; a deleted fence key refuses everything.
    const second = await store.compareAndSet(key, "under epoch 2", first.revision, { fence: { key: fenceKey, modRevision: epoch2.revision } });
    expect(second.ok).toBe(true);
    await store.delete(fenceKey);
    const gone = await store.compareAndSet(key, "x", 0, { fence: { key: fenceKey, modRevision: epoch2.revision } }).catch((e: unknown) => e);
    expect(gone).toMatchObject({ code: "FENCED", currentRevision: 0 });
  });

  it("store - a retry of an applied fenced write still answers applied after the fence moved", async () => {
    const store = target.store();
    const prefix = space("fence-retry");
    const created = await store.compareAndSet(`${prefix}primary`, "1", 0);
    if (!created.ok) throw new Error("could not create the fence key");
    const fence = { key: `${prefix}primary`, modRevision: created.revision };
    const writeId = newWriteId();
    const first = await store.compareAndSet(`${prefix}k`, "v", 0, { fence, writeId });
    await store.compareAndSet(`${prefix}primary`, "2", created.revision);
    const retry = await store.compareAndSet(`${prefix}k`, "v", 0, { fence, writeId });
    expect(retry).toEqual(first);
  });

  it("store - a call whose signal already aborted is not applied", async () => {
    const store = target.store();
    const key = `${space("abort")}k`;
    const controller = new AbortController();
    controller.abort();
    const error = await store.compareAndSet(key, "v", 0, { signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    if (error instanceof OutcomeUnknownError) expect(await store.resolveWrite(error.writeId)).toEqual({ status: "not_applied" });
    expect((await store.get(key)).kv).toBeUndefined();
    await expect(store.get(key, { signal: controller.signal })).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });

  if (target.compactBelow) {
    it("store - a watch from compacted history fails with CompactedError", async () => {
      const store = target.store();
      const compacted = await target.compactBelow!();
      const error = await collect(store.watch("", compacted), 1, 5000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CompactedError);
    });
  }
}
