/**
 * TLS and mutual TLS on the TCP transport, over real sockets on 127.0.0.1 with certificates made
 * by openssl at test time: calls and streams over TLS, the client's verified identity on the
 * server's context, every way a handshake can fail (wrong CA, expired, wrong name, no client
 * certificate, plaintext against TLS, a handshake that never comes) with a clear error,
 * certificate rotation without a restart, and plaintext only by explicit choice off loopback.
 */
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeAll, expect, it } from "vitest";
import { Code, ConfigError, RpcError, createClient, createServer, type CallContext, type PeerIdentity } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport, type TcpClientOptions, type TcpServerOptions } from "meridian-rpc/transports/tcp";
import { EchoService } from "../rpc/gen/echo.js";
import { echoHandlers, type EchoServer } from "../rpc/helpers.js";
import { describeWithOpenssl, makeCerts, type TestCerts } from "../support/certs.js";
import { rejection } from "../support/rejection.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
});

async function start(options: TcpServerOptions) {
  const calls: EchoServer["calls"] = [];
  const transport = new TcpServerTransport({ host: "127.0.0.1", ...options });
  const server = createServer({ transport, metrics: false, logger: { error: () => {} } });
  server.register(EchoService, echoHandlers("tls", calls));
  const { address } = await server.listen();
  cleanup.push(() => server.close({ graceMs: 0 }));
  return { transport, address, calls };
}

function client(address: string, options: TcpClientOptions) {
  const transport = new TcpClientTransport({ backoffBaseMs: 10, backoffMaxMs: 20, ...options });
  cleanup.push(() => transport.close());
  return { transport, echo: createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs: 5000 }) };
}

/** The subject CN of the certificate a TLS server presents to a fresh connection. */
function presentedName(address: string, ca: Buffer): Promise<string | undefined> {
  const port = Number(address.slice(address.lastIndexOf(":") + 1));
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: "127.0.0.1", port, ca }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.destroy();
      resolve(Array.isArray(cn) ? cn[0] : cn);
    });
    s.once("error", reject);
  });
}

