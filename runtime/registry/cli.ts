/**
 * `meridian registry ...`: operator commands on a running registry. The `meridian` entry point
 * (codegen/cli.ts) dispatches here and passes the client transport for `embedded://`
 * registries, since runtime/ imports no transport.
 *
 *   meridian registry primary <service> --registry <url>                  prints primary and epoch
 *   meridian registry primary <service> --move-to <region> --registry <url>  moves it (CAS)
 *   meridian registry etcd-roles --registry etcds://... --principal <spec>...  etcd RBAC set-up
 */
import { readFileSync } from "node:fs";
import type { ClientTls } from "../rpc/tls.js";
import type { ClientTransport } from "../rpc/transport.js";
import type { EtcdAuth } from "./etcd-client.js";
import { createRegistry, PrimaryConflictError, type PrimaryInfo } from "./client.js";
import type { EtcdPrincipal, EtcdRegistryRole } from "./etcd-roles.js";
import { StoreError, type Store } from "./store.js";
import { openRegistryStore, parseRegistryUrl, type RegistryUrl } from "./url.js";

export { parseRegistryUrl, type RegistryUrl } from "./url.js";

const ETCD_FLAGS = `
etcd connection (etcd:// and etcds://):
  --ca <file>         CA of the etcd members' certificates (etcds://; default Node's roots)
  --cert <file>       client certificate, for members started with --client-cert-auth
  --key <file>        its private key
  --user <name>       etcd user; its password from $MERIDIAN_ETCD_PASSWORD or --password-file
                      (never on the command line)
  --password-file <file>  file holding the etcd user's password (one line)`;

const USAGE = `usage: meridian registry primary <service> [--move-to <region>] [--expect-epoch <n>]
                                   [--lease-ms <ms>] --registry <url> [--timeout <ms>] [--json]

Prints the primary region of <service> and its epoch; with --move-to, moves the primary there by
compare-and-set on the record just read (bumping the epoch), and fails if anyone changed it
meanwhile. The new primary accepts writes once the old primary's lease has passed.

  --registry <url>    embedded://host:port (a registry served by serveRegistry, over TCP),
                      etcd://host:port[,host:port...] or etcds://... (TLS); default $MERIDIAN_REGISTRY
  --move-to <region>  the region to make primary
  --expect-epoch <n>  move only if the epoch is still <n> (default: the epoch just read);
                      0 when the service has no primary yet
  --lease-ms <ms>     the new record's lease (default: the current record's)
  --timeout <ms>      timeout of each registry call (default 5000)
  --json              print the record(s) as JSON
  -h, --help          this text

usage: meridian registry etcd-roles --registry etcd[s]://host:port[,...] --principal <spec>...
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
${ETCD_FLAGS}`;

/** Where the command writes (the CLI's io). */
export interface RegistryCommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** What the command needs from its caller. */
export interface RegistryCommandDeps {
  /** A client transport for `embedded://` registries (the TCP transport). */
  clientTransport?: () => ClientTransport;
  /** Opens the store for a parsed URL instead of the default (tests). */
  openStore?: (url: RegistryUrl, timeoutMs: number) => Promise<Store>;
}

class UsageError extends Error {}

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
    throw new UsageError(`--registry must be embedded://host:port or etcd://host:port[,host:port...] (etcds:// for TLS), not "${url}"`);
  }
  return parsed;
}

/** The etcd connection flags (--ca --cert --key --user --password-file), as they are parsed. */
class EtcdFlags {
  private ca: string | undefined;
  private cert: string | undefined;
  private key: string | undefined;
  private user: string | undefined;
  private passwordFile: string | undefined;

  /** Takes `arg` when it is one of the flags (reading its value with `value`); false otherwise. */
  take(is: (name: string) => boolean, value: (name: string) => string): boolean {
    if (is("--ca")) this.ca = value("--ca");
    else if (is("--cert")) this.cert = value("--cert");
    else if (is("--key")) this.key = value("--key");
    else if (is("--user")) this.user = value("--user");
    else if (is("--password-file")) this.passwordFile = value("--password-file");
    else return false;
    return true;
  }

