/**
 * The registry server's authentication and authorization, over real TCP with TLS on 127.0.0.1
 * and client certificates made by openssl at test time: each attack of issue 11 is attempted
 * by a principal that may not do it (or by nobody) and refused with the right code and a message
 * that says what was missing, while the legitimate flow (instances registering and routing under
 * their certificates, an operator moving the primary) works.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import {
  readRegistryAuth,
  type RegistryAuth,
  createRegistry,
  type Registry,
  serveRegistry,
  type RegistryServer,
  EmbeddedNode,
  fencedKv,
  createRemoteStore,
  fencingMiddleware,
  listenAndRegister,
  routingOptions,
  StoreError,
  type Store,
  openRegistryStore,
} from "meridian-rpc/registry";
import { createClient, Code, RpcError, createServer, type ClientTls, HeaderKeys } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { describeWithOpenssl, makeCerts, type TestCerts } from "../support/certs.js";
import { freePort } from "../support/etcd-cluster.js";
import { meridianChild, meridianInProcess } from "../support/meridian-cli.js";
import { Accounts } from "./gen/accounts.js";

const SERVICE = Accounts.typeName;
const OTHER = "demo.Other";
const OPERATOR_TOKEN = "op-token-0123456789abcdef";
const DEV_TOKEN = "dev-token-0123456789abcdef";
const READER_TOKEN = "reader-token-0123456789abcdef";
const spiffe = (name: string) => `spiffe://meridian.test/${name}`;

const AUTH: RegistryAuth = {
  certificates: {
    [spiffe("eu-1")]: { roles: ["instance"], services: [SERVICE] },
    [spiffe("us-1")]: { roles: ["instance"], services: [SERVICE] },
    [spiffe("rogue")]: { roles: ["instance"], services: [OTHER] },
    // Keyed by the subject CN: the reader's certificate is matched by its common name.
    "reader-1": { roles: ["reader"] },
    [spiffe("ops")]: { roles: ["operator"] },
  },
  tokens: {
    [OPERATOR_TOKEN]: { name: "dev-operator", roles: ["operator"] },
    [READER_TOKEN]: { name: "dev-reader", roles: ["reader"] },
    [DEV_TOKEN]: { name: "dev-instance", roles: ["instance"], services: ["demo.Dev"], quotas: { maxLeases: 3, maxKeys: 5, maxValueBytes: 100_000, maxBytes: 300_000 } },
  },
};

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
});

/** Waits for `probe` to hold; bounds are generous (a loaded machine is slow, never wrong). */
async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The StoreError a promise rejects with (the test fails when it resolves). */
async function refused(p: Promise<unknown>): Promise<StoreError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, "the call should have been refused").toBeInstanceOf(StoreError);
  return e as StoreError;
}

/** `meridian <args>` in a child process, with no token from the environment. */
const meridian = (args: string[]) => meridianChild(args, { MERIDIAN_REGISTRY_TOKEN: "" });
/** `meridian <args>` in this process. */
const run = (args: string[]) => meridianInProcess(args);

