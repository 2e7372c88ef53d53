/** `meridian registry etcd-roles`: etcd roles and users for the registry's roles (RBAC set-up). */
import type { EtcdPrincipal, EtcdRegistryRole } from "../runtime/registry/etcd.js";
import { parseArgs, UsageError } from "./args.js";
import { REGISTRY_ETCD_ROLES } from "./commands.js";
import type { CliIo } from "./io.js";
import { credentialsOf, optionFile, registryUrlOf, timeoutOf, type Credentials } from "./registry-options.js";

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

/** The passwords of a --passwords file: lines `<user> <password>`, `#` comments. */
function readPasswords(path: string): Map<string, string> {
  const passwords = new Map<string, string>();
  for (const line of optionFile("--passwords", path).toString("utf8").split(/\r?\n/)) {
    const m = /^\s*(\S+)\s+(.+?)\s*$/.exec(line);
    if (m && !line.trimStart().startsWith("#")) passwords.set(m[1]!, m[2]!);
  }
  return passwords;
}

function parseEtcdRolesArgs(argv: readonly string[], env: CliIo["env"]): EtcdRolesArgs {
  const parsed = parseArgs(argv, REGISTRY_ETCD_ROLES.options);
  if (parsed.positional.length > 0) throw new UsageError(`unexpected argument "${parsed.positional[0]}"`);
  const principals = parsed.values("--principal").map(parsePrincipal);
  const enableAuth = parsed.flag("--enable-auth");
  const timeoutMs = timeoutOf(parsed);
  const { url, text } = registryUrlOf(parsed, env, "--registry etcd[s]://host:port[,...] is required (or set MERIDIAN_REGISTRY)");
  if (url.kind !== "etcd") throw new UsageError(`etcd-roles sets up etcd: --registry must be etcd:// or etcds://, not "${text}"`);
  if (principals.length === 0 && !enableAuth) throw new UsageError("no --principal given");
  const passwordsFile = parsed.value("--passwords");
  if (passwordsFile !== undefined) {
    const passwords = readPasswords(passwordsFile);
    for (let i = 0; i < principals.length; i++) {
      const password = passwords.get(principals[i]!.name);
      if (password !== undefined) principals[i] = { ...principals[i]!, password };
    }
  }
  return { hosts: [...url.hosts], principals, enableAuth, prefix: parsed.value("--prefix"), json: parsed.flag("--json"), timeoutMs, etcd: credentialsOf(parsed, env) };
}

/**
 * Runs `meridian registry etcd-roles <args>`: 0 when etcd matches the roles (changed or already
 * so), 1 when etcd refused or could not be reached. Throws UsageError for bad usage.
 */
export async function etcdRolesCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseEtcdRolesArgs(argv, io.env);
  const { setUpEtcdRoles, enableEtcdAuth } = await import("../runtime/registry/etcd-roles.js");
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
