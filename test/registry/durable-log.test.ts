/**
 * The embedded registry's data directory: recovery from snapshot + log, compaction, a torn last
 * record cut off, a corrupt record refused, what a crash mid-compaction leaves cleaned up, the
 * lock, and leases after a restart. Real files in a temporary folder.
 */
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EmbeddedNode, type EmbeddedNodeOptions, DataDirError, OutcomeUnknownError, StoreUnavailableError } from "meridian-rpc/registry";
import { encodeRecord, segmentName } from "../../runtime/registry/embedded/log.js";

const root = mkdtempSync(join(tmpdir(), "meridian-durable-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

const open = (dataDir: string, options: EmbeddedNodeOptions = {}) => EmbeddedNode.open({ dataDir, compactIntervalMs: 0, ...options });
const segments = (dir: string) => readdirSync(dir).filter((n) => n.startsWith("wal-")).sort();

async function writeKeys(node: EmbeddedNode, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const r = await node.compareAndSet(`${prefix}/${i}`, `v${i}`, 0, `${prefix}-w${i}`);
    expect(r.ok).toBe(true);
  }
}

describe("durable registry - data directory", () => {
  it("durable - state and write ids come back from the log alone, and from snapshot + log after compaction", async () => {
    const dir = freshDir();
    const first = await open(dir);
    await writeKeys(first, "a", 50);
    await first.delete("a/0", undefined, "del-a0");
    expect(await first.resolveWrite("never-sent")).toEqual({ status: "not_applied" });
    const revision = first.machine.revision;
    await first.close();
    expect(existsSync(join(dir, "snapshot.json"))).toBe(false);

    const second = await open(dir);
    expect(second.machine.revision).toBe(revision);
    expect((await second.get("a/0")).kv).toBeUndefined();
    expect((await second.get("a/49")).kv?.value).toBe("v49");
    expect(await second.resolveWrite("a-w7")).toEqual({ status: "applied", revision: (await second.get("a/7")).kv!.modRevision });
    expect((await second.compareAndSet("x", "1", 0, "never-sent")).ok).toBe(false);
    expect(second.status().storage?.recovery.replayed).toBeGreaterThanOrEqual(52);
    await second.compact();
    await writeKeys(second, "b", 10);
    const status = second.status();
    expect(status.storage?.lastCompaction).toBeDefined();
    expect(status.storage?.snapshotLsn).toBeGreaterThan(0);
    expect(segments(dir)).toHaveLength(1);
    await second.close();

    const third = await open(dir);
    expect((await third.list("a/")).kvs).toHaveLength(49);
    expect((await third.list("b/")).kvs).toHaveLength(10);
    expect(third.status().storage?.recovery.replayed).toBe(10);
    await third.close();
  });

  it("durable - compaction runs by size while writes go on; no temporary file stays", async () => {
    const dir = freshDir();
    const node = await open(dir, { compactAfterBytes: 8 * 1024 });
    // Concurrent writes, so compactions overlap with writes in flight.
    await Promise.all(Array.from({ length: 8 }, (_, w) => writeKeys(node, `w${w}`, 60)));
    await node.compact();
    const status = node.status();
    expect(status.storage?.lastCompaction).toBeDefined();
    expect(status.storage?.lastCompactionError).toBeUndefined();
    expect(status.storage!.logBytes).toBeLessThan(64 * 1024);
    await node.close();
    expect(readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
    const again = await open(dir);
    expect(again.status().keys).toBe(480);
    await again.close();
  });

  it("durable - a torn last record (a crash mid-write) is cut off, and the log goes on after it", async () => {
    const dir = freshDir();
    const node = await open(dir);
    await writeKeys(node, "k", 5);
    const lastLsn = node.status().storage!.lastLsn;
    await node.close();
    const segment = join(dir, segments(dir).at(-1)!);
    const partial = encodeRecord(lastLsn + 1, { revision: 99, put: ["k/torn", { value: "x", createRevision: 99, modRevision: 99, version: 1, lease: undefined, writeId: "torn" }] });
    appendFileSync(segment, partial.subarray(0, partial.length - 5));

    const recovered = await open(dir);
    expect(recovered.status().storage?.recovery.truncatedBytes).toBe(partial.length - 5);
    expect((await recovered.get("k/torn")).kv).toBeUndefined();
    expect(await recovered.resolveWrite("torn")).toEqual({ status: "not_applied" });
    await writeKeys(recovered, "after", 3);
    await recovered.close();
    const again = await open(dir);
    expect((await again.list("after/")).kvs).toHaveLength(3);
    expect(again.status().storage?.recovery.truncatedBytes).toBe(0);
    await again.close();
  });

  it("durable - a corrupt record in the middle of the log is a clear startup error", async () => {
    const dir = freshDir();
    const node = await open(dir);
    await writeKeys(node, "k", 5);
    await node.close();
    const segment = join(dir, segments(dir).at(-1)!);
    const bytes = readFileSync(segment);
    // Inside the first record (at byte 8, after the segment header): its payload starts at 16.
    bytes[8 + 8 + 10] ^= 0xff;
    writeFileSync(segment, bytes);
    const failure = await open(dir).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(DataDirError);
    expect(failure).toMatchObject({ code: "CORRUPT", path: segment });
    expect((failure as Error).message).toMatch(/corrupt at byte 8 \(checksum mismatch\) and records follow it/);
    // The failed start released the folder's lock.
    expect(existsSync(join(dir, "LOCK"))).toBe(false);
  });

  it("durable - what a crash mid-compaction leaves (a temporary snapshot, segments the snapshot holds) is cleaned up on start", async () => {
    const dir = freshDir();
    const node = await open(dir);
    await writeKeys(node, "k", 20);
    const oldSegment = segments(dir)[0]!;
    copyFileSync(join(dir, oldSegment), join(root, "kept-segment"));
    await node.compact();
    await writeKeys(node, "m", 5);
    await node.close();
    // As if the process died after renaming the snapshot, before deleting the old segment, with
    // another compaction's temporary file half written.
    copyFileSync(join(root, "kept-segment"), join(dir, oldSegment));
    writeFileSync(join(dir, "snapshot.json.tmp-4242"), '{"format":"meridian-regis');

    const recovered = await open(dir);
    const recovery = recovered.status().storage!.recovery;
    expect(recovery.removedTempFiles).toEqual(["snapshot.json.tmp-4242"]);
    expect(recovery.removedSegments).toBe(1);
    expect(recovery.replayed).toBe(5);
    expect(recovered.status().keys).toBe(25);
    expect(readdirSync(dir).sort()).toEqual(["LOCK", "snapshot.json", ...segments(dir)].sort());
    await recovered.close();
  });

  it("durable - a second node on the same folder is refused while the first holds it; a lock left by a dead process is taken over", async () => {
    const dir = freshDir();
    const node = await open(dir);
    await expect(open(dir)).rejects.toMatchObject({ name: "DataDirError", code: "LOCKED" });
    await node.close();
    // Two opens at once: exactly one gets the folder.
    const both = await Promise.allSettled([open(dir), open(dir)]);
    expect(both.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(both.find((r) => r.status === "rejected")).toMatchObject({ reason: { code: "LOCKED" } });
    await (both.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<EmbeddedNode>).value.close();
    // A LOCK naming this pid that no node of this process holds: an earlier process with the same
    // pid (a container's pid 1) was killed. It must not lock the folder for good.
    writeFileSync(join(dir, "LOCK"), `${process.pid}\n`);
    const again = await open(dir);
    await again.close();
  });

  it("durable - fsync interval: acknowledged writes survive a restart", async () => {
    const dir = freshDir();
    const node = await open(dir, { fsync: "interval", fsyncIntervalMs: 20 });
    await Promise.all(Array.from({ length: 4 }, (_, w) => writeKeys(node, `w${w}`, 25)));
    expect(node.status().storage?.fsync).toBe("interval");
    await node.close();
    const again = await open(dir);
    expect(again.status().keys).toBe(100);
    await again.close();
  });

  it("durable - a lease restarts its whole TTL on recovery, then expires when not kept alive", async () => {
    const dir = freshDir();
    const node = await open(dir, { minLeaseTtlMs: 10 });
    const lease = await node.grantLease(400);
    await node.compareAndSet("leased", "x", 0, "lw1", lease.id);
    await node.close();
    // Longer than the TTL passes while the registry is down: the lease is not dead on arrival.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const again = await open(dir, { minLeaseTtlMs: 10 });
    expect((await again.get("leased")).kv?.lease).toBe(lease.id);
    expect((await again.keepAlive(lease.id)).ttlMs).toBe(400);
    const deadline = Date.now() + 5000;
    while ((await again.get("leased")).kv !== undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await again.get("leased")).kv).toBeUndefined();
    await again.close();
    // Its expiry was logged too.
    const third = await open(dir, { minLeaseTtlMs: 10 });
    expect((await third.get("leased")).kv).toBeUndefined();
    expect(third.status().leases).toBe(0);
    await third.close();
  });

  it("durable - when the log fails, the write in flight is unknown, every later call UNAVAILABLE, status says why; a restart recovers", async () => {
    const dir = freshDir();
    const failures: Error[] = [];
    const node = await open(dir, { onStorageFailure: (e) => failures.push(e) });
    await writeKeys(node, "k", 3);
    // A stray file where the next segment goes: the rotation of the next compaction cannot create it.
    const stray = join(dir, segmentName(node.status().storage!.lastLsn + 1));
    writeFileSync(stray, "");
    const compaction = node.compact();
    const inFlight = node.compareAndSet("after", "x", 0, "after-w").catch((e: unknown) => e);
    await compaction;
    expect(await inFlight).toBeInstanceOf(OutcomeUnknownError);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.message).toMatch(/the registry's log in .* failed: .*EEXIST.*restart the server/);
    expect(node.status().health).toMatch(/^failed: /);
    await expect(node.get("k/0")).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(node.compareAndSet("later", "x", 0, "later-w")).rejects.toBeInstanceOf(StoreUnavailableError);
    await node.close();

    rmSync(stray);
    const again = await open(dir);
    expect((await again.list("k/")).kvs).toHaveLength(3);
    expect((await again.get("after")).kv).toBeUndefined();
    expect(await again.resolveWrite("after-w")).toEqual({ status: "not_applied" });
    await again.close();
  });
});
