/**
 * `meridian registry ...`: run a registry server, and operator commands on a running registry.
 * The `meridian` entry point (codegen/cli.ts) dispatches here and passes the TCP transport's
 * client and server, since runtime/ imports no transport.
 *
 *   meridian registry serve --data <dir> --listen host:port [TLS, fsync flags]   runs a server
 *   meridian registry status --registry <url>                                    its health
 *   meridian registry primary <service> --registry <url>                  prints primary and epoch
 *   meridian registry primary <service> --move-to <region> --registry <url>  moves it (CAS)
 *   meridian registry etcd-roles --registry etcds://... --principal <spec>...  etcd RBAC set-up
 */
import { readFileSync } from "node:fs";
import { createClient } from "../rpc/client.js";
import type { ClientTls, ServerTls } from "../rpc/tls.js";
import type { ClientTransport, ServerTransport } from "../rpc/transport.js";
import { AUTHORIZATION_HEADER, readRegistryAuth, type RegistryAuth } from "./auth.js";
import type { EtcdAuth } from "./etcd-client.js";
import type { EtcdPrincipal, EtcdRegistryRole } from "./etcd-roles.js";
import { createRegistry, PrimaryConflictError, type PrimaryInfo } from "./client.js";
import { Registry } from "./embedded/gen/registry.js";
import type { FsyncPolicy } from "./embedded/log.js";
import { serveRegistry, type RegistryServer, type RegistryServerOptions } from "./embedded/server.js";
import { describeStatus } from "./embedded/status.js";
import { StoreError, type Store } from "./store.js";
import { openRegistryStore, parseRegistryUrl, type RegistryUrl } from "./url.js";

export { parseRegistryUrl, type RegistryUrl } from "./url.js";

const SERVE_USAGE = `usage: meridian registry serve --data <dir> [--listen <host:port>] [--cert <file> --key <file> [--ca <file>]]
                              [--plaintext] (--auth <file> | --insecure) [--fsync always|interval] [--fsync-interval <ms>]
                              [--compact-after <MiB>] [--compact-interval <s>]

Runs a durable embedded registry server (the Registry service over TCP) until SIGINT or SIGTERM.
Clients use --registry embedded://<host:port>.

  --data <dir>           the data directory: snapshot.json, the log segments wal-*.log and LOCK;
                         created if missing, recovered on start
  --listen <host:port>   where to listen (default 127.0.0.1:7000; port 0 picks a free one)
  --cert, --key <file>   TLS: the server's certificate chain and key (PEM)
  --ca <file>            mutual TLS: clients must present a certificate signed by this CA
  --plaintext            listen on a non-loopback address without TLS (refused otherwise)
  --auth <file>          identities, roles and quotas (JSON; docs/security.md): every call is
                         authenticated (client certificate with --ca, or a bearer token)
  --insecure             no authentication: anyone who reaches the port may read and write
  --fsync <policy>       always (default): every acknowledged write is fsynced first (group
                         commit), nothing acknowledged is lost even on power loss; interval:
                         written before the acknowledgement, fsynced every --fsync-interval ms
                         (default 100): a kill -9 loses nothing, a power loss up to that interval
  --compact-after <MiB>  write a snapshot and drop the log once it holds this much (default 64)
  --compact-interval <s> also compact this often when anything was logged (default 600; 0 never)`;

const STATUS_USAGE = `usage: meridian registry status [--registry <url>] [--timeout <ms>] [--json]
                               [--ca <pem> [--cert <pem> --key <pem>]] [--token <token>]

Prints a registry server's health: revision, keys, leases, log size, last compaction, uptime.
Exit code 0 when it answers "ok", 1 when it cannot be reached or reports a failure.

  --registry <url>    embedded://host:port (default $MERIDIAN_REGISTRY)
  --ca, --cert, --key, --token   as for primary: a registry with authentication answers any
                      principal it knows`;

const ETCD_FLAGS = `
etcd connection (etcd:// and etcds://):
  --ca <file>         CA of the etcd members' certificates (etcds://; default Node's roots)
  --cert <file>       client certificate, for members started with --client-cert-auth
  --key <file>        its private key
  --user <name>       etcd user; its password from $MERIDIAN_ETCD_PASSWORD or --password-file
                      (never on the command line)
  --password-file <file>  file holding the etcd user's password (one line)`;

