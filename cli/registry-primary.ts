/** `meridian registry primary`: the primary region of a service, and moving it by compare-and-set. */
import {
  createRegistry,
  PrimaryConflictError,
  type PrimaryInfo,
  StoreError,
  type Store,
  openRegistryStore,
  type RegistryUrl,
} from "../runtime/registry/index.js";
import { integer, parseArgs, UsageError } from "./args.js";
import { REGISTRY_PRIMARY } from "./commands.js";
import type { CliIo } from "./io.js";
import { clientTransportOf, credentialsOf, registryUrlOf, timeoutOf, type Credentials, type RegistryCommandDeps } from "./registry-options.js";

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

function parsePrimaryArgs(argv: readonly string[], env: CliIo["env"]): PrimaryArgs {
  const parsed = parseArgs(argv, REGISTRY_PRIMARY.options);
  const [service, extra] = parsed.positional;
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}" (one service at a time)`);
  if (service === undefined) throw new UsageError("no service given (the fully qualified name, like demo.Accounts)");
  const moveTo = parsed.value("--move-to");
  const epoch = parsed.value("--expect-epoch");
  const lease = parsed.value("--lease-ms");
  const expectEpoch = epoch === undefined ? undefined : integer("--expect-epoch", epoch, 0);
  const leaseMs = lease === undefined ? undefined : integer("--lease-ms", lease, 1);
  const timeoutMs = timeoutOf(parsed);
  const { url, text } = registryUrlOf(parsed, env, "--registry <url> is required (or set MERIDIAN_REGISTRY)");
  if (moveTo !== undefined && !/^[\w.-]+$/.test(moveTo)) throw new UsageError(`--move-to must be a region name, not "${moveTo}"`);
  if (moveTo === undefined && (expectEpoch !== undefined || leaseMs !== undefined)) {
    throw new UsageError("--expect-epoch and --lease-ms go with --move-to");
  }
  const { password: _password, ...credentials } = credentialsOf(parsed, env);
  return { service, moveTo, expectEpoch, leaseMs, registry: url, registryText: text, timeoutMs, json: parsed.flag("--json"), credentials };
}

async function openStore(url: RegistryUrl, timeoutMs: number, credentials: Credentials, deps: RegistryCommandDeps): Promise<Store> {
  if (deps.openStore) return deps.openStore(url, timeoutMs, credentials);
  return openRegistryStore(url, { timeoutMs, ...credentials, ...(url.kind === "embedded" ? { transport: await clientTransportOf(deps) } : {}) });
}

/** What to pass when the registry refused the command's credentials, or undefined for other errors. */
function credentialHint(e: unknown, credentials: Credentials): string | undefined {
  if (!(e instanceof StoreError)) return undefined;
  if (e.code === "UNAUTHENTICATED") {
    return credentials.tls?.cert === undefined && credentials.token === undefined
      ? "this registry requires credentials: pass --ca, --cert and --key (an operator's client certificate) or --token (or set MERIDIAN_REGISTRY_TOKEN)"
      : "check the certificate (--cert/--key, signed by the registry's CA) or the token you passed";
  }
  if (e.code === "PERMISSION_DENIED") return "moving a primary needs a principal with the operator role: pass an operator's --cert/--key or --token";
  return undefined;
}

function describe(service: string, p: PrimaryInfo): string {
  return `${service}: primary ${p.region}, epoch ${p.epoch} (lease ${p.leaseMs} ms, since ${new Date(p.since).toISOString()}, revision ${p.revision})`;
}

/**
 * Runs `meridian registry primary <args>`: 0 on success; 1 when the registry could not answer,
 * the move lost to a concurrent change, or (when only reading) the service has no primary.
 * Throws UsageError for bad usage.
 */
export async function primaryCommand(argv: readonly string[], io: CliIo, deps: RegistryCommandDeps): Promise<number> {
  const args = parsePrimaryArgs(argv, io.env);
  const store = await openStore(args.registry, args.timeoutMs, args.credentials, deps);
  // A health interval longer than the command: the client makes no background reads.
  const registry = createRegistry({ store, region: "operator", timeoutMs: args.timeoutMs, healthIntervalMs: 3_600_000 });
  try {
    let current: PrimaryInfo | undefined;
    try {
      current = await registry.primary(args.service);
    } catch (e) {
      const hint = credentialHint(e, args.credentials);
      io.stderr(`meridian registry primary: cannot read the primary of ${args.service} from ${args.registryText}: ${e instanceof Error ? e.message : String(e)}${hint === undefined ? "" : `\n  ${hint}`}\n`);
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
          `meridian registry primary: not moved: the primary of ${args.service} is no longer at epoch ${expectedEpoch} (now ${now}); someone changed it meanwhile. Read it again and retry.\n`,
        );
        return 1;
      }
      const unknown = e instanceof StoreError && e.code === "OUTCOME_UNKNOWN";
      const hint = credentialHint(e, args.credentials);
      io.stderr(
        hint === undefined
          ? `meridian registry primary: ${unknown ? "the move's outcome is unknown" : "the move failed"}: ${e instanceof Error ? e.message : String(e)}; read the primary again before retrying\n`
          : `meridian registry primary: not moved: ${e instanceof Error ? e.message : String(e)}\n  ${hint}\n`,
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

