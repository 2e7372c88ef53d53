import { isIP } from "node:net";
import type { ConnectionOptions as TlsConnectOptions, SecureContextOptions, TLSSocket, TlsOptions } from "node:tls";
import { ConfigError, peerIdentityOf, type ClientTls, type PeerIdentity, type ServerTls } from "../../runtime/api.js";

/** How long a TLS handshake may take before the server drops the connection, unless set. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * True for hosts that cannot leave the machine: 127.0.0.0/8, ::1 (and its IPv4-mapped form) and
 * "localhost". What the transport lets go without TLS unless told `plaintext: true`.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

/** The server's certificate, key and client-certificate policy, checked, as node:tls options. */
export function serverSecureOptions(tls: ServerTls, what = "TcpServerTransport"): SecureContextOptions & Pick<TlsOptions, "requestCert" | "rejectUnauthorized"> {
  if (tls.cert === undefined || tls.key === undefined) throw new ConfigError("INVALID_OPTION", `${what}: tls needs both cert and key`);
  if (tls.requireClientCert === true && tls.ca === undefined) {
    throw new ConfigError("INVALID_OPTION", `${what}: tls.requireClientCert needs tls.ca, the CA that signs client certificates`);
  }
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    // With a CA, ask every client for a certificate; an unverified one is refused only when
    // required (otherwise the call goes on without a peer identity).
    requestCert: tls.ca !== undefined,
    rejectUnauthorized: tls.requireClientCert === true,
  };
}

/** Checks a client's TLS options (a certificate needs its key). */
export function checkClientTls(tls: ClientTls, what = "TcpClientTransport"): void {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new ConfigError("INVALID_OPTION", `${what}: tls.cert and tls.key go together (a client certificate needs its key)`);
  }
}

/** node:tls connect options for a call to `host`: the server's certificate is always verified. */
export function clientConnectOptions(tls: ClientTls, host: string, port: number): TlsConnectOptions {
  const name = tls.serverName ?? (isIP(host) === 0 ? host : undefined);
  return {
    host,
    port,
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
    // SNI carries names only; an IP address is checked against the certificate's IP SANs.
    ...(name === undefined ? {} : { servername: name }),
    rejectUnauthorized: true,
  };
}

/** The verified identity of a TLS peer, or undefined (plaintext, no certificate, or one the CA did not sign). */
export function socketIdentity(socket: object): PeerIdentity | undefined {
  const s = socket as Partial<TLSSocket>;
  if (s.encrypted !== true || s.authorized !== true || s.getPeerCertificate === undefined) return undefined;
  const cert = s.getPeerCertificate();
  return cert === undefined || Object.keys(cert).length === 0 ? undefined : peerIdentityOf(cert);
}

/** What to check for the TLS failures a user meets most, keyed by the words OpenSSL uses. */
const TLS_HINTS: [RegExp, string][] = [
  [/certificate required/, "the server requires a client certificate: set the client's tls.cert and tls.key"],
  [/unknown ca|bad certificate|certificate unknown/, "the server does not trust the client's certificate: it must be signed by the server's tls.ca"],
  [/wrong version number|packet length too long|http request/, "one side speaks TLS and the other does not: set tls on both, or on neither"],
];

/**
 * A TLS error as a sentence: OpenSSL's reason without its file and line noise
 * ("tlsv13 alert certificate required"), and what to check when the reason is a common one.
 */
export function tlsErrorText(err: Error): string {
  const m = /SSL routines:[^:]*:([^:]+)/.exec(err.message);
  const reason = m === null ? err.message : m[1]!.trim();
  const hint = TLS_HINTS.find(([re]) => re.test(reason.toLowerCase()));
  return hint === undefined ? reason : `${reason} (${hint[1]})`;
}