const PRIMARY_USAGE = `usage: meridian registry primary <service> [--move-to <region>] [--expect-epoch <n>]
                                   [--lease-ms <ms>] --registry <url> [--timeout <ms>] [--json]
                                   [--ca <pem> [--cert <pem> --key <pem>]] [--token <token>]

Prints the primary region of <service> and its epoch; with --move-to, moves the primary there by
compare-and-set on the record just read (bumping the epoch), and fails if anyone changed it
meanwhile. The new primary accepts writes once the old primary's lease has passed.

  --registry <url>    embedded://host:port (a registry served by serveRegistry, over TCP) or
                      etcd://host:port[,host:port...]; default $MERIDIAN_REGISTRY
  --move-to <region>  the region to make primary
  --expect-epoch <n>  move only if the epoch is still <n> (default: the epoch just read);
                      0 when the service has no primary yet
  --lease-ms <ms>     the new record's lease (default: the current record's)
  --timeout <ms>      timeout of each registry call (default 5000)
  --ca <file>         PEM of the CA that signs the registry server's certificate (TLS)
  --cert <file>       this operator's client certificate (PEM; mTLS identity), with --key
  --key <file>        its private key (PEM)
  --token <token>     a bearer token (development registries); default $MERIDIAN_REGISTRY_TOKEN
                      An authenticating registry lets only the operator role move a primary.
  --json              print the record(s) as JSON
  -h, --help          this text`;

const ETCD_ROLES_USAGE = `usage: meridian registry etcd-roles --registry etcd[s]://host:port[,...] --principal <spec>...
                                   [--enable-auth] [--prefix <p>] [--passwords <file>] [--timeout <ms>] [--json]

Creates (or brings up to date) etcd roles and users for the registry's roles, on key ranges
(docs/registry.md, "etcd roles"). Run it as etcd's root user; running it again is harmless.

  --principal <spec>  <user>=<role>[+<role>...][:<service>,<service>...], roles instance,
                      reader, operator; services for instance (e.g. eu-1=instance+reader:demo.Accounts)
  --passwords <file>  lines "<user> <password>" for users that log in with a password; other
                      new users get none (they authenticate by a client certificate, CN=<user>)
  --enable-auth       on an etcd without authentication yet: set up, then create the root user
                      (password: $MERIDIAN_ETCD_PASSWORD, else certificate-only, CN=root) and
                      turn authentication on
  --prefix <p>        the registry's key prefix (default meridian/)
`;

const USAGE = `${SERVE_USAGE}\n\n${STATUS_USAGE}\n\n${PRIMARY_USAGE}\n\n${ETCD_ROLES_USAGE}\n${ETCD_FLAGS}`;

/** Where the command writes (the CLI's io). */
export interface RegistryCommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** What `meridian registry serve` asks of the server transport (the TCP transport's options). */
export interface ServeTransportOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: ServerTls;
  readonly plaintext?: boolean;
}

/** What the command needs from its caller. */
export interface RegistryCommandDeps {
  /** A client transport for `embedded://` registries (the TCP transport), with the command's TLS. */
  clientTransport?: (options: { tls?: ClientTls }) => ClientTransport;
  /** A server transport for `serve` (the TCP transport); may throw for options it refuses. */
  serverTransport?: (options: ServeTransportOptions) => ServerTransport;
  /** Opens the store for a parsed URL instead of the default (tests). */
  openStore?: (url: RegistryUrl, timeoutMs: number, credentials: Credentials) => Promise<Store>;
  /** Stops `serve` when it aborts; default SIGINT and SIGTERM. */
  shutdown?: AbortSignal;
}

class UsageError extends Error {}

/** Reads the value of option `a` at `args[i]` (`--name value` or `--name=value`); returns it and the index of the last word read. */
function optionValue(args: readonly string[], i: number, name: string): [string, number] {
  const a = args[i]!;
  const eq = a.indexOf("=");
  if (a.startsWith("--") && eq > 0) return [a.slice(eq + 1), i];
  const v = args[i + 1];
  if (v === undefined) throw new UsageError(`${name} needs a value`);
  return [v, i + 1];
}

/** An integer option's value, at least `min`. */
function count(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, not "${v}"`);
  return n;
}

/** parseRegistryUrl, with the command's words for a bad one. */
function registryUrl(url: string): RegistryUrl {
  const parsed = (() => {
    try {
      return parseRegistryUrl(url);
    } catch {
      return undefined;
    }
  })();
  if (parsed === undefined || parsed.kind === "in-process") {
    throw new UsageError(`--registry must be embedded://host:port or etcd://host:port[,host:port...], not "${url}"`);
  }
  return parsed;
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

