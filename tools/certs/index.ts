/**
 * Throwaway certificates for TLS tests and benchmarks, made with Debian's openssl in a temporary
 * directory (deleted again): a CA, a server certificate for 127.0.0.1 / localhost, a client certificate
 * with a common name and a URI SAN, a second CA with a server certificate of its own (the wrong
 * CA), and a server certificate that has already expired.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Certificates and keys, PEM. */
export interface TestCerts {
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  /** CN=meridian-test-client, SAN URI:spiffe://meridian.test/region/eu-1. */
  clientCert: Buffer;
  clientKey: Buffer;
  /** A second server certificate of the same CA, CN=meridian-test-server-2 (for rotation). */
  serverCert2: Buffer;
  serverKey2: Buffer;
  /** Another CA, and a server certificate for 127.0.0.1 it signed. */
  otherCa: Buffer;
  otherServerCert: Buffer;
  otherServerKey: Buffer;
  /** A client certificate the other CA signed. */
  otherClientCert: Buffer;
  otherClientKey: Buffer;
  /** A server certificate for 127.0.0.1 from `ca` whose validity ended when it was made. */
  expiredCert: Buffer;
  expiredKey: Buffer;
  /** A client certificate from `ca` (CN=meridian-expired-client) whose validity ended when it was made. */
  expiredClientCert: Buffer;
  expiredClientKey: Buffer;
  /**
   * One client certificate of `ca` per name asked for in MakeCertsOptions.clients:
   * CN=<name>, SAN URI:spiffe://meridian.test/<name>.
   */
  clients: Record<string, { cert: Buffer; key: Buffer }>;
  /**
   * One certificate of `ca` per name asked for in MakeCertsOptions.peers, good as a server's and
   * as a client's (TLS server and client auth): CN=<name>, SANs IP:127.0.0.1, DNS:localhost and
   * URI:spiffe://meridian.test/<name>. For a process that both serves and calls under one
   * identity, and for servers that dial each other (NATS gateways).
   */
  peers: Record<string, { cert: Buffer; key: Buffer }>;
}

/** What makeCerts makes beyond its fixed set. */
export interface MakeCertsOptions {
  /** Names of extra client certificates (letters, digits, '.', '_' and '-'). */
  readonly clients?: readonly string[];
  /** Names of extra certificates for both ends of a connection (same characters as `clients`). */
  readonly peers?: readonly string[];
}

/** The openssl binary, or undefined when it is not installed. */
export function findOpenssl(): string | undefined {
  try {
    execFileSync("openssl", ["version"], { stdio: "pipe" });
    return "openssl";
  } catch {
    return undefined;
  }
}

const SERVER_EXT = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
const CLIENT_EXT = "subjectAltName=URI:spiffe://meridian.test/region/eu-1\nextendedKeyUsage=clientAuth\n";

/** Makes the certificates, or returns undefined when openssl is not installed. */
export function makeCerts(options: MakeCertsOptions = {}): TestCerts | undefined {
  if (findOpenssl() === undefined) return undefined;
  const names = options.clients ?? [];
  const peers = options.peers ?? [];
  for (const name of [...names, ...peers]) if (!/^[\w.-]+$/.test(name)) throw new TypeError(`makeCerts: a client name has letters, digits, '.', '_' and '-' only, got "${name}"`);
  const dir = mkdtempSync(join(tmpdir(), "meridian-certs-"));
  try {
    const run = (args: string[]): void => void execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    const ca = (name: string): void => run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.pem`]);
    const leaf = (name: string, by: string, ext: string, days = "1"): void => {
      run(["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`]);
      writeFileSync(join(dir, `${name}.ext`), ext);
      run(["x509", "-req", "-in", `${name}.csr`, "-CA", `${by}.pem`, "-CAkey", `${by}.key`, "-CAcreateserial", "-days", days, "-out", `${name}.pem`, "-extfile", `${name}.ext`]);
    };
    ca("meridian-test-ca");
    ca("meridian-other-ca");
    leaf("meridian-test-server", "meridian-test-ca", SERVER_EXT);
    leaf("meridian-test-server-2", "meridian-test-ca", SERVER_EXT);
    leaf("meridian-test-client", "meridian-test-ca", CLIENT_EXT);
    leaf("meridian-other-server", "meridian-other-ca", SERVER_EXT);
    leaf("meridian-other-client", "meridian-other-ca", CLIENT_EXT);
    // -days 0: not valid after the moment it was made.
    leaf("meridian-expired-server", "meridian-test-ca", SERVER_EXT, "0");
    leaf("meridian-expired-client", "meridian-test-ca", "subjectAltName=URI:spiffe://meridian.test/expired\nextendedKeyUsage=clientAuth\n", "0");
    for (const name of names) leaf(name, "meridian-test-ca", `subjectAltName=URI:spiffe://meridian.test/${name}\nextendedKeyUsage=clientAuth\n`);
    for (const name of peers) {
      leaf(name, "meridian-test-ca", `subjectAltName=IP:127.0.0.1,DNS:localhost,URI:spiffe://meridian.test/${name}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    }
    const read = (f: string): Buffer => readFileSync(join(dir, f));
    return {
      ca: read("meridian-test-ca.pem"),
      serverCert: read("meridian-test-server.pem"),
      serverKey: read("meridian-test-server.key"),
      serverCert2: read("meridian-test-server-2.pem"),
      serverKey2: read("meridian-test-server-2.key"),
      clientCert: read("meridian-test-client.pem"),
      clientKey: read("meridian-test-client.key"),
      otherCa: read("meridian-other-ca.pem"),
      otherServerCert: read("meridian-other-server.pem"),
      otherServerKey: read("meridian-other-server.key"),
      otherClientCert: read("meridian-other-client.pem"),
      otherClientKey: read("meridian-other-client.key"),
      expiredCert: read("meridian-expired-server.pem"),
      expiredKey: read("meridian-expired-server.key"),
      expiredClientCert: read("meridian-expired-client.pem"),
      expiredClientKey: read("meridian-expired-client.key"),
      clients: Object.fromEntries(names.map((name) => [name, { cert: read(`${name}.pem`), key: read(`${name}.key`) }])),
      peers: Object.fromEntries(peers.map((name) => [name, { cert: read(`${name}.pem`), key: read(`${name}.key`) }])),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
