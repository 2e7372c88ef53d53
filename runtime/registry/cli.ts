/**
 * `meridian registry ...`: operator commands on a running registry. The `meridian` entry point
 * (codegen/cli.ts) dispatches here and passes the client transport for `embedded://`
 * registries, since runtime/ imports no transport.
 *
 *   meridian registry primary <service> --registry <url>                  prints primary and epoch
 *   meridian registry primary <service> --move-to <region> --registry <url>  moves it (CAS)
 */
import { readFileSync } from "node:fs";
import type { ClientTls } from "../rpc/tls.js";
import type { ClientTransport } from "../rpc/transport.js";
import { createRegistry, PrimaryConflictError, type PrimaryInfo } from "./client.js";
import { StoreError, type Store } from "./store.js";
import { openRegistryStore, parseRegistryUrl, type RegistryUrl } from "./url.js";

export { parseRegistryUrl, type RegistryUrl } from "./url.js";

const USAGE = `usage: meridian registry primary <service> [--move-to <region>] [--expect-epoch <n>]
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

/** Where the command writes (the CLI's io). */
export interface RegistryCommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** What the command needs from its caller. */
export interface RegistryCommandDeps {
  /** A client transport for `embedded://` registries (the TCP transport), with the command's TLS. */
  clientTransport?: (options: { tls?: ClientTls }) => ClientTransport;
  /** Opens the store for a parsed URL instead of the default (tests). */
  openStore?: (url: RegistryUrl, timeoutMs: number, credentials: Credentials) => Promise<Store>;
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
    throw new UsageError(`--registry must be embedded://host:port or etcd://host:port[,host:port...], not "${url}"`);
  }
  return parsed;
}

/** What the command presents to the registry: TLS (trust, client certificate) and/or a token. */
export interface Credentials {
  readonly tls?: ClientTls;
  readonly token?: string;
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

/** Reads a PEM file named by a flag; a UsageError saying which flag when it cannot. */
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
  let ca: string | undefined;
  let cert: string | undefined;
  let key: string | undefined;
  let token = env.MERIDIAN_REGISTRY_TOKEN === "" ? undefined : env.MERIDIAN_REGISTRY_TOKEN;
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
    else if (is("--ca")) ca = value("--ca");
    else if (is("--cert")) cert = value("--cert");
    else if (is("--key")) key = value("--key");
    else if (is("--token")) token = value("--token");
    else if (a === "--json") json = true;
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
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("--cert and --key go together (a client certificate needs its key)");
  if (token !== undefined && (token === "" || /\s/.test(token))) throw new UsageError("--token must be a non-empty token without spaces");
  const tls: ClientTls | undefined =
    ca === undefined && cert === undefined
      ? undefined
      : {
          ...(ca === undefined ? {} : { ca: pemFile("--ca", ca) }),
          ...(cert === undefined ? {} : { cert: pemFile("--cert", cert), key: pemFile("--key", key!) }),
        };
  const credentials: Credentials = { ...(tls === undefined ? {} : { tls }), ...(token === undefined ? {} : { token }) };
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
