import type { PeerCertificate } from "node:tls";

/** PEM text or bytes. */
export type Pem = string | Buffer;

/**
 * TLS of a client, the same on every transport that has it (TCP, gRPC): whom to trust and, for
 * mutual TLS, who the client is.
 */
export interface ClientTls {
  /** CA certificates that sign the server's certificate. Default: Node's bundled roots. */
  ca?: Pem;
  /** Client certificate chain and key, for servers that require client certificates. */
  cert?: Pem;
  key?: Pem;
  /**
   * The name the server's certificate must carry when it differs from the address's host (an IP
   * address, a load balancer); sent as SNI.
   */
  serverName?: string;
}

/** TLS of a server, the same on every transport that has it: its certificate and key, and optionally the CA of client certificates. */
export interface ServerTls {
  cert: Pem;
  key: Pem;
  /** CA certificates that sign client certificates (mutual TLS). */
  ca?: Pem;
  /** Refuse clients without a certificate signed by `ca`. Default false. */
  requireClientCert?: boolean;
}

/**
 * Who the other end of a call is, as its verified TLS certificate says: what authorization
 * middleware decides on (`ctx.peerIdentity` on the server). Present only for a certificate that
 * the server's `ca` verified.
 */
export interface PeerIdentity {
  /** The certificate's subject common name (CN), if it has one. */
  readonly commonName: string | undefined;
  /** The whole subject, as `key=value` pairs joined by ", " (for logs). */
  readonly subject: string;
  /** Subject alternative names as the certificate lists them: "DNS:a.example", "URI:spiffe://...", "IP Address:10.0.0.1". */
  readonly subjectAltNames: readonly string[];
  /** SHA-256 fingerprint of the certificate (colon-separated hex), to pin or to log. */
  readonly fingerprint256: string;
}

/** The PeerIdentity of a verified peer certificate (`socket.getPeerCertificate()`). */
export function peerIdentityOf(cert: PeerCertificate): PeerIdentity {
  const subject = cert.subject ?? {};
  const cn = subject.CN;
  return {
    commonName: Array.isArray(cn) ? cn[0] : cn,
    subject: Object.entries(subject)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : String(v)}`)
      .join(", "),
    subjectAltNames: cert.subjectaltname === undefined || cert.subjectaltname === "" ? [] : cert.subjectaltname.split(", "),
    fingerprint256: cert.fingerprint256,
  };
}