/** The credential flags (--ca --cert --key --token --user --password-file), as they are parsed. */
class CredentialFlags {
  private ca: string | undefined;
  private cert: string | undefined;
  private key: string | undefined;
  private token: string | undefined;
  private user: string | undefined;
  private passwordFile: string | undefined;

  /** Takes the argument when it is one of the flags (reading its value with `value`); false otherwise. */
  take(is: (name: string) => boolean, value: (name: string) => string): boolean {
    if (is("--ca")) this.ca = value("--ca");
    else if (is("--cert")) this.cert = value("--cert");
    else if (is("--key")) this.key = value("--key");
    else if (is("--token")) this.token = value("--token");
    else if (is("--user")) this.user = value("--user");
    else if (is("--password-file")) this.passwordFile = value("--password-file");
    else return false;
    return true;
  }

  /**
   * The credentials, files read: the token from --token or MERIDIAN_REGISTRY_TOKEN, the etcd
   * password from --password-file or MERIDIAN_ETCD_PASSWORD (`password` also when no --user).
   */
  resolve(env: NodeJS.ProcessEnv): Credentials & { password?: string } {
    if ((this.cert === undefined) !== (this.key === undefined)) throw new UsageError("--cert and --key go together (a client certificate needs its key)");
    const token = this.token ?? (env.MERIDIAN_REGISTRY_TOKEN === "" ? undefined : env.MERIDIAN_REGISTRY_TOKEN);
    if (token !== undefined && (token === "" || /\s/.test(token))) throw new UsageError("--token must be a non-empty token without spaces");
    const tls: ClientTls | undefined =
      this.ca === undefined && this.cert === undefined
        ? undefined
        : {
            ...(this.ca === undefined ? {} : { ca: pemFile("--ca", this.ca) }),
            ...(this.cert === undefined ? {} : { cert: pemFile("--cert", this.cert), key: pemFile("--key", this.key!) }),
          };
    if (this.user === undefined && this.passwordFile !== undefined) throw new UsageError("--password-file goes with --user");
    const password = this.passwordFile !== undefined ? pemFile("--password-file", this.passwordFile).toString("utf8").replace(/\r?\n$/, "") : env.MERIDIAN_ETCD_PASSWORD;
    if (this.user !== undefined && password === undefined) throw new UsageError(`--user ${this.user} needs a password: set MERIDIAN_ETCD_PASSWORD or pass --password-file`);
    return {
      ...(tls === undefined ? {} : { tls }),
      ...(token === undefined ? {} : { token }),
      ...(this.user === undefined ? {} : { etcdAuth: { username: this.user, password: password! } }),
      ...(password === undefined ? {} : { password }),
    };
  }
}

interface PrimaryArgs {
  service: string;
  moveTo: string | undefined;
  expectEpoch: number | undefined;
  leaseMs: number | undefined;
  registry: RegistryUrl;
  registryText: string;
  timeoutMs: number;
  json: boolean;
  credentials: Credentials;
}

/** Reads a file named by a flag (a PEM, a password); a UsageError saying which flag when it cannot. */
function pemFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`${flag} ${path}: cannot read it (${e instanceof Error ? e.message : String(e)})`);
  }
}

function parsePrimaryArgs(args: readonly string[], env: NodeJS.ProcessEnv): PrimaryArgs {
  let service: string | undefined;
  let moveTo: string | undefined;
  let expectEpoch: number | undefined;
  let leaseMs: number | undefined;
  let registry = env.MERIDIAN_REGISTRY;
  let timeoutMs = 5000;
  let json = false;
  const flags = new CredentialFlags();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (name: string): string => {
      const [v, last] = optionValue(args, i, name);
      i = last;
      return v;
    };
    const is = (name: string) => a === name || a.startsWith(`${name}=`);
    if (is("--move-to")) moveTo = value("--move-to");
    else if (is("--expect-epoch")) expectEpoch = count("--expect-epoch", value("--expect-epoch"), 0);
    else if (is("--lease-ms")) leaseMs = count("--lease-ms", value("--lease-ms"), 1);
    else if (is("--registry")) registry = value("--registry");
    else if (is("--timeout")) timeoutMs = count("--timeout", value("--timeout"), 1);
    else if (a === "--json") json = true;
    else if (flags.take(is, value)) continue;
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
    else if (service === undefined) service = a;
    else throw new UsageError(`unexpected argument "${a}" (one service at a time)`);
  }
  if (service === undefined) throw new UsageError("no service given (the fully qualified name, like demo.Accounts)");
  if (registry === undefined) throw new UsageError("--registry <url> is required (or set MERIDIAN_REGISTRY)");
  if (moveTo !== undefined && !/^[\w.-]+$/.test(moveTo)) throw new UsageError(`--move-to must be a region name, not "${moveTo}"`);
  if (moveTo === undefined && (expectEpoch !== undefined || leaseMs !== undefined)) {
    throw new UsageError("--expect-epoch and --lease-ms go with --move-to");
  }
  const { password: _password, ...credentials } = flags.resolve(env);
  return { service, moveTo, expectEpoch, leaseMs, registry: registryUrl(registry), registryText: registry, timeoutMs, json, credentials };
}