describeWithOpenssl("tcp tls", () => {
  let c: TestCerts;
  beforeAll(() => {
    c = makeCerts()!;
  }, 60_000);

  it("tcp tls - unary calls and streams run over TLS; the server's certificate is verified", async () => {
    const { address } = await start({ tls: { cert: c.serverCert, key: c.serverKey } });
    const { echo } = client(address, { tls: { ca: c.ca } });
    expect((await echo.echo({ text: "sealed" })).text).toBe("sealed");
    const texts: number[] = [];
    for await (const m of echo.watch({ text: "s" })) texts.push(m.count);
    expect(texts).toEqual([1, 2, 3]);
  });

  it("tcp tls - mutual TLS: the client's verified identity is on the server's context; none without a certificate", async () => {
    const { address, calls } = await start({ tls: { cert: c.serverCert, key: c.serverKey, ca: c.ca } });
    const withCert = client(address, { tls: { ca: c.ca, cert: c.clientCert, key: c.clientKey } });
    await withCert.echo.echo({ text: "who" });
    for await (const _ of withCert.echo.watch({ text: "w" })) break;
    const ids = calls.map((x) => (x.ctx as CallContext).peerIdentity);
    for (const id of ids) {
      expect(id).toMatchObject({ commonName: "meridian-test-client", subjectAltNames: ["URI:spiffe://meridian.test/region/eu-1"] } satisfies Partial<PeerIdentity>);
      expect(id!.subject).toContain("CN=meridian-test-client");
      expect(id!.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    }
    const anonymous = client(address, { tls: { ca: c.ca } });
    await anonymous.echo.echo({ text: "anon" });
    expect(calls.at(-1)!.ctx.peerIdentity).toBeUndefined();
    // A certificate from a CA the server does not trust is no identity either.
    const stranger = client(address, { tls: { ca: c.ca, cert: c.otherClientCert, key: c.otherClientKey } });
    await stranger.echo.echo({ text: "stranger" });
    expect(calls.at(-1)!.ctx.peerIdentity).toBeUndefined();
  });

  it("tcp tls - requireClientCert refuses clients without a certificate of its CA, with an error that says so", async () => {
    const { address, transport } = await start({ tls: { cert: c.serverCert, key: c.serverKey, ca: c.ca, requireClientCert: true } });
    const none = await rejection(client(address, { tls: { ca: c.ca } }).echo.echo({ text: "x" }));
    expect(none.code).toBe(Code.UNAVAILABLE);
    expect(none.message).toMatch(/certificate required \(the server requires a client certificate: set the client's tls.cert and tls.key\)/);
    expect(none.message).not.toMatch(/deps\/openssl|rec_layer/);
    const wrong = await rejection(client(address, { tls: { ca: c.ca, cert: c.otherClientCert, key: c.otherClientKey } }).echo.echo({ text: "x" }));
    expect(wrong.code).toBe(Code.UNAVAILABLE);
    expect(wrong.message).toMatch(/client certificate|unknown ca/i);
    const ok = client(address, { tls: { ca: c.ca, cert: c.clientCert, key: c.clientKey } });
    expect((await ok.echo.echo({ text: "in" })).text).toBe("in");
    expect(transport.tlsFailures).toBeGreaterThanOrEqual(2);
  });

  it("tcp tls - a server certificate of another CA, an expired one, or one for another name fails the handshake with a clear error, before anything is sent", async () => {
    const other = await start({ tls: { cert: c.otherServerCert, key: c.otherServerKey } });
    const wrongCa = await rejection(client(other.address, { tls: { ca: c.ca } }).echo.echo({ text: "x" }));
    expect(wrongCa).toMatchObject({ code: Code.UNAVAILABLE, notSent: true });
    expect(wrongCa.message).toMatch(/TLS handshake failed: .*(self[- ]signed|unable to verify|local issuer)/i);
    expect(other.calls).toHaveLength(0);

    const expired = await start({ tls: { cert: c.expiredCert, key: c.expiredKey } });
    await sleep(1100); // its validity ended the second it was made
    const exp = await rejection(client(expired.address, { tls: { ca: c.ca } }).echo.echo({ text: "x" }));
    expect(exp.message).toMatch(/TLS handshake failed: certificate has expired/);

    const good = await start({ tls: { cert: c.serverCert, key: c.serverKey } });
    const port = good.address.slice(good.address.lastIndexOf(":") + 1);
    const name = await rejection(client(`localhost:${port}`, { tls: { ca: c.ca, serverName: "api.example.test" } }).echo.echo({ text: "x" }));
    expect(name.message).toMatch(/TLS handshake failed: .*(does not match|not in the cert's altnames)/i);
    expect(good.calls).toHaveLength(0);
  });

  it("tcp tls - plaintext against a TLS server, and TLS against a plaintext one, fail the call instead of hanging", async () => {
    const secure = await start({ tls: { cert: c.serverCert, key: c.serverKey }, tlsHandshakeTimeoutMs: 2000 });
    const plain = await rejection(client(secure.address, { connectTimeoutMs: 2000 }).echo.echo({ text: "x" }, { timeoutMs: 3000 }));
    expect([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED]).toContain(plain.code);
    const open = await start({});
    const tls = await rejection(client(open.address, { tls: { ca: c.ca }, connectTimeoutMs: 2000 }).echo.echo({ text: "x" }, { timeoutMs: 3000 }));
    expect(tls.code).toBe(Code.UNAVAILABLE);
    expect(open.calls).toHaveLength(0);
  });

  it("tcp tls - a connection that never completes its handshake is dropped after tlsHandshakeTimeoutMs", async () => {
    const { address, transport } = await start({ tls: { cert: c.serverCert, key: c.serverKey }, tlsHandshakeTimeoutMs: 300 });
    const port = Number(address.slice(address.lastIndexOf(":") + 1));
    const sock = netConnect({ host: "127.0.0.1", port });
    sock.on("error", () => {});
    const closed = new Promise<number>((resolve) => {
      const t0 = Date.now();
      sock.once("close", () => resolve(Date.now() - t0));
    });
    const after = await Promise.race([closed, sleep(5000).then(() => -1)]);
    expect(after).toBeGreaterThan(0);
    expect(transport.tlsFailures).toBe(1);
  });

  it("tcp tls - certificates rotate without a restart: new connections get the new one, open ones go on", async () => {
    const { address, transport } = await start({ tls: { cert: c.serverCert, key: c.serverKey } });
    const { echo, transport: ct } = client(address, { tls: { ca: c.ca } });
    await echo.echo({ text: "before" });
    expect(await presentedName(address, c.ca)).toBe("meridian-test-server");
    transport.updateTls({ cert: c.serverCert2, key: c.serverKey2 });
    expect(await presentedName(address, c.ca)).toBe("meridian-test-server-2");
    expect((await echo.echo({ text: "same connection" })).text).toBe("same connection");
    expect(ct.connectionCount(address)).toBe(1);
    // The client side rotates too: a CA that does not sign the server's certificate fails new connections only.
    ct.updateTls({ ca: c.otherCa });
    expect((await echo.echo({ text: "still open" })).text).toBe("still open");
    expect(() => transport.updateTls({ cert: c.serverCert } as never)).toThrow(ConfigError);
  });

  it("tcp tls - off loopback, plaintext is an explicit choice on both sides", async () => {
    expect(() => new TcpServerTransport({ host: "0.0.0.0" })).toThrow(/without TLS .* plaintext: true/);
    expect(() => new TcpServerTransport({ host: "::" })).toThrow(ConfigError);
    expect(() => new TcpServerTransport({ host: "0.0.0.0", plaintext: true })).not.toThrow();
    expect(() => new TcpServerTransport({ host: "0.0.0.0", tls: { cert: c.serverCert, key: c.serverKey } })).not.toThrow();
    expect(() => new TcpServerTransport({ host: "::1" })).not.toThrow();
    // Refused before any connection is attempted: nothing leaves the machine.
    const refused = await rejection(client("meridian.invalid:9", {}).echo.echo({ text: "x" }));
    expect(refused).toMatchObject({ code: Code.FAILED_PRECONDITION, notSent: true });
    expect(refused.message).toMatch(/without TLS.*plaintext: true/);
    expect(() => new TcpClientTransport({ tls: { cert: c.clientCert } })).toThrow(ConfigError);
  });
});
