/**
 * Registry URLs: how a process is told where its registry lives, in configuration, in
 * `MERIDIAN_REGISTRY` and on the `meridian registry` command line.
 *
 *   embedded:                         an embedded store in this process (the default store)
 *   embedded://host:port              an embedded registry served by serveRegistry, over TCP
 *   etcd://host:port[,host:port...]   an etcd cluster (the hosts of this region's member first)
 *   etcds://host:port[,host:port...]  the same over TLS (openRegistryStore's `tls`, `etcdAuth`)
 */
import type { ClientTls } from "../rpc/tls.js";
import type { ClientTransport } from "../rpc/transport.js";
import type { EtcdAuth } from "./etcd-client.js";
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
  const m = /^(embedded|etcds?):\/\/(.+)$/.exec(text);
  const hostPort = /^[^\s,/:]+:\d{1,5}$/;
  if (m) {
    const hosts = m[2]!.split(",").map((h) => h.trim());
    if (hosts.every((h) => hostPort.test(h))) {
      if (m[1] === "embedded" && hosts.length === 1) return { kind: "embedded", address: hosts[0]! };
      if (m[1] === "etcd") return { kind: "etcd", hosts: hosts.map((h) => `http://${h}`) };
      if (m[1] === "etcds") return { kind: "etcd", hosts: hosts.map((h) => `https://${h}`) };
    }
  }
  throw new StoreError("INVALID_ARGUMENT", `a registry URL is embedded:, embedded://host:port, etcd://host:port[,host:port...] or etcds://host:port[,...], not ${quote(url)}`);
}

/** Options of openRegistryStore. */
export interface OpenRegistryStoreOptions {
  /** For `embedded://host:port`: the client transport to reach it (the TCP transport). */
  readonly transport?: ClientTransport;
  /** Default timeout of the store's calls, ms. Default: the store's own. */
  readonly timeoutMs?: number;
  /** For `etcds://`: the CA of the members' certificates, and this client's certificate and key. */
  readonly tls?: ClientTls;
  /** For etcd with authentication enabled: the user and password. */
  readonly etcdAuth?: EtcdAuth;
}

/**
 * Opens the store a registry URL names: an in-process embedded store, a remote store over
 * `options.transport`, or an etcd store (the etcd client is loaded only then).
 */
export async function openRegistryStore(url: string | RegistryUrl, options: OpenRegistryStoreOptions = {}): Promise<Store> {
  const parsed = typeof url === "string" ? parseRegistryUrl(url) : url;
  const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  switch (parsed.kind) {
    case "in-process": {
      const { createEmbeddedStore } = await import("./embedded/store.js");
      return createEmbeddedStore();
    }
    case "etcd": {
      const { createEtcdStore } = await import("./etcd.js");
      return createEtcdStore({
        hosts: [...parsed.hosts],
        ...timeout,
        ...(options.tls === undefined ? {} : { tls: options.tls }),
        ...(options.etcdAuth === undefined ? {} : { auth: options.etcdAuth }),
      });
    }
    case "embedded": {
      if (options.transport === undefined) {
        throw new StoreError("INVALID_ARGUMENT", "embedded://host:port needs a client transport: openRegistryStore(url, { transport: new TcpClientTransport() })");
      }
      const { createRemoteStore } = await import("./remote.js");
      return createRemoteStore({ transport: options.transport, address: parsed.address, ...timeout });
    }
  }
}
