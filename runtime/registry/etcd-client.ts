/**
 * How Meridian connects to etcd as production runs it: TLS (a CA, and a client certificate for
 * `--client-cert-auth`), a user name and password, and errors that say which of them etcd
 * refused. Shared by the etcd store (etcd.ts) and the RBAC set-up (etcd-roles.ts).
 */
import { X509Certificate } from "node:crypto";
import {
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  EtcdUserNotFoundError,
  GRPCUnauthenticatedError,
  type IOptions,
} from "etcd3";
import type { ClientTls } from "../rpc/tls.js";
import { StoreError, quote } from "./store.js";

/** A user of etcd's authentication (`etcdctl user add`), as etcd3's `auth` option takes it. */
export interface EtcdAuth {
  readonly username: string;
  readonly password: string;
}

/** How to reach and authenticate to etcd: what the store and the role set-up share. */
export interface EtcdConnectOptions {
  /**
   * etcd client URLs: `http://host:port`, or `https://host:port` for a member serving TLS (every
   * host the same scheme). Default `http://127.0.0.1:2379`.
   */
  readonly hosts?: string | readonly string[];
  /**
   * TLS to etcd: `ca` is the CA that signed the members' `--cert-file` (default: Node's bundled
   * roots); `cert` and `key` are this client's certificate for members started with
   * `--client-cert-auth` (with authentication enabled, etcd takes the certificate's CN as the
   * user name when no password is given). Needs `https://` hosts.
   */
  readonly tls?: ClientTls;
  /** User name and password, for an etcd with authentication enabled. */
  readonly auth?: EtcdAuth;
}

/** The key after every key starting with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** The hosts as a list, checked against the TLS options; INVALID_ARGUMENT StoreError when they do not fit. */
export function etcdHosts(options: EtcdConnectOptions): string[] {
  const hosts = options.hosts === undefined ? ["http://127.0.0.1:2379"] : typeof options.hosts === "string" ? [options.hosts] : [...options.hosts];
  if (hosts.length === 0) throw new StoreError("INVALID_ARGUMENT", "etcd needs at least one host");
  for (const host of hosts) {
    if (!/^https?:\/\/[^\s/]+$/.test(host)) throw new StoreError("INVALID_ARGUMENT", `an etcd host is http://host:port or https://host:port, not ${quote(host)}`);
  }
  const secure = hosts.filter((h) => h.startsWith("https://")).length;
  if (secure !== 0 && secure !== hosts.length) throw new StoreError("INVALID_ARGUMENT", `etcd hosts must all be https:// or all http://, got ${hosts.join(", ")}`);
  if (options.tls !== undefined && secure === 0) {
    throw new StoreError("INVALID_ARGUMENT", `TLS options were given but the etcd hosts are http:// (${hosts.join(", ")}): use https:// hosts (etcds:// in a registry URL)`);
  }
  const tls = options.tls;
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined)) {
    throw new StoreError("INVALID_ARGUMENT", "an etcd client certificate needs both tls.cert and tls.key");
  }
  if (options.auth !== undefined && options.auth.username.length === 0) {
    throw new StoreError("INVALID_ARGUMENT", "etcd auth needs a user name (auth.username)");
  }
  return hosts;
}

const pemBuffer = (pem: string | Buffer): Buffer => (typeof pem === "string" ? Buffer.from(pem) : pem);

/**
 * etcd3's options for one host: its TLS credentials, its user, and a deadline on the password
 * exchange (etcd3 sends it without one, so a frozen member would hold every call forever).
 */
export function etcd3Options(host: string | readonly string[], options: EtcdConnectOptions, authTimeoutMs: number): IOptions {
  const tls = options.tls;
  return {
    hosts: typeof host === "string" ? host : [...host],
    ...(tls === undefined
      ? {}
      : {
          credentials: {
            // grpc-js takes null as "Node's bundled roots"; etcd3's type insists on a Buffer.
            rootCertificate: (tls.ca === undefined ? null : pemBuffer(tls.ca)) as Buffer,
            ...(tls.cert === undefined ? {} : { certChain: pemBuffer(tls.cert) }),
            ...(tls.key === undefined ? {} : { privateKey: pemBuffer(tls.key) }),
          },
        }),
    ...(options.auth === undefined
      ? {}
      : { auth: { username: options.auth.username, password: options.auth.password, callOptions: () => ({ deadline: Date.now() + authTimeoutMs }) } }),
    ...(tls?.serverName === undefined ? {} : { grpcOptions: { "grpc.ssl_target_name_override": tls.serverName, "grpc.default_authority": tls.serverName } }),
  };
}

