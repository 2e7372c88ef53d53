import { afterAll, beforeAll, describe } from "vitest";
import { serveRegistry, type RegistryServer } from "../../runtime/registry/embedded/server.js";
import { createRemoteStore } from "../../runtime/registry/remote.js";
import type { Store } from "../../runtime/registry/store.js";
import { TcpClientTransport, TcpServerTransport } from "../../transports/tcp/index.js";
import { lossyOverLink } from "../support/lossy-store.js";
import { storeContract } from "./store-contract.js";

describe("remote embedded store over TCP", () => {
  let server: RegistryServer;
  let store: Store;
  beforeAll(async () => {
    server = await serveRegistry({ transport: new TcpServerTransport(), historyLimit: 200 });
    store = createRemoteStore({ transport: new TcpClientTransport(), address: server.address, timeoutMs: 3000, pollWaitMs: 1000 });
  });
  afterAll(async () => {
    await store?.close();
    await server?.close();
  });

  storeContract({
    store: () => store,
    leaseTtlMs: 300,
    expiryGraceMs: 400,
    lossy: () =>
      lossyOverLink(server.address, 150, (address) => createRemoteStore({ transport: new TcpClientTransport(), address, timeoutMs: 1000 })),
    async compactBelow() {
      for (let i = 0; i < 300; i++) await store.compareAndSet(`compact/${i}`, "x", 0);
      return 1;
    },
  });
});
