/**
 * `meridian registry serve` in process (registryCommand with the TCP transport): mutual TLS from
 * its flags, the refusals of unsafe or incomplete flags, and a graceful stop that releases the
 * data directory.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { registryCommand, type RegistryCommandDeps } from "../../cli/registry.js";
import { createRemoteStore } from "meridian-rpc/registry";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { describeWithOpenssl, makeCerts } from "../support/certs.js";

const dir = mkdtempSync(join(tmpdir(), "meridian-serve-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `meridian registry serve <args>` in process; `stop()` aborts it and resolves with its exit code. */
function serve(args: string[], deps: RegistryCommandDeps = {}) {
  let out = "";
  let err = "";
  const shutdown = new AbortController();
  const exit = registryCommand(["serve", ...args], { stdout: (t) => (out += t), stderr: (t) => (err += t) }, {
    serverTransport: (options) => new TcpServerTransport(options),
    clientTransport: () => new TcpClientTransport(),
    shutdown: shutdown.signal,
    ...deps,
  });
  const address = async (): Promise<string> => {
    const deadline = Date.now() + 10_000;
    while (!/ on (\S+) \(/.test(out)) {
      if (Date.now() > deadline) throw new Error(`serve did not start: ${out}${err}`);
      const done = await Promise.race([exit.then(() => true), new Promise((r) => setTimeout(() => r(false), 20))]);
      if (done) throw new Error(`serve exited: ${out}${err}`);
    }
    return / on (\S+) \(/.exec(out)![1]!;
  };
  return { exit, address, stop: () => (shutdown.abort(), exit), out: () => out, err: () => err };
}

describe("durable registry - serve flags", () => {
  it("serve - --auth <file>: calls without a token are UNAUTHENTICATED, a reader's token reads and may not write", async () => {
    const auth = join(dir, "auth.json");
    const readerToken = "reader-token-0123456789";
    writeFileSync(auth, JSON.stringify({ tokens: { [readerToken]: { name: "dashboard", roles: ["reader"] } } }));
    const server = serve(["--data", join(dir, "authed"), "--listen", "127.0.0.1:0", "--auth", auth]);
    const address = await server.address();
    expect(server.out()).toContain("authentication and roles");
    const open = (token?: string) =>
      createRemoteStore({ transport: new TcpClientTransport(), address, timeoutMs: 3000, ...(token === undefined ? {} : { token }) });
    const anonymous = open();
    const reader = open(readerToken);
    try {
      await expect(anonymous.list("")).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
      expect((await reader.list("")).kvs).toEqual([]);
      await expect(reader.compareAndSet("meridian/services/x/instances/1", "v", 0)).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
      let out = "";
      const io = { stdout: (t: string) => (out += t), stderr: (t: string) => (out += t) };
      const deps = { clientTransport: (o: { tls?: object }) => new TcpClientTransport(o) };
      expect(await registryCommand(["status", "--registry", `embedded://${address}`, "--token", readerToken], io, deps)).toBe(0);
      expect(out).toContain(": ok");
      expect(await registryCommand(["status", "--registry", `embedded://${address}`], io, deps)).toBe(1);
    } finally {
      await anonymous.close();
      await reader.close();
    }
    expect(await server.stop()).toBe(0);
  });


  it("serve - refuses to start without --auth or --insecure, without --data, or on a non-loopback address without TLS", async () => {
    const noAuth = serve(["--data", join(dir, "a"), "--listen", "127.0.0.1:0"]);
    expect(await noAuth.exit).toBe(2);
    expect(noAuth.err()).toMatch(/choose how clients authenticate: --auth <file>.* or --insecure/);

    const both = serve(["--data", join(dir, "a"), "--listen", "127.0.0.1:0", "--insecure", "--auth", join(dir, "auth.json")]);
    expect(await both.exit).toBe(2);
    expect(both.err()).toMatch(/--auth and --insecure contradict each other/);

    writeFileSync(join(dir, "bad-auth.json"), `{"tokens": {"t": {}}}`);
    const badAuth = serve(["--data", join(dir, "a"), "--listen", "127.0.0.1:0", "--auth", join(dir, "bad-auth.json")]);
    expect(await badAuth.exit).toBe(2);
    expect(badAuth.err()).toMatch(/--auth .*bad-auth\.json: .*"name"/);
    expect(existsSync(join(dir, "a"))).toBe(false);

    const noData = serve(["--listen", "127.0.0.1:0", "--insecure"]);
    expect(await noData.exit).toBe(2);
    expect(noData.err()).toMatch(/--data <dir> is required/);

    const open = serve(["--data", join(dir, "b"), "--listen", "0.0.0.0:0", "--insecure"]);
    expect(await open.exit).toBe(2);
    expect(open.err()).toMatch(/without TLS .* --cert <file> --key <file>, or --plaintext/s);
    expect(existsSync(join(dir, "b"))).toBe(false);

    const badFsync = serve(["--data", join(dir, "c"), "--insecure", "--fsync", "never"]);
    expect(await badFsync.exit).toBe(2);
    expect(badFsync.err()).toMatch(/--fsync must be always or interval/);
  });

  it("serve - stops gracefully on shutdown and releases the data directory", async () => {
    const data = join(dir, "graceful");
    const server = serve(["--data", data, "--listen", "127.0.0.1:0", "--insecure", "--fsync", "interval", "--fsync-interval", "50"]);
    const address = await server.address();
    expect(server.out()).toMatch(/plaintext, no authentication, fsync interval/);
    const store = createRemoteStore({ transport: new TcpClientTransport(), address });
    expect((await store.compareAndSet("k", "v", 0)).ok).toBe(true);
    await store.close();
    expect(existsSync(join(data, "LOCK"))).toBe(true);
    expect(await server.stop()).toBe(0);
    expect(existsSync(join(data, "LOCK"))).toBe(false);

    // A second server on the folder while one runs is refused with the reason.
    const first = serve(["--data", data, "--listen", "127.0.0.1:0", "--insecure"]);
    await first.address();
    expect(first.out()).toMatch(/1 log record\(s\) replayed|revision 2/);
    const second = serve(["--data", data, "--listen", "127.0.0.1:0", "--insecure"]);
    expect(await second.exit).toBe(1);
    expect(second.err()).toMatch(/cannot start: the registry data directory .* is in use by another node of this process/);
    expect(await first.stop()).toBe(0);
  });
});

describeWithOpenssl("durable registry - serve with mutual TLS", () => {
  it("serve - --cert --key --ca: a client with a certificate of the CA is served, one without is refused", async () => {
    const certs = makeCerts()!;
    const file = (name: string, content: Buffer) => {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    };
    const server = serve([
      "--data", join(dir, "tls"),
      "--listen", "127.0.0.1:0",
      "--insecure",
      "--cert", file("server.pem", certs.serverCert),
      "--key", file("server.key", certs.serverKey),
      "--ca", file("ca.pem", certs.ca),
    ]);
    const address = await server.address();
    expect(server.out()).toMatch(/mutual TLS/);

    const trusted = createRemoteStore({
      transport: new TcpClientTransport({ tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } }),
      address,
      timeoutMs: 3000,
    });
    expect((await trusted.compareAndSet("tls/k", "v", 0)).ok).toBe(true);
    expect((await trusted.get("tls/k")).kv?.value).toBe("v");
    await trusted.close();

    const anonymous = createRemoteStore({ transport: new TcpClientTransport({ tls: { ca: certs.ca } }), address, timeoutMs: 2000 });
    await expect(anonymous.get("tls/k")).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await anonymous.close();
    expect(await server.stop()).toBe(0);
  });
});
