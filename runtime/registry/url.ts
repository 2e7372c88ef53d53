/**
 * Registry URLs: how a process is told where its registry lives, in configuration, in
 * `MERIDIAN_REGISTRY` and on the `meridian registry` command line.
 *
 *   embedded:                         an embedded store in this process (the default store)
 *   embedded://host:port              an embedded registry served by serveRegistry, over TCP
 *   etcd://host:port[,host:port...]   an etcd cluster (the hosts of this region's member first)
 */
import { X509Certificate } from "node:crypto";
import type { ClientTls } from "../rpc/tls.js";
import type { ClientTransport } from "../rpc/transport.js";
import { StoreError, quote, type Store } from "./store.js";

/** A parsed registry URL. */
export type RegistryUrl =
  | { readonly kind: "in-process" }
  | { readonly kind: "embedded"; readonly address: string }
  | { readonly kind: "etcd"; readonly hosts: readonly string[] };

/** Parses a registry URL (see the module comment); INVALID_ARGUMENT StoreError when it is not one. */
export function parseRegistryUrl(url: string): RegistryUrl {
  const text = url.trim();
  if (text === "embedded:" || text === "embedded://") return { kind: "in-process" };
  const m = /^(embedded|etcd):\/\/(.+)$/.exec(text);
  const hostPort = /^[^\s,/:]+:\d{1,5}$/;
  if (m) {
    const hosts = m[2]!.split(",").map((h) => h.trim());
    if (hosts.every((h) => hostPort.test(h))) {
      if (m[1] === "embedded" && hosts.length === 1) return { kind: "embedded", address: hosts[0]! };
      if (m[1] === "etcd") return { kind: "etcd", hosts: hosts.map((h) => `http://${h}`) };
    }
  }
  throw new StoreError("INVALID_ARGUMENT", `a registry URL is embedded:, embedded://host:port or etcd://host:port[,host:port...], not ${quote(url)}`);
}

/**
 * Refuses a client certificate that is not valid now, before any connection: a server that
 * requires client certificates answers an expired one by closing the connection (TLS 1.3), which
 * the client cannot tell from a certificate of the wrong CA. INVALID_ARGUMENT StoreError.
 */
function checkClientCertificate(tls: ClientTls | undefined): void {
  if (tls?.cert === undefined) return;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(tls.cert);
  } catch (e) {
    throw new StoreError("INVALID_ARGUMENT", `tls.cert is not a PEM certificate: ${e instanceof Error ? e.message : String(e)}`);
  }
  const now = Date.now();
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  const who = cert.subject.replace(/\n/g, ", ");
  if (now > to) throw new StoreError("INVALID_ARGUMENT", `the client certificate (${who}) expired at ${new Date(to).toISOString()}: issue a new one (docs/security.md)`);
  if (now < from) throw new StoreError("INVALID_ARGUMENT", `the client certificate (${who}) is not valid before ${new Date(from).toISOString()}: check the clocks, or issue a new one`);
}

/** Options of openRegistryStore. */
export interface OpenRegistryStoreOptions {
  /**
   * For `embedded://host:port`: the client transport to reach it (the TCP transport), or a
   * function that makes one with `tls` (`(o) => new TcpClientTransport(o)`; runtime/ imports no
   * transport, so it cannot make one itself).
   */
  readonly transport?: ClientTransport | ((options: { tls?: ClientTls }) => ClientTransport);
  /** Default timeout of the store's calls, ms. Default: the store's own. */
  readonly timeoutMs?: number;
  /**
   * TLS to the registry: whom to trust (`ca`) and, for mTLS, the client's certificate and key
   * (its identity at an authenticating registry server). For `embedded://` it goes to the
   * transport factory.
   */
  readonly tls?: ClientTls;
  /** A bearer token for an embedded registry server that authenticates by token (development). */
  readonly token?: string;
}

/**
 * Opens the store a registry URL names: an in-process embedded store, a remote store over
 * `options.transport`, or an etcd store (the etcd client is loaded only then).
 */
export async function openRegistryStore(url: string | RegistryUrl, options: OpenRegistryStoreOptions = {}): Promise<Store> {
  const parsed = typeof url === "string" ? parseRegistryUrl(url) : url;
  checkClientCertificate(options.tls);
  const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  switch (parsed.kind) {
    case "in-process": {
      const { createEmbeddedStore } = await import("./embedded/store.js");
      return createEmbeddedStore();
    }
    case "etcd": {
      const { createEtcdStore } = await import("./etcd.js");
      return createEtcdStore({ hosts: [...parsed.hosts], ...timeout });
    }
    case "embedded": {
      if (options.transport === undefined) {
        throw new StoreError("INVALID_ARGUMENT", "embedded://host:port needs a client transport: openRegistryStore(url, { transport: (o) => new TcpClientTransport(o) })");
      }
      if (typeof options.transport !== "function" && options.tls !== undefined) {
        throw new StoreError(
          "INVALID_ARGUMENT",
          "openRegistryStore: tls for embedded:// goes to the transport: pass transport: (o) => new TcpClientTransport(o), or a TcpClientTransport({ tls }) and no tls",
        );
      }
      const transport = typeof options.transport === "function" ? options.transport(options.tls === undefined ? {} : { tls: options.tls }) : options.transport;
      const { createRemoteStore } = await import("./remote.js");
      return createRemoteStore({ transport, address: parsed.address, ...timeout, ...(options.token === undefined ? {} : { token: options.token }) });
    }
  }
}