describeWithOpenssl("registry auth", () => {
  let c: TestCerts;
  let server: RegistryServer;
  let dir: string;

  beforeAll(async () => {
    c = makeCerts({ clients: ["eu-1", "us-1", "rogue", "reader-1", "ops"] })!;
    // Admission shedding off on the test servers: on a loaded machine it could refuse a call
    // (RESOURCE_EXHAUSTED) before authorization decides, which is not what these tests look at.
    server = await serveRegistry({ auth: AUTH, admission: false, transport: new TcpServerTransport({ tls: { cert: c.serverCert, key: c.serverKey, ca: c.ca } }) });
    dir = mkdtempSync(join(tmpdir(), "meridian-auth-test-"));
    writeFileSync(join(dir, "ca.pem"), c.ca);
    for (const name of ["eu-1", "ops"]) {
      writeFileSync(join(dir, `${name}.pem`), c.clients[name]!.cert);
      writeFileSync(join(dir, `${name}.key`), c.clients[name]!.key);
    }
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** TLS of a client: trusting the test CA, with the named client certificate (or none). */
  const tls = (name?: string): ClientTls => (name === undefined ? { ca: c.ca } : { ca: c.ca, cert: c.clients[name]!.cert, key: c.clients[name]!.key });

  /** A remote store of the registry, as the named certificate's principal (or a token, or nobody). */
  function storeAs(who: { cert?: string; token?: string } = {}): Store {
    const store = createRemoteStore({
      transport: new TcpClientTransport({ tls: tls(who.cert) }),
      address: server.address,
      timeoutMs: 5000,
      ...(who.token === undefined ? {} : { token: who.token }),
    });
    cleanup.push(() => store.close());
    return store;
  }

  function registryAs(cert: string, region: string): Registry {
    const registry = createRegistry({ store: storeAs({ cert }), region, healthIntervalMs: 200, primaryLeaseMs: 1000, leaseTtlMs: 4000, timeoutMs: 3000 });
    cleanup.push(() => registry.close());
    return registry;
  }

  it("registry auth - serveRegistry makes the caller choose: auth, or insecure: true", async () => {
    await expect(serveRegistry({ transport: new TcpServerTransport() })).rejects.toThrow(/choose how calls are authenticated: auth: .* or insecure: true/);
    await expect(serveRegistry({ transport: new TcpServerTransport(), auth: AUTH, insecure: true })).rejects.toThrow(TypeError);
    await expect(serveRegistry({ transport: new TcpServerTransport(), auth: { tokens: { short: { name: "x", roles: ["reader"] } } } })).rejects.toThrow(/at least 16 characters/);
    await expect(serveRegistry({ transport: new TcpServerTransport(), auth: { certificates: { x: { roles: ["instance"] } } } })).rejects.toThrow(/instance role but no services/);
  });

  it("registry auth - an auth file is read as RegistryAuth, with errors that name the file and the field", () => {
    const file = join(dir, "auth.json");
    writeFileSync(file, JSON.stringify({ tokens: { [OPERATOR_TOKEN]: { name: "ops", roles: ["operator"] } }, quotas: { maxKeys: 10 } }));
    expect(readRegistryAuth(file)).toEqual({ tokens: { [OPERATOR_TOKEN]: { name: "ops", roles: ["operator"] } }, quotas: { maxKeys: 10 } });
    writeFileSync(file, JSON.stringify({ token: {} }));
    expect(() => readRegistryAuth(file)).toThrow(new RegExp(`registry auth file ${file}: unknown field "token"`));
    writeFileSync(file, "{ not json");
    expect(() => readRegistryAuth(file)).toThrow(/registry auth file .*auth\.json: .*JSON/);
  });

  it("registry auth - after the server restarts, an instance's lease is no one's: its keepalive gets NOT_FOUND and it registers again under a new lease", async () => {
    const node = await EmbeddedNode.open();
    cleanup.push(() => node.close());
    const port = await freePort();
    const serve = () => serveRegistry({ auth: AUTH, node, admission: false, transport: new TcpServerTransport({ port, tls: { cert: c.serverCert, key: c.serverKey, ca: c.ca } }) });
    let first: RegistryServer | undefined = await serve();
    cleanup.push(async () => first?.close());
    const store = createRemoteStore({ transport: new TcpClientTransport({ tls: tls("eu-1") }), address: `127.0.0.1:${port}`, timeoutMs: 3000 });
    const eu = createRegistry({ store, region: "eu", leaseTtlMs: 1500, timeoutMs: 2000, healthIntervalMs: 200 });
    cleanup.push(() => eu.close());
    const registration = await eu.register({ service: SERVICE, address: "127.0.0.1:7001", transport: "tcp" });
    const before = (await node.get(registration.key)).kv!.lease;

    await first.close();
    first = undefined;
    const second = await serve();
    cleanup.push(() => second.close());
    await until("the instance registered again under a new lease", async () => {
      const kv = (await node.get(registration.key)).kv;
      return kv !== undefined && kv.lease !== before;
    });
    // The old lease is nobody's now: another instance cannot take it over either.
    const us = createRemoteStore({ transport: new TcpClientTransport({ tls: tls("us-1") }), address: `127.0.0.1:${port}`, timeoutMs: 3000 });
    cleanup.push(() => us.close());
    expect((await refused(us.keepAlive(before!))).code).toBe("LEASE_NOT_FOUND");
    expect((await eu.resolve(SERVICE)).map((i) => i.address)).toEqual(["127.0.0.1:7001"]);
  }, 60_000);

  it("registry auth - list(\"\") without credentials, with an unknown token or with another CA's certificate is UNAUTHENTICATED; a reader lists", async () => {
    const writer = storeAs({ token: OPERATOR_TOKEN });
    await writer.compareAndSet("meridian/services/demo.Listed/instances/eu/1", '{"address":"10.0.0.1:1"}', 0);

    const anonymous = await refused(storeAs().list(""));
    expect(anonymous.code).toBe("UNAUTHENTICATED");
    expect(anonymous.message).toMatch(/requires credentials and this call had none; it looked for a client certificate signed by the registry's CA .* or a bearer token/);
    const unknown = await refused(storeAs({ token: "not-a-token-of-this-registry" }).list(""));
    expect(unknown.code).toBe("UNAUTHENTICATED");
    expect(unknown.message).toMatch(/bearer token is not one this registry knows/);
    expect(unknown.message).not.toContain("not-a-token-of-this-registry");
    // A certificate the server's CA did not sign is no identity (the server here does not require one).
    const strangerStore = createRemoteStore({ transport: new TcpClientTransport({ tls: { ca: c.ca, cert: c.otherClientCert, key: c.otherClientKey } }), address: server.address });
    cleanup.push(() => strangerStore.close());
    expect((await refused(strangerStore.list(""))).code).toBe("UNAUTHENTICATED");
    // A watch without credentials ends with the refusal instead of polling forever.
    const watching = (async () => {
      for await (const _ of storeAs().watch("meridian/", 0)) return "batch";
      return "ended";
    })();
    expect((await refused(watching)).code).toBe("UNAUTHENTICATED");

    for (const reader of [storeAs({ cert: "reader-1" }), storeAs({ token: READER_TOKEN })]) {
      const listed = await reader.list("");
      expect(listed.kvs.map((kv) => kv.key)).toContain("meridian/services/demo.Listed/instances/eu/1");
      const denied = await refused(reader.compareAndSet("meridian/kv/x", "1", 0));
      expect(denied.code).toBe("PERMISSION_DENIED");
      expect(denied.message).toMatch(/principal "(reader-1|dev-reader)" \(roles: reader\) may not CompareAndSet "meridian\/kv\/x": that needs the instance role .* or the operator role/);
      expect((await refused(reader.grantLease(5000))).code).toBe("PERMISSION_DENIED");
    }
  });

  it("registry auth - deleting another service's instance key and registering a rogue instance are refused; nothing changes", async () => {
    const eu = registryAs("eu-1", "eu");
    const registration = await eu.register({ service: SERVICE, address: "127.0.0.1:7001", transport: "tcp" });
    const rogue = storeAs({ cert: "rogue" });

    const del = await refused(rogue.delete(registration.key));
    expect(del.code).toBe("PERMISSION_DENIED");
    expect(del.message).toContain(`may not Delete "${registration.key}": that needs an instance principal of ${SERVICE} (it holds ${OTHER})`);

    const rogueRegistry = createRegistry({ store: rogue, region: "eu", ownStore: false, healthIntervalMs: 200 });
    cleanup.push(() => rogueRegistry.close());
    const rogueRegistration = await refused(rogueRegistry.register({ service: SERVICE, address: "127.0.0.1:6666", transport: "tcp" }));
    expect(rogueRegistration.code).toBe("PERMISSION_DENIED");
    // Its own service it may register: the lease it granted is its own.
    await rogueRegistry.register({ service: OTHER, address: "127.0.0.1:6667", transport: "tcp" });
    // Nor may it write a primary record, even of its own service.
    expect((await refused(rogue.compareAndSet(`meridian/services/${OTHER}/primary`, '{"region":"x","epoch":1}', 0))).message).toMatch(/needs the operator role/);

    const instances = await eu.resolve(SERVICE);
    expect(instances.map((i) => i.address)).toEqual(["127.0.0.1:7001"]);
  });

  it("registry auth - renewing, revoking or borrowing another principal's lease is refused; the owner renews it", async () => {
    const eu = storeAs({ cert: "eu-1" });
    const us = storeAs({ cert: "us-1" });
    const lease = await eu.grantLease(5000);
    const keepAlive = await refused(us.keepAlive(lease.id));
    expect(keepAlive.code).toBe("PERMISSION_DENIED");
    expect(keepAlive.message).toMatch(/principal "spiffe:\/\/meridian.test\/us-1" \(roles: instance\) may not KeepAlive lease ".*": that needs the principal that granted it, or the operator role/);
    expect((await refused(us.revokeLease(lease.id))).code).toBe("PERMISSION_DENIED");
    // Attaching its own service's key to eu-1's lease (so eu-1's keepalive keeps it) is refused too.
    expect((await refused(us.compareAndSet(`meridian/services/${SERVICE}/instances/us/x`, "{}", 0, { lease: lease.id }))).message).toMatch(/a lease it granted/);
    expect((await eu.keepAlive(lease.id)).ttlMs).toBe(5000);
    // An operator may revoke anyone's lease; the owner's next renewal then finds it gone.
    await storeAs({ token: OPERATOR_TOKEN }).revokeLease(lease.id);
    expect((await refused(eu.keepAlive(lease.id))).code).toBe("LEASE_NOT_FOUND");
  });

  it("registry auth - quotas: 60 values of 3 MiB, too many leases, keys or bytes are RESOURCE_EXHAUSTED saying what was exceeded", async () => {
    // A 3 MiB call takes a while to arrive: with admission shedding on (the default), a loaded
    // machine sheds some of them before the quota check, RESOURCE_EXHAUSTED as well.
    const rogue = createRemoteStore({ transport: new TcpClientTransport({ tls: tls("rogue") }), address: server.address, timeoutMs: 10_000 });
    cleanup.push(() => rogue.close());
    const lease = await rogue.grantLease(10_000);
    const big = "x".repeat(3 * 1024 * 1024);
    for (let i = 0; i < 60; i++) {
      const e = await refused(rogue.compareAndSet(`meridian/services/${OTHER}/instances/eu/big-${i}`, big, 0, { lease: lease.id }));
      expect(e.code).toBe("RESOURCE_EXHAUSTED");
      expect(e.message).toMatch(/is 3145728 bytes, over the quota of principal "spiffe:\/\/meridian.test\/rogue" .* \(maxValueBytes 65536\)/);
    }
    expect((await rogue.list(`meridian/services/${OTHER}/instances/eu/big-`)).kvs).toHaveLength(0);

    const dev = storeAs({ token: DEV_TOKEN });
    const leases = [await dev.grantLease(10_000), await dev.grantLease(10_000), await dev.grantLease(10_000)];
    expect((await refused(dev.grantLease(10_000))).message).toMatch(/holds 3 leases, its quota \(maxLeases 3\)/);
    await dev.revokeLease(leases[2]!.id);
    leases[2] = await dev.grantLease(10_000);

    const key = (i: number) => `meridian/services/demo.Dev/instances/eu/${i}`;
    const hundredKb = "y".repeat(100_000);
    for (let i = 0; i < 3; i++) expect((await dev.compareAndSet(key(i), hundredKb, 0, { lease: leases[0]!.id })).ok).toBe(true);
    expect((await refused(dev.compareAndSet(key(3), hundredKb, 0, { lease: leases[0]!.id }))).message).toMatch(/over its quota of 300000 value bytes in all \(maxBytes; it holds 300000\)/);
    // Rewriting a key it holds counts the new value instead of the old one.
    const current = (await dev.get(key(0))).kv!;
    expect((await dev.compareAndSet(key(0), "small", current.modRevision, { lease: leases[0]!.id })).ok).toBe(true);
    expect((await dev.compareAndSet(key(3), "a", 0, { lease: leases[0]!.id })).ok).toBe(true);
    expect((await dev.compareAndSet(key(4), "b", 0, { lease: leases[0]!.id })).ok).toBe(true);
    expect((await refused(dev.compareAndSet(key(5), "c", 0, { lease: leases[0]!.id }))).message).toMatch(/holds 5 keys, its quota \(maxKeys 5\)/);
    // Keys stop counting once gone: with their lease, here.
    await dev.revokeLease(leases[0]!.id);
    expect((await dev.compareAndSet(key(5), "c", 0, { lease: leases[1]!.id })).ok).toBe(true);
  });

  it("registry auth - `meridian registry primary --move-to evil` by a non-operator is refused; without credentials it says what to pass; an operator moves it", async () => {
    const ops = storeAs({ cert: "ops" });
    const operator = createRegistry({ store: ops, region: "ops", ownStore: false, healthIntervalMs: 200 });
    cleanup.push(() => operator.close());
    await operator.ensurePrimary(SERVICE, "us");
    const before = (await operator.primary(SERVICE))!;
    const url = `embedded://${server.address}`;
    const pem = (f: string) => join(dir, f);

    const evil = await meridian(["registry", "primary", SERVICE, "--move-to", "evil", "--registry", url, "--ca", pem("ca.pem"), "--cert", pem("eu-1.pem"), "--key", pem("eu-1.key")]);
    expect(evil.status).toBe(1);
    expect(evil.stderr).toMatch(/not moved: .*may not CompareAndSet "meridian\/services\/.*\/primary": that needs the operator role/);
    expect(evil.stderr).toContain("moving a primary needs a principal with the operator role");

    const nobody = await run(["registry", "primary", SERVICE, "--move-to", "evil", "--registry", url, "--ca", pem("ca.pem")]);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/cannot read the primary .* requires credentials/);
    expect(nobody.stderr).toContain("pass --ca, --cert and --key (an operator's client certificate) or --token (or set MERIDIAN_REGISTRY_TOKEN)");
    const badFlags = await run(["registry", "primary", SERVICE, "--registry", url, "--cert", pem("eu-1.pem")]);
    expect(badFlags.code).toBe(2);
    expect(badFlags.stderr).toContain("--cert and --key go together");
    expect(await operator.primary(SERVICE)).toMatchObject({ region: before.region, epoch: before.epoch });

    const moved = await run(["registry", "primary", SERVICE, "--move-to", "eu", "--registry", url, "--ca", pem("ca.pem"), "--cert", pem("ops.pem"), "--key", pem("ops.key")]);
    expect(moved.stderr).toBe("");
    expect(moved.code).toBe(0);
    expect(await operator.primary(SERVICE)).toMatchObject({ region: "eu", epoch: before.epoch + 1 });
    const back = await run(["registry", "primary", SERVICE, "--move-to", "us", "--registry", url, "--ca", pem("ca.pem"), "--token", OPERATOR_TOKEN]);
    expect(back.code).toBe(0);
    expect(await operator.primary(SERVICE)).toMatchObject({ region: "us", epoch: before.epoch + 2 });
  }, 60_000);

  it("registry auth - the legitimate flow: instances register and route under their certificates, write fenced kv, and follow an operator's move", async () => {
    const regions = ["eu", "us"] as const;
    const setups = [];
    for (const region of regions) {
      const registry = registryAs(region === "eu" ? "eu-1" : "us-1", region);
      const rpc = createServer({ transport: new TcpServerTransport(), region, middleware: [fencingMiddleware(registry)], metrics: false }).register(Accounts, {
        // Balances live in the registry's kv space, written fenced on the primary record.
        deposit: async (req, ctx) => {
          const kv = fencedKv(registry, ctx);
          const key = `accounts/${req.account}`;
          const current = (await kv.get(key)).kv;
          const balance = Number(current?.value ?? "0") + req.amount;
          const r = current ? await kv.cas(key, String(balance), current.modRevision) : await kv.create(key, String(balance));
          if (!r.ok) throw new RpcError(Code.ABORTED, "concurrent deposit; retry");
          return { balance };
        },
        balance: async (req) => ({ balance: Number((await registry.kv.get(`accounts/${req.account}`)).kv?.value ?? "0") }),
      });
      const served = await listenAndRegister(rpc, registry, { services: [Accounts], transport: "tcp" });
      cleanup.push(() => served.close({ graceMs: 0 }));
      setups.push({ region, registry });
    }
    const ops = createRegistry({ store: storeAs({ cert: "ops" }), region: "ops", healthIntervalMs: 200 });
    cleanup.push(() => ops.close());
    const start = await ops.primary(SERVICE);
    if (start === undefined) await ops.ensurePrimary(SERVICE, "us");
    else if (start.region !== "us") await ops.movePrimary(SERVICE, "us");

    const eu = setups[0]!.registry;
    await until("both instances visible", async () => (await eu.resolve(SERVICE)).length === 2);
    const transport = new TcpClientTransport();
    cleanup.push(() => transport.close());
    const client = createClient(Accounts, { transport, ...routingOptions(eu, { transport: "tcp" }), timeoutMs: 5000 });
    let lastError: unknown;
    const deposit = async (amount: number) => {
      let served = "";
      const r = await client.deposit({ account: "alice", amount }, { onHeaders: (h) => (served = h[HeaderKeys.servedRegion] ?? "") });
      return { balance: r.balance, served };
    };
    await until("a deposit served by us", async () => (await deposit(0).catch((e: unknown) => ({ served: String((lastError = e)) }))).served === "us", 20_000).catch((e: Error) => {
      throw new Error(`${e.message}; last error: ${String(lastError)}`);
    });
    const first = await deposit(10);
    expect(first.served).toBe("us");

    // An instance's unfenced write to the kv space is not its to make.
    expect((await refused(eu.kv.create("accounts/mallory", "1000000"))).message).toMatch(/needs a write fenced on the primary of a service the instance holds/);

    await ops.movePrimary(SERVICE, "eu");
    await until("a deposit served by eu after the move", async () => (await deposit(0).catch(() => ({ served: "" }))).served === "eu");
    const after = await deposit(5);
    expect(after).toEqual({ balance: first.balance + 5, served: "eu" });
  }, 90_000);

  it("registry auth - with client certificates required, another CA's and an expired certificate fail the handshake with a clear error", async () => {
    const strict = await serveRegistry({
      auth: AUTH,
      admission: false,
      transport: new TcpServerTransport({ tls: { cert: c.serverCert, key: c.serverKey, ca: c.ca, requireClientCert: true } }),
    });
    cleanup.push(() => strict.close());
    const storeWith = (clientTls: ClientTls) => openRegistryStore(`embedded://${strict.address}`, { transport: (o) => new TcpClientTransport(o), tls: clientTls, timeoutMs: 5000 });
    const wrongCa = await storeWith({ ca: c.ca, cert: c.otherClientCert, key: c.otherClientKey });
    cleanup.push(() => wrongCa.close());
    const e1 = await refused(wrongCa.list(""));
    expect(e1.code).toBe("UNAVAILABLE");
    expect(e1.message).toMatch(/unknown ca|does not trust the client's certificate|refuses a client certificate it does not trust/i);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the expired certificate's validity ended the second it was made
    const expiredTls = { ca: c.ca, cert: c.expiredClientCert, key: c.expiredClientKey };
    // openRegistryStore (and so the CLI) names the expiry before connecting...
    const e2 = await refused(storeWith(expiredTls));
    expect(e2.code).toBe("INVALID_ARGUMENT");
    expect(e2.message).toMatch(/the client certificate \(CN=meridian-expired-client\) expired at \d{4}-.*: issue a new one/);
    // ...and the server refuses it in the handshake when it is sent anyway.
    const expired = createRemoteStore({ transport: new TcpClientTransport({ tls: expiredTls }), address: strict.address, timeoutMs: 5000 });
    cleanup.push(() => expired.close());
    const e3 = await refused(expired.list(""));
    expect(e3.code).toBe("UNAVAILABLE");
    expect(e3.message).toMatch(/refuses a client certificate it does not trust/);
    const good = await storeWith(tls("reader-1"));
    cleanup.push(() => good.close());
    expect((await good.list("")).revision).toBeGreaterThan(0);
  });
});
