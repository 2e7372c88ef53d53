import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveRegistry, type RegistryServer, createRemoteStore, type Store } from "meridian-rpc/registry";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { lossyOverLink } from "../support/lossy-store.js";
import { storeContract } from "./store-contract.js";

describe("remote embedded store over TCP", () => {
  let server: RegistryServer;
  let store: Store;
  beforeAll(async () => {
    server = await serveRegistry({ insecure: true, transport: new TcpServerTransport(), historyLimit: 200 });
    store = createRemoteStore({ transport: new TcpClientTransport(), address: server.address, timeoutMs: 3000, pollWaitMs: 1000 });
  });
  afterAll(async () => {
    await store?.close();
    await server?.close();
  });

  storeContract({
    store: () => store,
    // Generous: a loaded machine may stall this process (server and client alike) for a while.
    leaseTtlMs: 1500,
    expiryGraceMs: 4000,
    lossy: () =>
      lossyOverLink(server.address, 150, (address) => createRemoteStore({ transport: new TcpClientTransport(), address, timeoutMs: 1000 })),
    async compactBelow() {
      for (let i = 0; i < 300; i++) await store.compareAndSet(`compact/${i}`, "x", 0);
      return 1;
    },
  });
});

describe("embedded registry long polls", () => {
  it("remote - a change answers only the oldest waiting poll of a session; the other waits for the next", async () => {
    const server = await serveRegistry({ insecure: true, transport: new TcpServerTransport() });
    try {
      const node = server.node;
      const from = node.machine.revision + 1;
      const answered: string[] = [];
      const first = node.waitForChanges("s/", from, 10_000, undefined, undefined, "watch-1").then((b) => (answered.push("first"), b));
      const second = node.waitForChanges("s/", from, 10_000, undefined, undefined, "watch-1").then((b) => (answered.push("second"), b));
      const other = node.waitForChanges("s/", from, 10_000, undefined, undefined, "watch-2").then((b) => (answered.push("other"), b));
      await node.compareAndSet("s/a", "1", 0, "w1");
      expect((await first).events.map((e) => e.key)).toEqual(["s/a"]);
      await other;
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(answered.sort()).toEqual(["first", "other"]);
      // The second poll still waits; the next change answers it, from its own revision.
      await node.compareAndSet("s/b", "1", 0, "w2");
      expect((await second).events.map((e) => e.key)).toEqual(["s/a", "s/b"]);
    } finally {
      await server.close();
    }
  });

  it("remote - a poll asking only for changes already sent to its session waits for a new one", async () => {
    const server = await serveRegistry({ insecure: true, transport: new TcpServerTransport() });
    try {
      const node = server.node;
      const from = node.machine.revision + 1;
      const first = node.waitForChanges("s/", from, 10_000, undefined, undefined, "watch-1");
      await node.compareAndSet("s/a", "1", 0, "w1");
      expect((await first).events.map((e) => e.key)).toEqual(["s/a"]);
      // Sent from the same revision before the watcher had the answer above (it was on its way):
      // waiting here keeps one poll at the server instead of a round trip without any.
      let stale = false;
      const second = node.waitForChanges("s/", from, 10_000, undefined, undefined, "watch-1").then((b) => ((stale = true), b));
      // Another session, or this watcher after a failed poll (a new session): answered at once.
      expect((await node.waitForChanges("s/", from, 10_000, undefined, undefined, "watch-2")).events.map((e) => e.key)).toEqual(["s/a"]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(stale).toBe(false);
      // A new change answers it, from its own revision (duplicates are the watcher's to drop).
      await node.compareAndSet("s/b", "1", 0, "w2");
      expect((await second).events.map((e) => e.key)).toEqual(["s/a", "s/b"]);
    } finally {
      await server.close();
    }
  });
});