async function openStore(url: RegistryUrl, timeoutMs: number, credentials: Credentials, deps: RegistryCommandDeps): Promise<Store> {
  if (deps.openStore) return deps.openStore(url, timeoutMs, credentials);
  if (url.kind === "embedded" && !deps.clientTransport) throw new UsageError("embedded:// needs a client transport (run through the meridian command)");
  return openRegistryStore(url, { timeoutMs, ...credentials, ...(deps.clientTransport ? { transport: deps.clientTransport } : {}) });
}

/** What to pass when the registry refused the command's credentials, or undefined for other errors. */
function credentialHint(e: unknown, args: PrimaryArgs): string | undefined {
  if (!(e instanceof StoreError)) return undefined;
  if (e.code === "UNAUTHENTICATED") {
    return args.credentials.tls?.cert === undefined && args.credentials.token === undefined
      ? "this registry requires credentials: pass --ca, --cert and --key (an operator's client certificate) or --token (or set MERIDIAN_REGISTRY_TOKEN)"
      : "check the certificate (--cert/--key, signed by the registry's CA) or the token you passed";
  }
  if (e.code === "PERMISSION_DENIED") return "moving a primary needs a principal with the operator role: pass an operator's --cert/--key or --token";
  return undefined;
}

function describe(service: string, p: PrimaryInfo): string {
  return `${service}: primary ${p.region}, epoch ${p.epoch} (lease ${p.leaseMs} ms, since ${new Date(p.since).toISOString()}, revision ${p.revision})`;
}

/** `meridian registry primary ...`; resolves with the exit code. */
async function primaryCommand(args: PrimaryArgs, io: RegistryCommandIo, deps: RegistryCommandDeps): Promise<number> {
  const store = await openStore(args.registry, args.timeoutMs, args.credentials, deps);
  // A health interval longer than the command: the client makes no background reads.
  const registry = createRegistry({ store, region: "operator", timeoutMs: args.timeoutMs, healthIntervalMs: 3_600_000 });
  try {
    let current: PrimaryInfo | undefined;
    try {
      current = await registry.primary(args.service);
    } catch (e) {
      const hint = credentialHint(e, args);
      io.stderr(`meridian registry: cannot read the primary of ${args.service} from ${args.registryText}: ${e instanceof Error ? e.message : String(e)}${hint === undefined ? "" : `\n  ${hint}`}\n`);
      return 1;
    }
    if (args.moveTo === undefined) {
      if (args.json) io.stdout(`${JSON.stringify({ service: args.service, primary: current ?? null })}\n`);
      else io.stdout(current ? `${describe(args.service, current)}\n` : `${args.service}: no primary region (set one with --move-to <region>)\n`);
      return current ? 0 : 1;
    }
    if (!args.json) io.stdout(current ? `${describe(args.service, current)}\n` : `${args.service}: no primary region yet\n`);
    const expectedEpoch = args.expectEpoch ?? current?.epoch ?? 0;
    let moved: PrimaryInfo;
    try {
      moved = await registry.movePrimary(args.service, args.moveTo, { expectedEpoch, ...(args.leaseMs === undefined ? {} : { leaseMs: args.leaseMs }) });
    } catch (e) {
      if (e instanceof PrimaryConflictError) {
        const now = e.current ? `${e.current.region}, epoch ${e.current.epoch}` : "no primary";
        io.stderr(
          `meridian registry: not moved: the primary of ${args.service} is no longer at epoch ${expectedEpoch} (now ${now}); someone changed it meanwhile. Read it again and retry.\n`,
        );
        return 1;
      }
      const unknown = e instanceof StoreError && e.code === "OUTCOME_UNKNOWN";
      const hint = credentialHint(e, args);
      io.stderr(
        hint === undefined
          ? `meridian registry: ${unknown ? "the move's outcome is unknown" : "the move failed"}: ${e instanceof Error ? e.message : String(e)}; read the primary again before retrying\n`
          : `meridian registry: not moved: ${e instanceof Error ? e.message : String(e)}\n  ${hint}\n`,
      );
      return 1;
    }
    if (args.json) io.stdout(`${JSON.stringify({ service: args.service, previous: current ?? null, primary: moved })}\n`);
    else if (current && moved.epoch === current.epoch) io.stdout(`${args.service}: ${moved.region} is already the primary (epoch ${moved.epoch}); nothing changed\n`);
    else {
      const wait =
        moved.previousLeaseMs === undefined
          ? `from ${new Date(moved.since + moved.leaseMs).toISOString()}`
          : `once ${current?.region}'s lease (${moved.previousLeaseMs} ms) has passed since it learned of the move`;
      io.stdout(`moved ${args.service}: ${current ? `${current.region} (epoch ${current.epoch})` : "none"} -> ${moved.region} (epoch ${moved.epoch}, revision ${moved.revision}); ${moved.region} accepts writes ${wait}\n`);
    }
    return 0;
  } finally {
    await registry.close();
  }
}

