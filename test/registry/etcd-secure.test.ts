import { afterAll, beforeAll, expect, it } from "vitest";
import { createRegistry, StoreError, type Store } from "meridian-rpc/registry";
import { createEtcdStore, etcdRolesFor, setUpEtcdRoles, type EtcdStoreOptions } from "meridian-rpc/registry/etcd";
import type { ClientTls } from "meridian-rpc";
import type { TestCerts } from "../support/certs.js";
import { describeWithEtcd } from "../support/etcd-gate.js";
import { etcdTestCerts, startSecureEtcd, type SecureEtcd } from "../support/etcd-secure.js";

/** Runs `fn` on a fresh store and closes it, whatever happens. */
async function withStore<T>(options: EtcdStoreOptions, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = createEtcdStore({ timeoutMs: 4000, ...options });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The StoreError a call rejects with (fails the test when it resolves or throws something else). */
async function refusal(call: Promise<unknown>): Promise<StoreError> {
  const e = await call.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(StoreError);
  return e as StoreError;
}

it("etcd roles - each registry role maps onto the key ranges its registry calls need", () => {
  const plans = etcdRolesFor({ name: "eu-1", roles: ["instance", "reader"], services: ["demo.Accounts"] });
  expect(plans.map((p) => p.role)).toEqual(["meridian-reader", "meridian-instance", "meridian-instance-demo.Accounts"]);
  expect(plans[2]!.permissions).toEqual([
    { type: "Readwrite", key: "meridian/services/demo.Accounts/instances/", prefix: true },
    { type: "Read", key: "meridian/services/demo.Accounts/", prefix: true },
  ]);
  expect(etcdRolesFor({ name: "ops", roles: ["operator"] })[0]!.permissions).toEqual([
    { type: "Readwrite", key: "meridian/", prefix: true },
    { type: "Readwrite", key: "__meridian/writes/", prefix: true },
  ]);
  expect(() => etcdRolesFor({ name: "x", roles: ["instance"], services: ["*"] })).toThrow(/would include every primary record/);
  expect(() => etcdRolesFor({ name: "x", roles: ["instance"] })).toThrow(/no services/);
});

it("etcd store - TLS options with an http:// host are refused up front", () => {
  expect(() => createEtcdStore({ hosts: "http://127.0.0.1:1", tls: { ca: "x" } })).toThrow(/use https:\/\/ hosts/);
});

let certs: TestCerts | undefined;
/** The suites' certificates, made on first use (inside the etcd gate). */
const testCerts = (): TestCerts => (certs ??= etcdTestCerts(["root", "eu-1", "viewer", "ops"]));

describeWithEtcd("etcd secure - client-certificate TLS", () => {
  let etcd: SecureEtcd;
  let c: TestCerts;
  beforeAll(async () => {
    c = testCerts();
    etcd = await startSecureEtcd({
      tls: { ca: c.ca, cert: c.serverCert, key: c.serverKey },
      adminTls: { ca: c.ca, cert: c.clientCert, key: c.clientKey },
    });
  }, 60_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it("etcd secure - the store works over TLS with a client certificate", async () => {
    await withStore({ hosts: etcd.url, tls: { ca: c.ca, cert: c.clientCert, key: c.clientKey } }, async (store) => {
      const w = await store.compareAndSet("tls/a", "1", 0);
      expect(w.ok).toBe(true);
      expect((await store.get("tls/a")).kv?.value).toBe("1");
      const lease = await store.grantLease(2000);
      await store.keepAlive(lease.id);
      await store.revokeLease(lease.id);
    });
  });

  it("etcd secure - without a client certificate: UNAUTHENTICATED, saying the certificate is missing", async () => {
    const e = await withStore({ hosts: etcd.url, tls: { ca: c.ca }, timeoutMs: 3000 }, (store) => refusal(store.get("tls/a")));
    expect(e.code).toBe("UNAUTHENTICATED");
    expect(e.message).toMatch(/requires a client certificate .* none was given/);
  });

  it("etcd secure - a client certificate of another CA: UNAUTHENTICATED, saying etcd refused it", async () => {
    const e = await withStore({ hosts: etcd.url, tls: { ca: c.ca, cert: c.otherClientCert, key: c.otherClientKey }, timeoutMs: 3000 }, (store) =>
      refusal(store.compareAndSet("tls/b", "1", 0)),
    );
    expect(e.code).toBe("UNAUTHENTICATED");
    expect(e.message).toMatch(/refused this client's certificate/);
  });

  it("etcd secure - the wrong CA for etcd's certificate: UNAUTHENTICATED, saying which CA to pass", async () => {
    const e = await withStore({ hosts: etcd.url, tls: { ca: c.otherCa, cert: c.clientCert, key: c.clientKey }, timeoutMs: 3000 }, (store) =>
      refusal(store.grantLease(2000)),
    );
    expect(e.code).toBe("UNAUTHENTICATED");
    expect(e.message).toMatch(/certificate of etcd at https:\/\/127\.0\.0\.1:\d+ was not accepted .*--ca/);
  });

  it("etcd secure - plaintext to a TLS member fails with a hint to use https", async () => {
    const e = await withStore({ hosts: `http://127.0.0.1:${etcd.port}`, timeoutMs: 3000 }, (store) => refusal(store.get("tls/a")));
    expect(e.code).toBe("UNAVAILABLE");
    expect(e.message).toMatch(/reachable from here\?\); if it serves TLS, use an https:\/\/ host/);
  });
});

describeWithEtcd("etcd secure - authentication and the registry roles", () => {
  let etcd: SecureEtcd;
  let c: TestCerts;
  let tls: ClientTls;
  beforeAll(async () => {
    c = testCerts();
    tls = { ca: c.ca, cert: c.clientCert, key: c.clientKey };
    etcd = await startSecureEtcd({ tls: { ca: c.ca, cert: c.serverCert, key: c.serverKey }, adminTls: tls, rootPassword: "root-secret" });
    const report = await setUpEtcdRoles({
      ...etcd.root,
      principals: [
        { name: "eu-1", roles: ["instance"], services: ["demo.Accounts"], password: "eu-1-secret" },
        { name: "viewer", roles: ["reader"], password: "viewer-secret" },
        { name: "ops", roles: ["operator"] },
      ],
    });
    expect(report.usersCreated.sort()).toEqual(["eu-1", "ops", "viewer"]);
  }, 60_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it("etcd secure - the right password works, a wrong one is UNAUTHENTICATED, a certificate CN that is no user is PERMISSION_DENIED", async () => {
    await withStore({ hosts: etcd.url, tls, auth: { username: "root", password: "root-secret" } }, async (store) => {
      expect((await store.compareAndSet("meridian/health", "ok", 0)).ok).toBe(true);
    });
    const wrong = await withStore({ hosts: etcd.url, tls, auth: { username: "root", password: "guess" } }, (store) => refusal(store.get("meridian/health")));
    expect(wrong.code).toBe("UNAUTHENTICATED");
    expect(wrong.message).toMatch(/refused user "root": wrong password, or no such user/);
    // The harness's certificate (CN=meridian-test-client) is no etcd user: etcd denies it, and says so.
    const none = await withStore({ hosts: etcd.url, tls }, (store) => refusal(store.get("meridian/health")));
    expect(none.code).toBe("PERMISSION_DENIED");
    expect(none.message).toMatch(/user "meridian-test-client" \(the client certificate's CN\)/);
    expect(none.message).not.toMatch(/user name is empty/);
  });

  it("etcd secure - setting the roles up again changes nothing", async () => {
    const report = await setUpEtcdRoles({
      ...etcd.root,
      principals: [
        { name: "eu-1", roles: ["instance"], services: ["demo.Accounts"] },
        { name: "viewer", roles: ["reader"] },
        { name: "ops", roles: ["operator"] },
      ],
    });
    expect(report).toEqual({ rolesCreated: [], rolesUpdated: [], usersCreated: [], granted: [], revoked: [] });
  });

  it("etcd secure - an instance registers its own service and is refused everywhere else (PERMISSION_DENIED)", async () => {
    await withStore({ hosts: etcd.url, tls, auth: { username: "eu-1", password: "eu-1-secret" } }, async (store) => {
      const registry = createRegistry({ store, region: "eu-1", ownStore: false, healthIntervalMs: 60_000 });
      try {
        const reg = await registry.register({ service: "demo.Accounts", address: "127.0.0.1:9000", transport: "tcp" });
        expect((await registry.resolve("demo.Accounts")).map((i) => i.address)).toEqual(["127.0.0.1:9000"]);
        // Another service's instances, the primary, the whole keyspace: refused, saying what and who.
        const rogue = await refusal(registry.register({ service: "demo.Ledger", address: "127.0.0.1:6666", transport: "tcp" }));
        expect(rogue.code).toBe("PERMISSION_DENIED");
        expect(rogue.message).toMatch(/denied the .*"meridian\/services\/demo\.Ledger\/instances\/.* to user "eu-1"/);
        const move = await refusal(registry.movePrimary("demo.Accounts", "evil-region"));
        expect(move.code).toBe("PERMISSION_DENIED");
        const all = await refusal(store.list(""));
        expect(all.code).toBe("PERMISSION_DENIED");
        await reg.deregister();
      } finally {
        await registry.close();
      }
    });
  });

  it("etcd secure - a watch on a range the user may not read ends with PERMISSION_DENIED", async () => {
    await withStore({ hosts: etcd.url, tls, auth: { username: "viewer", password: "viewer-secret" } }, async (store) => {
      const e = await (async () => {
        for await (const _ of store.watch("__meridian/", 0)) void _;
      })().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(StoreError);
      expect((e as StoreError).code).toBe("PERMISSION_DENIED");
      expect((e as StoreError).message).toMatch(/watch of "__meridian\/"/);
    });
  });

  it("etcd secure - the registry client works end to end with the roles: instance, reader, operator", async () => {
    const instanceStore = createEtcdStore({ hosts: etcd.url, tls, auth: { username: "eu-1", password: "eu-1-secret" }, timeoutMs: 4000 });
    const readerStore = createEtcdStore({ hosts: etcd.url, tls, auth: { username: "viewer", password: "viewer-secret" }, timeoutMs: 4000 });
    // The operator authenticates by its certificate alone: CN=ops is its etcd user (no password).
    const operatorStore = createEtcdStore({ hosts: etcd.url, tls: { ca: c.ca, cert: c.clients.ops!.cert, key: c.clients.ops!.key }, timeoutMs: 4000 });
    const instance = createRegistry({ store: instanceStore, region: "eu-1" });
    const reader = createRegistry({ store: readerStore, region: "us-1" });
    const operator = createRegistry({ store: operatorStore, region: "operator" });
    try {
      const first = await operator.movePrimary("demo.Accounts", "eu-1");
      expect(first.epoch).toBe(1);
      const reg = await instance.register({ service: "demo.Accounts", address: "127.0.0.1:9001", transport: "tcp" });
      // The instance reads its own service's primary (fencing needs it); the reader sees everything.
      expect((await instance.primary("demo.Accounts"))?.region).toBe("eu-1");
      await instance.ready({ timeoutMs: 10_000 });
      expect((await reader.resolve("demo.Accounts")).map((i) => i.address)).toContain("127.0.0.1:9001");
      const moved = await operator.movePrimary("demo.Accounts", "us-1");
      expect(moved.epoch).toBe(2);
      // The reader sees the move through its watch, and may not make one.
      await expect.poll(async () => (await reader.view("demo.Accounts")).primary?.region, { timeout: 10_000 }).toBe("us-1");
      const refused = await refusal(reader.movePrimary("demo.Accounts", "eu-1"));
      expect(refused.code).toBe("PERMISSION_DENIED");
      await reg.deregister();
      await expect.poll(async () => (await reader.resolve("demo.Accounts")).length, { timeout: 10_000 }).toBe(0);
    } finally {
      await Promise.all([instance.close(), reader.close(), operator.close()]);
    }
  });
});

describeWithEtcd("etcd secure - authentication without client certificates", () => {
  let etcd: SecureEtcd;
  beforeAll(async () => {
    etcd = await startSecureEtcd({ rootPassword: "root-secret" });
  }, 60_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it('etcd secure - no credentials: UNAUTHENTICATED saying what to pass, not "user name is empty"', async () => {
    const e = await withStore({ hosts: etcd.url }, (store) => refusal(store.compareAndSet("meridian/health", "ok", 0)));
    expect(e.code).toBe("UNAUTHENTICATED");
    expect(e.message).toMatch(/has authentication enabled and a client without credentials sent none: pass auth \{ username, password \}/);
    await withStore({ hosts: etcd.url, auth: { username: "root", password: "root-secret" } }, async (store) => {
      expect((await store.compareAndSet("meridian/health", "ok", 0)).ok).toBe(true);
    });
  });
});
