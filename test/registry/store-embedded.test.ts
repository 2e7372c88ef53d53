import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEmbeddedStore, type EmbeddedStore } from "meridian-rpc/registry";
import { lossyStore } from "../support/lossy-store.js";
import { storeContract } from "./store-contract.js";

describe("embedded store", () => {
  let store: EmbeddedStore;
  beforeAll(async () => {
    store = await createEmbeddedStore({ historyLimit: 200 });
  });
  afterAll(async () => {
    await store.close();
  });

  storeContract({
    store: () => store,
    // Generous: a loaded machine may stall this process (server and client alike) for a while.
    leaseTtlMs: 1500,
    expiryGraceMs: 4000,
    async lossy() {
      const lossy = lossyStore(await createEmbeddedStore({ node: store.node }));
      return { store: lossy, loseNext: (loss) => lossy.loseNext(loss), settle: async () => {}, close: () => lossy.close() };
    },
    async compactBelow() {
      for (let i = 0; i < 300; i++) await store.compareAndSet(`compact/${i}`, "x", 0);
      return 1;
    },
  });
});

describe("embedded store data directory", () => {
  const dir = mkdtempSync(join(tmpdir(), "meridian-snapshot-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("embedded - state, leases and write ids survive a restart from the data directory", async () => {
    const dataDir = join(dir, "data");
    const first = await createEmbeddedStore({ dataDir });
    const a = await first.compareAndSet("svc/a", "1", 0);
    const lease = await first.grantLease(60_000);
    await first.compareAndSet("svc/b", "2", 0, { lease: lease.id });
    await Promise.all(Array.from({ length: 20 }, (_, i) => first.compareAndSet(`burst/${i}`, String(i), 0)));
    const fenced = "never-sent-1";
    expect(await first.resolveWrite(fenced)).toEqual({ status: "not_applied" });
    const revision = (await first.get("svc/a")).revision;
    await first.close();

    const second = await createEmbeddedStore({ dataDir });
    try {
      expect((await second.get("svc/a")).kv?.value).toBe("1");
      expect((await second.get("svc/b")).kv?.lease).toBe(lease.id);
      expect((await second.list("burst/")).kvs).toHaveLength(20);
      expect((await second.get("svc/a")).revision).toBe(revision);
      if (a.ok) expect(await second.resolveWrite(a.writeId)).toEqual({ status: "applied", revision: a.revision });
      expect((await second.compareAndSet("svc/c", "x", 0, { writeId: fenced })).ok).toBe(false);
      expect((await second.keepAlive(lease.id)).ttlMs).toBe(60_000);
      // History before the restart is gone: watchers must list again.
      await expect(second.watch("svc/", 1)[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: "COMPACTED" });
      const next = await second.compareAndSet("svc/d", "4", 0);
      expect(next.ok && next.revision).toBe(revision + 1);
    } finally {
      await second.close();
    }
  });
});
