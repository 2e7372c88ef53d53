/**
 * The registry's roles on etcd: etcd authorizes by key range, so each registry role becomes an
 * etcd role with read or read-write permission on the prefixes the registry client uses (see
 * docs/registry.md, "etcd roles"), and each registry identity an etcd user holding those roles.
 *
 *   reader    read      <prefix>                          (instances, primaries, kv, health)
 *   operator  readwrite <prefix>, <markers>                (move primaries, change anything)
 *   instance  readwrite <prefix>services/<s>/instances/    for each of its services s
 *             read      <prefix>services/<s>/              (its service's primary, for fencing)
 *             read      <prefix>health                     (the registry client's probe)
 *             readwrite <prefix>kv/, <markers>             (fenced kv writes; write ids)
 */
import { Etcd3, EtcdRoleNotFoundError, EtcdUserNotFoundError } from "etcd3";
import { describeTlsFailure, etcd3Options, etcdHosts, etcdIdentity, etcdRefusal, prefixEnd, type EtcdConnectOptions } from "./etcd-client.js";
import type { RegistryRole } from "./auth.js";
import { StoreError, StoreUnavailableError, quote } from "./store.js";

/** A registry role, with the meaning of the registry server's roles (docs/security.md). */
export type EtcdRegistryRole = RegistryRole;

/** A registry identity to set up in etcd: one etcd user holding the etcd roles of its registry roles. */
export interface EtcdPrincipal {
  /** The etcd user name; the CN of its client certificate when it authenticates by certificate. */
  readonly name: string;
  readonly roles: readonly EtcdRegistryRole[];
  /** For the instance role: the services whose instances it may register, renew and remove. */
  readonly services?: readonly string[];
  /**
   * Its password. Omitted: a user without a password (etcd >= 3.4), which can only authenticate
   * by a client certificate whose CN is its name. An existing user's password is set to it.
   */
  readonly password?: string;
}

/** One etcd permission: on one key, or on every key starting with `key`. */
export interface EtcdPermission {
  readonly type: "Read" | "Write" | "Readwrite";
  readonly key: string;
  readonly prefix: boolean;
}

/** One etcd role and exactly the permissions it should have. */
export interface EtcdRolePlan {
  readonly role: string;
  readonly permissions: readonly EtcdPermission[];
}

/** Where the registry keeps its keys in etcd: what the roles' key ranges are made of. */
export interface EtcdKeyLayout {
  /** The registry client's prefix (RegistryOptions.prefix). Default `meridian/`. */
  readonly prefix?: string;
  /** The etcd store's write-id marker prefix (EtcdStoreOptions.markerPrefix). Default `__meridian/writes/`. */
  readonly markerPrefix?: string;
  /** Prefix of the etcd role names, so that two registries can share one etcd. Default `meridian-`. */
  readonly rolePrefix?: string;
}

function layoutOf(layout: EtcdKeyLayout): Required<EtcdKeyLayout> {
  return { prefix: layout.prefix ?? "meridian/", markerPrefix: layout.markerPrefix ?? "__meridian/writes/", rolePrefix: layout.rolePrefix ?? "meridian-" };
}

/**
 * The etcd roles a principal needs, with their permissions (see the module comment). A service
 * "*" is refused: etcd grants key ranges, and no range holds every service's instances without
 * their primary records.
 */
export function etcdRolesFor(principal: EtcdPrincipal, layout: EtcdKeyLayout = {}): EtcdRolePlan[] {
  const { prefix, markerPrefix, rolePrefix } = layoutOf(layout);
  if (principal.name.length === 0) throw new StoreError("INVALID_ARGUMENT", "an etcd principal needs a name (its etcd user)");
  const plans: EtcdRolePlan[] = [];
  const roles = new Set(principal.roles);
  if (roles.has("operator")) {
    plans.push({
      role: `${rolePrefix}operator`,
      permissions: [
        { type: "Readwrite", key: prefix, prefix: true },
        { type: "Readwrite", key: markerPrefix, prefix: true },
      ],
    });
  }
  if (roles.has("reader")) plans.push({ role: `${rolePrefix}reader`, permissions: [{ type: "Read", key: prefix, prefix: true }] });
  if (roles.has("instance")) {
    const services = principal.services ?? [];
    if (services.length === 0) {
      throw new StoreError("INVALID_ARGUMENT", `principal ${quote(principal.name)} has the instance role but no services: name the services whose instances it registers`);
    }
    plans.push({
      role: `${rolePrefix}instance`,
      permissions: [
        { type: "Read", key: `${prefix}health`, prefix: false },
        { type: "Readwrite", key: `${prefix}kv/`, prefix: true },
        { type: "Readwrite", key: markerPrefix, prefix: true },
      ],
    });
    for (const service of services) {
      if (!/^[\w.-]+$/.test(service)) {
        throw new StoreError(
          "INVALID_ARGUMENT",
          `service ${quote(service)} of ${quote(principal.name)}: etcd grants key ranges, so name each service (letters, digits, '.', '_', '-'); "*" would include every primary record`,
        );
      }
      plans.push({
        role: `${rolePrefix}instance-${service}`,
        permissions: [
          { type: "Readwrite", key: `${prefix}services/${service}/instances/`, prefix: true },
          { type: "Read", key: `${prefix}services/${service}/`, prefix: true },
        ],
      });
    }
  }
  return plans;
}