interface EtcdRolesArgs {
  hosts: string[];
  principals: EtcdPrincipal[];
  enableAuth: boolean;
  prefix: string | undefined;
  json: boolean;
  timeoutMs: number;
  etcd: Credentials & { password?: string };
}

const ROLES: readonly EtcdRegistryRole[] = ["instance", "reader", "operator"];

/** `<user>=<role>[+<role>...][:<service>,...]` as a principal. */
function parsePrincipal(spec: string): EtcdPrincipal {
  const m = /^([^=\s]+)=([a-z+]+)(?::(.+))?$/.exec(spec);
  if (!m) throw new UsageError(`--principal is <user>=<role>[+<role>...][:<service>,...], not "${spec}"`);
  const roles = m[2]!.split("+");
  for (const role of roles) if (!ROLES.includes(role as EtcdRegistryRole)) throw new UsageError(`unknown role "${role}" in --principal ${spec} (instance, reader, operator)`);
  const services = m[3]?.split(",").map((x) => x.trim());
  return { name: m[1]!, roles: roles as EtcdRegistryRole[], ...(services === undefined ? {} : { services }) };
}

function parseEtcdRolesArgs(args: readonly string[], env: NodeJS.ProcessEnv): EtcdRolesArgs {
  let registry = env.MERIDIAN_REGISTRY;
  const principals: EtcdPrincipal[] = [];
  let passwordsFile: string | undefined;
  let enableAuth = false;
  let prefix: string | undefined;
  let json = false;
  let timeoutMs = 5000;
  const etcd = new CredentialFlags();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (name: string): string => {
      const [v, last] = optionValue(args, i, name);
      i = last;
      return v;
    };
    const is = (name: string) => a === name || a.startsWith(`${name}=`);
    if (is("--registry")) registry = value("--registry");
    else if (is("--principal")) principals.push(parsePrincipal(value("--principal")));
    else if (is("--passwords")) passwordsFile = value("--passwords");
    else if (is("--prefix")) prefix = value("--prefix");
    else if (is("--timeout")) timeoutMs = count("--timeout", value("--timeout"), 1);
    else if (a === "--enable-auth") enableAuth = true;
    else if (a === "--json") json = true;
    else if (etcd.take(is, value)) continue;
    else throw new UsageError(`unexpected argument "${a}"`);
  }
  if (registry === undefined) throw new UsageError("--registry etcd[s]://host:port[,...] is required (or set MERIDIAN_REGISTRY)");
  const url = registryUrl(registry);
  if (url.kind !== "etcd") throw new UsageError(`etcd-roles sets up etcd: --registry must be etcd:// or etcds://, not "${registry}"`);
  if (principals.length === 0 && !enableAuth) throw new UsageError("no --principal given");
  if (passwordsFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(passwordsFile, "utf8");
    } catch (e) {
      throw new UsageError(`cannot read the --passwords file "${passwordsFile}": ${e instanceof Error ? e.message : String(e)}`);
    }
    const passwords = new Map<string, string>();
    for (const line of text.split(/\r?\n/)) {
      const m = /^\s*(\S+)\s+(.+?)\s*$/.exec(line);
      if (m && !line.trimStart().startsWith("#")) passwords.set(m[1]!, m[2]!);
    }
    for (let i = 0; i < principals.length; i++) {
      const password = passwords.get(principals[i]!.name);
      if (password !== undefined) principals[i] = { ...principals[i]!, password };
    }
  }
  return { hosts: [...url.hosts], principals, enableAuth, prefix, json, timeoutMs, etcd: etcd.resolve(env) };
}