  /** TLS and auth for the store, files read; the password from the file or MERIDIAN_ETCD_PASSWORD. */
  resolve(env: NodeJS.ProcessEnv): { tls?: ClientTls; auth?: EtcdAuth; password?: string } {
    const read = (flag: string, file: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (e) {
        throw new UsageError(`cannot read the ${flag} file "${file}": ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    if ((this.cert === undefined) !== (this.key === undefined)) throw new UsageError("--cert and --key go together");
    const tls: ClientTls | undefined =
      this.ca === undefined && this.cert === undefined
        ? undefined
        : {
            ...(this.ca === undefined ? {} : { ca: read("--ca", this.ca) }),
            ...(this.cert === undefined ? {} : { cert: read("--cert", this.cert), key: read("--key", this.key!) }),
          };
    const password = this.passwordFile !== undefined ? read("--password-file", this.passwordFile).toString("utf8").replace(/\r?\n$/, "") : env.MERIDIAN_ETCD_PASSWORD;
    if (this.user !== undefined && password === undefined) throw new UsageError(`--user ${this.user} needs a password: set MERIDIAN_ETCD_PASSWORD or pass --password-file`);
    if (this.user === undefined && this.passwordFile !== undefined) throw new UsageError("--password-file goes with --user");
    return {
      ...(tls === undefined ? {} : { tls }),
      ...(this.user === undefined ? {} : { auth: { username: this.user, password: password! } }),
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
  etcd: { tls?: ClientTls; auth?: EtcdAuth };
}

function parsePrimaryArgs(args: readonly string[], env: NodeJS.ProcessEnv): PrimaryArgs {
  let service: string | undefined;
  let moveTo: string | undefined;
  let expectEpoch: number | undefined;
  let leaseMs: number | undefined;
  let registry = env.MERIDIAN_REGISTRY;
  let timeoutMs = 5000;
  let json = false;
  const etcd = new EtcdFlags();
  const count = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, not "${v}"`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (name: string): string => {
      const eq = a.indexOf("=");
      if (a.startsWith("--") && eq > 0) return a.slice(eq + 1);
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    const is = (name: string) => a === name || a.startsWith(`${name}=`);
    if (is("--move-to")) moveTo = value("--move-to");
    else if (is("--expect-epoch")) expectEpoch = count("--expect-epoch", value("--expect-epoch"), 0);
    else if (is("--lease-ms")) leaseMs = count("--lease-ms", value("--lease-ms"), 1);
    else if (is("--registry")) registry = value("--registry");
    else if (is("--timeout")) timeoutMs = count("--timeout", value("--timeout"), 1);
    else if (a === "--json") json = true;
    else if (etcd.take(is, value)) continue;
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
  const { tls, auth } = etcd.resolve(env);
  return {
    service,
    moveTo,
    expectEpoch,
    leaseMs,
    registry: registryUrl(registry),
    registryText: registry,
    timeoutMs,
    json,
    etcd: { ...(tls === undefined ? {} : { tls }), ...(auth === undefined ? {} : { auth }) },
  };
}

async function openStore(url: RegistryUrl, timeoutMs: number, deps: RegistryCommandDeps, etcd: { tls?: ClientTls; auth?: EtcdAuth } = {}): Promise<Store> {
  if (deps.openStore) return deps.openStore(url, timeoutMs);
  if (url.kind === "embedded" && !deps.clientTransport) throw new UsageError("embedded:// needs a client transport (run through the meridian command)");
  return openRegistryStore(url, {
    timeoutMs,
    ...(deps.clientTransport ? { transport: deps.clientTransport() } : {}),
    ...(url.kind === "etcd" && etcd.tls !== undefined ? { tls: etcd.tls } : {}),
    ...(url.kind === "etcd" && etcd.auth !== undefined ? { etcdAuth: etcd.auth } : {}),
  });
}

function describe(service: string, p: PrimaryInfo): string {
  return `${service}: primary ${p.region}, epoch ${p.epoch} (lease ${p.leaseMs} ms, since ${new Date(p.since).toISOString()}, revision ${p.revision})`;
}

/** `meridian registry primary ...`; resolves with the exit code. */
async function primaryCommand(args: PrimaryArgs, io: RegistryCommandIo, deps: RegistryCommandDeps): Promise<number> {
  const store = await openStore(args.registry, args.timeoutMs, deps, args.etcd);
  // A health interval longer than the command: the client makes no background reads.
  const registry = createRegistry({ store, region: "operator", timeoutMs: args.timeoutMs, healthIntervalMs: 3_600_000 });
  try {
    let current: PrimaryInfo | undefined;
    try {
      current = await registry.primary(args.service);
    } catch (e) {
      io.stderr(`meridian registry: cannot read the primary of ${args.service} from ${args.registryText}: ${e instanceof Error ? e.message : String(e)}\n`);
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
      io.stderr(
        `meridian registry: ${unknown ? "the move's outcome is unknown" : "the move failed"}: ${e instanceof Error ? e.message : String(e)}; read the primary again before retrying\n`,
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
  etcd: { tls?: ClientTls; auth?: EtcdAuth; password?: string };
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
  const etcd = new EtcdFlags();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (name: string): string => {
      const eq = a.indexOf("=");
      if (a.startsWith("--") && eq > 0) return a.slice(eq + 1);
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    const is = (name: string) => a === name || a.startsWith(`${name}=`);
    if (is("--registry")) registry = value("--registry");
    else if (is("--principal")) principals.push(parsePrincipal(value("--principal")));
    else if (is("--passwords")) passwordsFile = value("--passwords");
    else if (is("--prefix")) prefix = value("--prefix");
    else if (is("--timeout")) timeoutMs = Number(value("--timeout"));
    else if (a === "--enable-auth") enableAuth = true;
    else if (a === "--json") json = true;
    else if (etcd.take(is, value)) continue;
    else throw new UsageError(`unexpected argument "${a}"`);
  }
  if (registry === undefined) throw new UsageError("--registry etcd[s]://host:port[,...] is required (or set MERIDIAN_REGISTRY)");
  const url = registryUrl(registry);
  if (url.kind !== "etcd") throw new UsageError(`etcd-roles sets up etcd: --registry must be etcd:// or etcds://, not "${registry}"`);
  if (principals.length === 0 && !enableAuth) throw new UsageError("no --principal given");
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new UsageError("--timeout must be a positive integer");
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
  const { tls, auth, password } = args.etcd;
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

/**
 * Runs `meridian registry <args>` and resolves with the exit code: 0 on success, 1 when the
 * registry could not answer or the move lost to a concurrent change (or, when only reading,
 * the service has no primary), 2 for bad usage.
 */
export async function registryCommand(
  argv: readonly string[],
  io: RegistryCommandIo,
  deps: RegistryCommandDeps = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "-h" || sub === "--help" || rest.includes("-h") || rest.includes("--help")) {
    io.stdout(`${USAGE}\n`);
    return sub === undefined ? 2 : 0;
  }
  try {
    if (sub === "etcd-roles") return await etcdRolesCommand(parseEtcdRolesArgs(rest, env), io);
    if (sub !== "primary") throw new UsageError(`unknown registry command "${sub}"`);
    return await primaryCommand(parsePrimaryArgs(rest, env), io, deps);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`meridian registry: ${e.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
}