/** Options of setUpEtcdRoles: how to reach etcd as its root user, the layout, and the principals. */
export interface EtcdRolesOptions extends EtcdConnectOptions, EtcdKeyLayout {
  readonly principals: readonly EtcdPrincipal[];
  /** Timeout of each etcd call, ms. Default 5000. */
  readonly timeoutMs?: number;
}

/** What setUpEtcdRoles changed (empty lists: etcd already matched). */
export interface EtcdRolesReport {
  readonly rolesCreated: string[];
  /** Roles whose permissions were changed to the plan's. */
  readonly rolesUpdated: string[];
  readonly usersCreated: string[];
  /** `user:role` pairs granted. */
  readonly granted: string[];
  /** `user:role` pairs revoked: roles of this registry's role prefix that the principal no longer has. */
  readonly revoked: string[];
}

/** An admin client for one set-up, with the etcd errors turned into StoreErrors that say what failed. */
class EtcdAdmin {
  readonly client: Etcd3;
  private readonly url: string;
  private readonly identity: string;

  constructor(
    private readonly options: EtcdConnectOptions,
    private readonly timeoutMs: number,
  ) {
    const hosts = etcdHosts(options);
    this.url = hosts.join(",");
    this.identity = etcdIdentity(options);
    this.client = new Etcd3(etcd3Options(hosts, options, timeoutMs));
  }