/** `meridian registry etcd-roles ...`; resolves with the exit code. */
async function etcdRolesCommand(args: EtcdRolesArgs, io: RegistryCommandIo): Promise<number> {
  const { setUpEtcdRoles, enableEtcdAuth } = await import("./etcd-roles.js");
  const { tls, etcdAuth: auth, password } = args.etcd;
  // Before authentication is on, etcd takes no user: connect with TLS alone.
  const connect = { hosts: args.hosts, timeoutMs: args.timeoutMs, ...(tls === undefined ? {} : { tls }), ...(auth === undefined || args.enableAuth ? {} : { auth }) };
  try {
    const report = await setUpEtcdRoles({ ...connect, principals: args.principals, ...(args.prefix === undefined ? {} : { prefix: args.prefix }) });
    if (args.enableAuth) await enableEtcdAuth({ ...connect, ...(password === undefined ? {} : { rootPassword: password }) });
    if (args.json) io.stdout(`${JSON.stringify({ ...report, authEnabled: args.enableAuth })}\n`);
    else {
      const list = (label: string, items: readonly string[]) => (items.length === 0 ? "" : `${label}: ${items.join(", ")}\n`);
      const text =
        list("roles created", report.rolesCreated) +
        list("roles updated", report.rolesUpdated) +
        list("users created", report.usersCreated) +
        list("granted", report.granted) +
        list("revoked", report.revoked) +
        (args.enableAuth ? "authentication enabled\n" : "");
      io.stdout(text === "" ? "etcd already matches: nothing changed\n" : text);
    }
    return 0;
  } catch (e) {
    io.stderr(`meridian registry etcd-roles: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

interface ServeArgs {
  dataDir: string;
  host: string;
  port: number;
  tls: ServerTls | undefined;
  plaintext: boolean;
  /** The registry's identities and roles; undefined: --insecure. */
  auth: RegistryAuth | undefined;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number | undefined;
  compactAfterBytes: number | undefined;
  compactIntervalMs: number | undefined;
}

function parseServeArgs(args: readonly string[]): ServeArgs {
  let dataDir: string | undefined;
  let listen = "127.0.0.1:7000";
  let cert: string | undefined;
  let key: string | undefined;
  let ca: string | undefined;
  let plaintext = false;
  let insecure = false;
  let authFile: string | undefined;
  let fsync: FsyncPolicy = "always";
  let fsyncIntervalMs: number | undefined;
  let compactAfterBytes: number | undefined;
  let compactIntervalMs: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (name: string): string => {
      const [v, last] = optionValue(args, i, name);
      i = last;
      return v;
    };
    const is = (name: string) => a === name || a.startsWith(`${name}=`);
    if (is("--data")) dataDir = value("--data");
    else if (is("--listen")) listen = value("--listen");
    else if (is("--cert")) cert = value("--cert");
    else if (is("--key")) key = value("--key");
    else if (is("--ca")) ca = value("--ca");
    else if (a === "--plaintext") plaintext = true;
    else if (a === "--insecure") insecure = true;
    else if (is("--auth")) authFile = value("--auth");
    else if (is("--fsync-interval")) fsyncIntervalMs = count("--fsync-interval", value("--fsync-interval"), 1);
    else if (is("--fsync")) {
      const v = value("--fsync");
      if (v !== "always" && v !== "interval") throw new UsageError(`--fsync must be always or interval, not "${v}"`);
      fsync = v;
    } else if (is("--compact-after")) compactAfterBytes = count("--compact-after", value("--compact-after"), 1) * 1024 * 1024;
    else if (is("--compact-interval")) compactIntervalMs = count("--compact-interval", value("--compact-interval"), 0) * 1000;
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
    else throw new UsageError(`unexpected argument "${a}"`);
  }
  if (dataDir === undefined) throw new UsageError("--data <dir> is required: the folder that keeps the registry across restarts");
  const m = /^(.+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen must be host:port, not "${listen}"`);
  const host = m[1]!.replace(/^\[(.*)\]$/, "$1");
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("--cert and --key go together");
  if (ca !== undefined && cert === undefined) throw new UsageError("--ca (mutual TLS) needs --cert and --key");
  if (cert !== undefined && plaintext) throw new UsageError("--plaintext and --cert contradict each other");
  if (fsyncIntervalMs !== undefined && fsync !== "interval") throw new UsageError("--fsync-interval goes with --fsync interval");
  // Authentication is a choice to make: the registry's identities and roles (--auth, see
  // docs/security.md), or --insecure.
  if (insecure === (authFile !== undefined)) {
    throw new UsageError(
      insecure
        ? "--auth and --insecure contradict each other"
        : "choose how clients authenticate: --auth <file> (identities and roles, docs/security.md) or --insecure (anyone who reaches the port may read and write)",
    );
  }
  let auth: RegistryAuth | undefined;
  if (authFile !== undefined) {
    try {
      auth = readRegistryAuth(authFile);
    } catch (e) {
      throw new UsageError(`--auth ${authFile}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const tls =
    cert === undefined
      ? undefined
      : {
          cert: pemFile("--cert", cert),
          key: pemFile("--key", key!),
          ...(ca === undefined ? {} : { ca: pemFile("--ca", ca), requireClientCert: true }),
        };
  return { dataDir, host, port, tls, plaintext, auth, fsync, fsyncIntervalMs, compactAfterBytes, compactIntervalMs };
}

/** Resolves when `signal` aborts, or on SIGINT / SIGTERM when there is no signal. */
function shutdownRequested(signal: AbortSignal | undefined): { stopped: Promise<string>; dispose: () => void } {
  if (signal) {
    return {
      stopped: new Promise((resolve) => (signal.aborted ? resolve("shutdown") : signal.addEventListener("abort", () => resolve("shutdown"), { once: true }))),
      dispose: () => {},
    };
  }
  let onSignal: (name: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<string>((resolve) => (onSignal = (name) => resolve(name)));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    stopped,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/**
 * `meridian registry serve ...`: serves until shut down (exit 0), or until its log on disk fails
 * (exit 1: a supervisor restarts it and it recovers from the data directory).
 */
async function serveCommand(args: ServeArgs, io: RegistryCommandIo, deps: RegistryCommandDeps): Promise<number> {
  if (!deps.serverTransport) throw new UsageError("serve needs a server transport (run it through the meridian command)");
  let transport: ServerTransport;
  try {
    transport = deps.serverTransport({ host: args.host, port: args.port, ...(args.tls ? { tls: args.tls } : {}), ...(args.plaintext ? { plaintext: true } : {}) });
  } catch (e) {
    throw new UsageError(`${(e as Error).message} (flags: --cert <file> --key <file>, or --plaintext)`);
  }
  let failed: (error: Error) => void = () => {};
  const storageFailed = new Promise<Error>((resolve) => (failed = resolve));
  const options: RegistryServerOptions = {
    transport,
    ...(args.auth === undefined ? { insecure: true } : { auth: args.auth }),
    dataDir: args.dataDir,
    fsync: args.fsync,
    ...(args.fsyncIntervalMs === undefined ? {} : { fsyncIntervalMs: args.fsyncIntervalMs }),
    ...(args.compactAfterBytes === undefined ? {} : { compactAfterBytes: args.compactAfterBytes }),
    ...(args.compactIntervalMs === undefined ? {} : { compactIntervalMs: args.compactIntervalMs }),
    onStorageFailure: failed,
  };
  const shutdown = shutdownRequested(deps.shutdown);
  let server: RegistryServer;
  try {
    server = await serveRegistry(options);
  } catch (e) {
    shutdown.dispose();
    io.stderr(`meridian registry serve: cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const recovery = server.node.status().storage?.recovery;
  const security = args.tls ? (args.tls.ca ? "mutual TLS" : "TLS") : "plaintext";
  io.stdout(
    `meridian registry: serving ${args.dataDir} on ${server.address} (${security}, ${args.auth === undefined ? "no authentication" : "authentication and roles"}, fsync ${args.fsync}); ` +
      `revision ${server.node.machine.revision}, ${recovery?.replayed ?? 0} log record(s) replayed` +
      `${recovery?.truncatedBytes ? `, a torn last record of ${recovery.truncatedBytes} bytes cut off` : ""}\n`,
  );
  try {
    const outcome = await Promise.race([shutdown.stopped.then((name) => ({ name })), storageFailed.then((error) => ({ error }))]);
    if ("error" in outcome) {
      io.stderr(`meridian registry serve: ${outcome.error.message}\n`);
      await server.close().catch(() => undefined);
      return 1;
    }
    io.stdout(`meridian registry: ${outcome.name}: closing\n`);
    await server.close();
    return 0;
  } finally {
    shutdown.dispose();
  }
}

interface StatusArgs {
  address: string;
  timeoutMs: number;
  json: boolean;
  credentials: Credentials;
}

function parseStatusArgs(args: readonly string[], env: NodeJS.ProcessEnv): StatusArgs {
  let registry = env.MERIDIAN_REGISTRY;
  let timeoutMs = 5000;
  let json = false;
  const flags = new CredentialFlags();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (name: string): string => {
      const [v, last] = optionValue(args, i, name);
      i = last;
      return v;
    };
    const is = (name: string) => a === name || a.startsWith(`${name}=`);
    if (is("--registry")) registry = value("--registry");
    else if (is("--timeout")) timeoutMs = count("--timeout", value("--timeout"), 1);
    else if (a === "--json") json = true;
    else if (flags.take(is, value)) continue;
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
    else throw new UsageError(`unexpected argument "${a}"`);
  }
  if (registry === undefined) throw new UsageError("--registry <url> is required (or set MERIDIAN_REGISTRY)");
  const url = registryUrl(registry);
  if (url.kind !== "embedded") throw new UsageError("status asks a Meridian registry server (embedded://host:port); for etcd use etcdctl endpoint status");
  const { tls, token } = flags.resolve(env);
  return { address: url.address, timeoutMs, json, credentials: { ...(tls === undefined ? {} : { tls }), ...(token === undefined ? {} : { token }) } };
}

/** `meridian registry status ...`; 0 when the server answers "ok". */
async function statusCommand(args: StatusArgs, io: RegistryCommandIo, deps: RegistryCommandDeps): Promise<number> {
  if (!deps.clientTransport) throw new UsageError("embedded:// needs a client transport (run through the meridian command)");
  const { tls, token } = args.credentials;
  const transport = deps.clientTransport(tls === undefined ? {} : { tls });
  try {
    const headers = token === undefined ? {} : { headers: { [AUTHORIZATION_HEADER]: `Bearer ${token}` } };
    const client = createClient(Registry, { transport, endpoints: [{ address: args.address }], ...headers });
    let status;
    try {
      status = await client.status({}, { timeoutMs: args.timeoutMs });
    } catch (e) {
      io.stderr(`meridian registry: the registry at ${args.address} did not answer: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
    io.stdout(args.json ? `${JSON.stringify({ address: args.address, ...status, $unknown: undefined })}\n` : describeStatus(args.address, status));
    return status.health === "ok" ? 0 : 1;
  } finally {
    await transport.close();
  }
}

/**
 * Runs `meridian registry <args>` and resolves with the exit code: 0 on success, 1 when the
 * registry could not answer or the move lost to a concurrent change (or, when only reading,
 * the service has no primary), when `status` finds it unhealthy, or when `serve` could not start
 * or its log failed; 2 for bad usage. `serve` resolves only once the server stopped.
 */
export async function registryCommand(
  argv: readonly string[],
  io: RegistryCommandIo,
  deps: RegistryCommandDeps = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [sub, ...rest] = argv;
  const usage = sub === "serve" ? SERVE_USAGE : sub === "status" ? STATUS_USAGE : sub === "primary" ? PRIMARY_USAGE : USAGE;
  if (sub === undefined || sub === "-h" || sub === "--help" || rest.includes("-h") || rest.includes("--help")) {
    io.stdout(`${usage}\n`);
    return sub === undefined ? 2 : 0;
  }
  try {
    if (sub === "serve") return await serveCommand(parseServeArgs(rest), io, deps);
    if (sub === "status") return await statusCommand(parseStatusArgs(rest, env), io, deps);
    if (sub === "etcd-roles") return await etcdRolesCommand(parseEtcdRolesArgs(rest, env), io);
    if (sub !== "primary") throw new UsageError(`unknown registry command "${sub}" (serve, status, primary or etcd-roles)`);
    return await primaryCommand(parsePrimaryArgs(rest, env), io, deps);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`meridian registry: ${e.message}\n\n${usage}\n`);
      return 2;
    }
    throw e;
  }
}