/** The subject CN of a PEM certificate, or undefined. */
function commonName(pem: string | Buffer): string | undefined {
  try {
    return /^CN=(.*)$/m.exec(new X509Certificate(pem).subject)?.[1];
  } catch {
    return undefined;
  }
}

/** Who etcd sees in this client, for messages: the user, the certificate's CN, or nobody. */
export function etcdIdentity(options: EtcdConnectOptions): string {
  if (options.auth !== undefined) return `user ${quote(options.auth.username)}`;
  const cn = options.tls?.cert === undefined ? undefined : commonName(options.tls.cert);
  if (cn !== undefined) return `user ${quote(cn)} (the client certificate's CN)`;
  return "a client without credentials";
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * What went wrong in a TLS handshake with etcd, in words an operator can act on, and its code:
 * UNAUTHENTICATED when one side refused the other's certificate (retrying will not help);
 * undefined when the error is not a TLS failure.
 */
export function describeTlsFailure(e: unknown, url: string, options: EtcdConnectOptions): { message: string; code: "UNAUTHENTICATED" | "UNAVAILABLE" } | undefined {
  const message = messageOf(e);
  // The member sent an alert: it refused this client's certificate (or the lack of one).
  if (/alert (bad|unknown|unsupported) certificate|alert certificate (required|expired|revoked|unknown)|alert unknown ca|SSL alert number (4[2-9]|116)/i.test(message)) {
    const cert = options.tls?.cert;
    return {
      code: "UNAUTHENTICATED",
      message:
        cert === undefined
          ? `etcd at ${url} requires a client certificate (--client-cert-auth) and none was given: pass tls.cert and tls.key (--cert, --key)`
          : `etcd at ${url} refused this client's certificate: it is not signed by a CA etcd trusts (its --trusted-ca-file), or it has expired`,
    };
  }
  if (/unable to verify|self[- ]signed certificate|unable to get (local )?issuer|certificate has expired|certificate is not yet valid|Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME/i.test(message)) {
    const why = /Last error: (?:Error: )?([^.(]+)/.exec(message)?.[1]?.trim() ?? message;
    return {
      code: "UNAUTHENTICATED",
      message: `the certificate of etcd at ${url} was not accepted (${why}): tls.ca (--ca) must be the CA that signed etcd's --cert-file, and the certificate must name the host (or set tls.serverName)`,
    };
  }
  if (/wrong version number|packet length too long|http\/1\.|unexpected eof while reading/i.test(message) && url.startsWith("https://")) {
    return {
      code: "UNAVAILABLE",
      message: `etcd at ${url} does not speak TLS on that port: use an http:// host (etcd:// in a registry URL), or start etcd with --cert-file and --key-file`,
    };
  }
  return undefined;
}

/**
 * The typed StoreError for etcd refusing this client's credentials or permissions, or undefined
 * when `e` is something else. `what` says the operation (`read of "meridian/x"`).
 */
export function etcdRefusal(e: unknown, url: string, identity: string, what: string): StoreError | undefined {
  const message = messageOf(e);
  if (e instanceof EtcdAuthenticationFailedError || e instanceof EtcdUserNotFoundError || /authentication failed, invalid user ID or password/.test(message)) {
    return new StoreError("UNAUTHENTICATED", `etcd at ${url} refused ${identity}: wrong password, or no such user`, { cause: e });
  }
  if (/user name is empty/.test(message) || e instanceof GRPCUnauthenticatedError) {
    return new StoreError(
      "UNAUTHENTICATED",
      `etcd at ${url} has authentication enabled and ${identity} sent none: pass auth { username, password } (--user, MERIDIAN_ETCD_PASSWORD), or a client certificate whose CN is an etcd user`,
      { cause: e },
    );
  }
  if (/authentication is not enabled/.test(message)) {
    return new StoreError("UNAUTHENTICATED", `etcd at ${url} has authentication disabled but ${identity} was given: enable it (meridian registry etcd-roles --enable-auth) or drop the user`, {
      cause: e,
    });
  }
  if (e instanceof EtcdPermissionDeniedError || /etcdserver: permission denied/.test(message)) {
    return new StoreError(
      "PERMISSION_DENIED",
      `etcd at ${url} denied the ${what} to ${identity}: none of its roles grants that key range (see docs/registry.md, "etcd roles"; meridian registry etcd-roles)`,
      { cause: e },
    );
  }
  return undefined;
}
