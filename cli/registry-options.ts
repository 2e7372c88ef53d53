/**
 * What the `meridian registry` commands share: their dependencies (transports, store; replaced in
 * tests), the registry URL and credential options, and reading the files options name.
 */
import { readFileSync } from "node:fs";
import type { ClientTls, ServerTls, ClientTransport, ServerTransport } from "../runtime/api.js";
import type { EtcdAuth } from "../runtime/registry/etcd.js";
import { type Store, parseRegistryUrl, type RegistryUrl } from "../runtime/registry/index.js";
import { integer, UsageError, type ParsedArgs } from "./args.js";

/** What `meridian registry serve` asks of the server transport (the TCP transport's options). */
export interface ServeTransportOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: ServerTls;
  readonly plaintext?: boolean;
}

/** What the registry commands use from outside; each defaults to the real one (tests replace them). */
export interface RegistryCommandDeps {
  /** A client transport for `embedded://` registries, with the command's TLS (default: TCP). */
  clientTransport?: (options: { tls?: ClientTls }) => ClientTransport;
  /** The server transport of `serve` (default: TCP); may throw for options it refuses. */
  serverTransport?: (options: ServeTransportOptions) => ServerTransport;
  /** Opens the store for a parsed URL instead of the default (tests). */
  openStore?: (url: RegistryUrl, timeoutMs: number, credentials: Credentials) => Promise<Store>;
  /** Stops `serve` when it aborts; default SIGINT and SIGTERM. */
  shutdown?: AbortSignal;
}

/** The client transport factory of `deps`, or the TCP transport's (loaded only then). */
export async function clientTransportOf(deps: RegistryCommandDeps): Promise<NonNullable<RegistryCommandDeps["clientTransport"]>> {
  if (deps.clientTransport) return deps.clientTransport;
  const { TcpClientTransport } = await import("../transports/tcp/index.js");
  return (options) => new TcpClientTransport(options);
}

/** The server transport factory of `deps`, or the TCP transport's (loaded only then). */
export async function serverTransportOf(deps: RegistryCommandDeps): Promise<NonNullable<RegistryCommandDeps["serverTransport"]>> {
  if (deps.serverTransport) return deps.serverTransport;
  const { TcpServerTransport } = await import("../transports/tcp/index.js");
  return (options) => new TcpServerTransport(options);
}

/**
 * What the command presents to the registry: TLS (trust, client certificate), a token (a Meridian
 * registry server), a user and password (etcd).
 */
export interface Credentials {
  readonly tls?: ClientTls;
  readonly token?: string;
  readonly etcdAuth?: EtcdAuth;
}

/** Reads a file an option names (a PEM, a password); a UsageError naming the option when it cannot. */
export function optionFile(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`${option} ${path}: cannot read it (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** The timeout of each registry call: --timeout, default 5000 ms. */
export function timeoutOf(parsed: ParsedArgs): number {
  const v = parsed.value("--timeout");
  return v === undefined ? 5000 : integer("--timeout", v, 1);
}

/** The registry URL of --registry or $MERIDIAN_REGISTRY, parsed; a UsageError when absent or not one. */
export function registryUrlOf(parsed: ParsedArgs, env: Readonly<Record<string, string | undefined>>, absent: string): { url: RegistryUrl; text: string } {
  const text = parsed.value("--registry") ?? env.MERIDIAN_REGISTRY;
  if (text === undefined) throw new UsageError(absent);
  let url: RegistryUrl | undefined;
  try {
    url = parseRegistryUrl(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || url.kind === "in-process") {
    throw new UsageError(`--registry must be embedded://host:port or etcd://host:port[,host:port...], not "${text}"`);
  }
  return { url, text };
}

/**
 * The credentials of the credential options (commands.ts CREDENTIAL_OPTIONS), files read: the
 * token from --token or MERIDIAN_REGISTRY_TOKEN, the etcd password from --password-file or
 * MERIDIAN_ETCD_PASSWORD (`password` also when no --user: etcd-roles' root password).
 */
export function credentialsOf(parsed: ParsedArgs, env: Readonly<Record<string, string | undefined>>): Credentials & { password?: string } {
  const ca = parsed.value("--ca");
  const cert = parsed.value("--cert");
  const key = parsed.value("--key");
  const user = parsed.value("--user");
  const passwordFile = parsed.value("--password-file");
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("--cert and --key go together (a client certificate needs its key)");
  const token = parsed.value("--token") ?? (env.MERIDIAN_REGISTRY_TOKEN === "" ? undefined : env.MERIDIAN_REGISTRY_TOKEN);
  if (token !== undefined && (token === "" || /\s/.test(token))) throw new UsageError("--token must be a non-empty token without spaces");
  const tls: ClientTls | undefined =
    ca === undefined && cert === undefined
      ? undefined
      : {
          ...(ca === undefined ? {} : { ca: optionFile("--ca", ca) }),
          ...(cert === undefined ? {} : { cert: optionFile("--cert", cert), key: optionFile("--key", key!) }),
        };
  if (user === undefined && passwordFile !== undefined) throw new UsageError("--password-file goes with --user");
  const password = passwordFile !== undefined ? optionFile("--password-file", passwordFile).toString("utf8").replace(/\r?\n$/, "") : env.MERIDIAN_ETCD_PASSWORD;
  if (user !== undefined && password === undefined) throw new UsageError(`--user ${user} needs a password: set MERIDIAN_ETCD_PASSWORD or pass --password-file`);
  return {
    ...(tls === undefined ? {} : { tls }),
    ...(token === undefined ? {} : { token }),
    ...(user === undefined ? {} : { etcdAuth: { username: user, password: password! } }),
    ...(password === undefined ? {} : { password }),
  };
}