  /** Runs one admin call with a deadline; `expected` errors (not found, exists) come back as they are. */
  async call<T>(what: string, fn: (deadline: { deadline: number }) => Promise<T>, expected: (e: unknown) => boolean = () => false): Promise<T> {
    try {
      return await fn({ deadline: Date.now() + this.timeoutMs });
    } catch (e) {
      if (expected(e)) throw e;
      const refusal = etcdRefusal(e, this.url, this.identity, what);
      if (refusal !== undefined) {
        if (refusal.code === "PERMISSION_DENIED") {
          throw new StoreError("PERMISSION_DENIED", `etcd at ${this.url} refused the ${what} to ${this.identity}: setting up users and roles needs etcd's root user`, { cause: e });
        }
        throw refusal;
      }
      const tls = describeTlsFailure(e, this.url, this.options);
      if (tls !== undefined) throw new StoreError(tls.code, tls.message, { cause: e });
      throw new StoreUnavailableError(`etcd at ${this.url} failed the ${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  close(): void {
    this.client.close();
  }
}

const sameBytes = (a: Buffer | undefined, b: Buffer): boolean => Buffer.compare(a ?? Buffer.alloc(0), b) === 0;

/** The key and range end etcd stores for a permission. */
function rangeOf(p: EtcdPermission): { key: Buffer; rangeEnd: Buffer } {
  const key = Buffer.from(p.key);
  return { key, rangeEnd: p.prefix ? prefixEnd(key) : Buffer.alloc(0) };
}

/**
 * Creates (or brings up to date) the etcd roles and users of the given principals: each role
 * ends with exactly the plan's permissions, each user holds exactly the plan's roles among those
 * of this registry's role prefix (roles outside it are left alone), users missing are created.
 * Run it as etcd's root user (before or after `enableEtcdAuth`); running it again is harmless.
 */
export async function setUpEtcdRoles(options: EtcdRolesOptions): Promise<EtcdRolesReport> {
  const layout = layoutOf(options);
  const plans = new Map<string, EtcdRolePlan>();
  const wanted = new Map<string, Set<string>>();
  for (const principal of options.principals) {
    const roles = wanted.get(principal.name) ?? new Set<string>();
    for (const plan of etcdRolesFor(principal, layout)) {
      plans.set(plan.role, plan);
      roles.add(plan.role);
    }
    wanted.set(principal.name, roles);
  }
  const report: EtcdRolesReport = { rolesCreated: [], rolesUpdated: [], usersCreated: [], granted: [], revoked: [] };
  const admin = new EtcdAdmin(options, options.timeoutMs ?? 5000);
  const auth = admin.client.auth;
  try {
    for (const plan of plans.values()) {
      let current: { permType: string; key: Buffer; range_end: Buffer }[];
      try {
        current = (await admin.call(`reading of role ${quote(plan.role)}`, (o) => auth.roleGet({ role: plan.role }, o), (e) => e instanceof EtcdRoleNotFoundError)).perm;
      } catch (e) {
        if (!(e instanceof EtcdRoleNotFoundError)) throw e;
        await admin.call(`creation of role ${quote(plan.role)}`, (o) => auth.roleAdd({ name: plan.role }, o));
        report.rolesCreated.push(plan.role);
        current = [];
      }
      let changed = false;
      const desired = plan.permissions.map((p) => ({ ...rangeOf(p), type: p.type }));
      for (const have of current) {
        if (desired.some((d) => d.type === have.permType && sameBytes(have.key, d.key) && sameBytes(have.range_end, d.rangeEnd))) continue;
        await admin.call(`revocation of a permission of role ${quote(plan.role)}`, (o) => auth.roleRevokePermission({ role: plan.role, key: have.key, range_end: have.range_end }, o));
        changed = true;
      }
      for (const d of desired) {
        if (current.some((have) => d.type === have.permType && sameBytes(have.key, d.key) && sameBytes(have.range_end, d.rangeEnd))) continue;
        await admin.call(`grant of ${d.type} on ${quote(d.key.toString())} to role ${quote(plan.role)}`, (o) =>
          auth.roleGrantPermission({ name: plan.role, perm: { permType: d.type, key: d.key, range_end: d.rangeEnd } }, o),
        );
        changed = true;
      }
      if (changed && !report.rolesCreated.includes(plan.role)) report.rolesUpdated.push(plan.role);
    }
    const byName = new Map(options.principals.map((p) => [p.name, p]));
    for (const [user, roles] of wanted) {
      const password = byName.get(user)?.password;
      let has: string[];
      try {
        has = (await admin.call(`reading of user ${quote(user)}`, (o) => auth.userGet({ name: user }, o), (e) => e instanceof EtcdUserNotFoundError)).roles;
        if (password !== undefined) await admin.call(`password change of user ${quote(user)}`, (o) => auth.userChangePassword({ name: user, password }, o));
      } catch (e) {
        if (!(e instanceof EtcdUserNotFoundError)) throw e;
        await admin.call(`creation of user ${quote(user)}`, (o) => auth.userAdd({ name: user, password: password ?? "", options: { no_password: password === undefined } }, o));
        report.usersCreated.push(user);
        has = [];
      }
      for (const role of roles) {
        if (has.includes(role)) continue;
        await admin.call(`grant of role ${quote(role)} to user ${quote(user)}`, (o) => auth.userGrantRole({ user, role }, o));
        report.granted.push(`${user}:${role}`);
      }
      for (const role of has) {
        if (!role.startsWith(layout.rolePrefix) || roles.has(role)) continue;
        await admin.call(`revocation of role ${quote(role)} from user ${quote(user)}`, (o) => auth.userRevokeRole({ name: user, role }, o));
        report.revoked.push(`${user}:${role}`);
      }
    }
    return report;
  } finally {
    admin.close();
  }
}

/** Options of enableEtcdAuth. */
export interface EnableEtcdAuthOptions extends EtcdConnectOptions {
  /**
   * The password of the root user created when there is none. Omitted: a root user without a
   * password, which authenticates by a client certificate with CN=root only.
   */
  readonly rootPassword?: string;
  /** Timeout of each etcd call, ms. Default 5000. */
  readonly timeoutMs?: number;
}

/**
 * Turns on etcd's authentication (`etcdctl auth enable`): makes sure the root user exists and
 * holds the root role, then enables it. Call it on an etcd without authentication, or as root on
 * one that has it (then it changes nothing). From then on every client needs a user.
 */
export async function enableEtcdAuth(options: EnableEtcdAuthOptions): Promise<void> {
  const admin = new EtcdAdmin(options, options.timeoutMs ?? 5000);
  const auth = admin.client.auth;
  try {
    let roles: string[];
    try {
      roles = (await admin.call("reading of user \"root\"", (o) => auth.userGet({ name: "root" }, o), (e) => e instanceof EtcdUserNotFoundError)).roles;
    } catch (e) {
      if (!(e instanceof EtcdUserNotFoundError)) throw e;
      const password = options.rootPassword;
      await admin.call("creation of user \"root\"", (o) => auth.userAdd({ name: "root", password: password ?? "", options: { no_password: password === undefined } }, o));
      roles = [];
    }
    if (!roles.includes("root")) await admin.call("grant of role \"root\" to user \"root\"", (o) => auth.userGrantRole({ user: "root", role: "root" }, o));
    await admin.call("enabling of authentication", (o) => auth.authEnable(o));
  } finally {
    admin.close();
  }
}
