/**
 * Authentication and authorization of the embedded registry server (serveRegistry): who a call
 * comes from (a verified mTLS client certificate, or a bearer token for development), what its
 * roles let it do, and how much of the registry it may fill. docs/security.md explains the roles
 * and the threat model; this file is the enforcement.
 *
 * Roles, and what each RPC needs (anything not listed: operator):
 *
 *   Get, List, Watch        reader, instance or operator (an instance must read to route: its
 *                           services' instances and primaries, the health key, the kv space)
 *   Status                  any authenticated principal
 *   GrantLease              instance or operator (counted against the lease quota)
 *   KeepAlive, RevokeLease  the principal that granted the lease, or an operator
 *   ResolveWrite            instance or operator (it fences an unknown write id: a write)
 *   CompareAndSet, Delete   operator: any key. instance: keys under `<prefix>services/<svc>/instances/`
 *                           of a service it holds (a CompareAndSet there must attach the key to a
 *                           lease the instance granted), and keys under `<prefix>kv/` when the write
 *                           is fenced on `<prefix>services/<svc>/primary` of a service it holds (what
 *                           fencedKv does in a primary's handler). Primary records and every other
 *                           key: operator only.
 */
import { createHash } from "node:crypto";
import type { CallContext } from "../rpc/context.js";
import { Code, RpcError } from "../rpc/errors.js";
import type { Middleware, RpcRequest, RpcResponse } from "../rpc/middleware.js";
import type { PeerIdentity } from "../rpc/tls.js";
import type { StateMachine } from "./embedded/state-machine.js";
import { quote, type LeaseId, type WatchEvent } from "./store.js";

/** A role of a registry principal; see the module comment for what each may do. */
export type RegistryRole = "instance" | "reader" | "operator";

const ROLES: readonly RegistryRole[] = ["instance", "reader", "operator"];

/** Someone the registry knows: a name (for messages and quota accounting), roles, and for instances their services. */
export interface RegistryPrincipal {
  readonly name: string;
  readonly roles: readonly RegistryRole[];
  /** For the instance role: the services whose instances it may register, renew, remove ("*": any). */
  readonly services?: readonly string[];
  /** This principal's quotas, over the registry's (`RegistryAuth.quotas`) and the defaults. */
  readonly quotas?: Partial<RegistryQuotas>;
}

/**
 * What one principal may hold in the registry. Keys count against the principal that wrote them
 * last, until they are deleted (or their lease ends); leases against the principal that granted
 * them, until revoked or expired.
 */
export interface RegistryQuotas {
  /** Largest value of one key, UTF-8 bytes. Default 64 KiB (an instance record is under 1 KiB). */
  readonly maxValueBytes: number;
  /** Keys at once. Default 1000. */
  readonly maxKeys: number;
  /** Value bytes of all its keys together. Default 8 MiB. */
  readonly maxBytes: number;
  /** Live leases at once. Default 100 (a server holds one per registered service). */
  readonly maxLeases: number;
}

/** The quotas of a principal when neither it nor the registry sets them. */
export const DEFAULT_REGISTRY_QUOTAS: RegistryQuotas = Object.freeze({
  maxValueBytes: 64 * 1024,
  maxKeys: 1000,
  maxBytes: 8 * 1024 * 1024,
  maxLeases: 100,
});

/** How serveRegistry authenticates and authorizes calls; see the module comment for the roles. */
export interface RegistryAuth {
  /**
   * Principals of verified mTLS client certificates, keyed by a URI SAN (`spiffe://...`), a DNS
   * SAN or the subject CN, tried in that order; the key is the principal's name. Only a
   * certificate the server transport's `tls.ca` verified counts.
   */
  readonly certificates?: Readonly<Record<string, Omit<RegistryPrincipal, "name">>>;
  /** Bearer tokens (development): token -> principal. Sent as `authorization: Bearer <token>`. */
  readonly tokens?: Readonly<Record<string, RegistryPrincipal>>;
  /** Per-principal quotas (value bytes, keys, bytes, leases); DEFAULT_REGISTRY_QUOTAS otherwise. */
  readonly quotas?: Partial<RegistryQuotas>;
  /** The registry clients' key prefix (createRegistry's `prefix`). Default `meridian/`. */
  readonly prefix?: string;
}

/** The request header of a bearer token. */
export const AUTHORIZATION_HEADER = "authorization";

/** Shortest bearer token accepted: a development token still must not be guessable. */
const MIN_TOKEN_LENGTH = 16;

/** After a lease's TTL, how long its grantor is still taken as its owner (a keepalive racing the expiry). */
const LEASE_GRACE_MS = 2000;

/** A principal as the server resolved it, with its quotas settled. */
interface Resolved {
  readonly name: string;
  readonly roles: ReadonlySet<RegistryRole>;
  readonly services: ReadonlySet<string>;
  readonly quotas: RegistryQuotas;
}

/** How a call authenticated, for messages. */
type Via = "certificate" | "token";

function describe(p: Resolved): string {
  return `principal ${quote(p.name)} (roles: ${[...p.roles].join(", ") || "none"})`;
}

function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The quotas from the layers that set them, each checked. */
function settleQuotas(what: string, ...layers: (Partial<RegistryQuotas> | undefined)[]): RegistryQuotas {
  const q = Object.assign({}, DEFAULT_REGISTRY_QUOTAS, ...layers.filter((l) => l !== undefined)) as RegistryQuotas;
  for (const [name, value] of Object.entries(q)) {
    if (!(Number.isSafeInteger(value) && value >= 0)) throw new TypeError(`${what}: quota ${name} must be a non-negative integer, got ${String(value)}`);
  }
  return q;
}

function resolvePrincipal(what: string, name: string, p: Omit<RegistryPrincipal, "name">, quotas: Partial<RegistryQuotas> | undefined): Resolved {
  if (!Array.isArray(p.roles) || p.roles.length === 0) throw new TypeError(`${what}: principal ${quote(name)} needs roles (${ROLES.join(", ")})`);
  for (const role of p.roles) if (!ROLES.includes(role)) throw new TypeError(`${what}: principal ${quote(name)} has an unknown role ${quote(String(role))} (one of ${ROLES.join(", ")})`);
  if (p.roles.includes("instance") && (p.services === undefined || p.services.length === 0)) {
    throw new TypeError(`${what}: principal ${quote(name)} has the instance role but no services: list the services it serves (or "*")`);
  }
  for (const s of p.services ?? []) if (s.length === 0 || s.includes("/")) throw new TypeError(`${what}: principal ${quote(name)}: ${quote(s)} is not a service name`);
  return { name, roles: new Set(p.roles), services: new Set(p.services ?? []), quotas: settleQuotas(`${what}: principal ${quote(name)}`, quotas, p.quotas) };
}

/** What each principal holds, for quotas and lease ownership. */
interface Holdings {
  keys: number;
  bytes: number;
  /** Writes in flight that may create a key / add bytes. */
  pendingKeys: number;
  pendingBytes: number;
  readonly leases: Map<LeaseId, number>;
}

/**
 * Who owns which lease and key, kept next to the state machine: a key belongs to the principal
 * whose write produced its current value (learned from the machine's own change events, matched
 * by write id, so it can never drift from the store: a key deleted by anyone, or gone with its
 * lease, stops counting at once); a lease to the principal that granted it, until it is revoked or
 * its TTL passes unrenewed. Both live in memory: after a restart, restored keys count against
 * nobody, and a restored lease is no one's (its instance gets NOT_FOUND and registers again).
 */
class Ledger {
  private readonly holdings = new Map<string, Holdings>();
  private readonly keyOwner = new Map<string, { owner: string; bytes: number }>();
  private readonly leaseOwner = new Map<LeaseId, string>();
  /** Write id -> who is writing with it, while the write is in flight. */
  private readonly pending = new Map<string, { owner: string; bytes: number }>();
  private readonly unsubscribe: () => void;

  constructor(
    machine: StateMachine,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.unsubscribe = machine.subscribe((events) => this.apply(events));
  }

  close(): void {
    this.unsubscribe();
  }

  of(name: string): Holdings {
    let h = this.holdings.get(name);
    if (!h) this.holdings.set(name, (h = { keys: 0, bytes: 0, pendingKeys: 0, pendingBytes: 0, leases: new Map() }));
    return h;
  }

  /** The owner of a live lease, or undefined (unknown, expired, revoked). */
  leaseOwnerOf(lease: LeaseId): string | undefined {
    const owner = this.leaseOwner.get(lease);
    if (owner === undefined) return undefined;
    const expiresAt = this.holdings.get(owner)?.leases.get(lease);
    if (expiresAt !== undefined && expiresAt > this.now()) return owner;
    this.forgetLease(lease);
    return undefined;
  }

  /** Live leases of a principal (expired ones are dropped on the way). */
  liveLeases(name: string): number {
    const h = this.of(name);
    const now = this.now();
    for (const [lease, expiresAt] of h.leases) if (expiresAt <= now) this.forgetLease(lease);
    return h.leases.size;
  }

  /** A lease granted, or renewed, by `owner` for `ttlMs`. */
  holdLease(owner: string, lease: LeaseId, ttlMs: number): void {
    this.leaseOwner.set(lease, owner);
    this.of(owner).leases.set(lease, this.now() + ttlMs + LEASE_GRACE_MS);
  }

  forgetLease(lease: LeaseId): void {
    const owner = this.leaseOwner.get(lease);
    if (owner === undefined) return;
    this.leaseOwner.delete(lease);
    this.holdings.get(owner)?.leases.delete(lease);
  }

  /** The bytes `owner` holds in `key` now (0 when the key is someone else's or absent). */
  heldBytes(owner: string, key: string): number | undefined {
    const k = this.keyOwner.get(key);
    return k?.owner === owner ? k.bytes : undefined;
  }

  /**
   * Marks a write in flight: its put event (matched by write id) gives the key to `owner`.
   * Returns its release, to call once the write is answered.
   */
  begin(owner: string, writeId: string, bytes: number, creates: boolean): (() => void) | undefined {
    if (this.pending.has(writeId)) return undefined;
    const h = this.of(owner);
    this.pending.set(writeId, { owner, bytes });
    if (creates) h.pendingKeys++;
    h.pendingBytes += bytes;
    return () => {
      this.pending.delete(writeId);
      if (creates) h.pendingKeys--;
      h.pendingBytes -= bytes;
    };
  }

  private apply(events: readonly WatchEvent[]): void {
    for (const e of events) {
      this.release(e.key);
      if (e.type !== "put") continue;
      const writer = this.pending.get(e.kv.writeId);
      if (writer === undefined) continue;
      this.keyOwner.set(e.key, writer);
      const h = this.of(writer.owner);
      h.keys++;
      h.bytes += writer.bytes;
    }
  }

  private release(key: string): void {
    const k = this.keyOwner.get(key);
    if (k === undefined) return;
    this.keyOwner.delete(key);
    const h = this.of(k.owner);
    h.keys--;
    h.bytes -= k.bytes;
  }
}

/** What the middleware needs of each request message it inspects (registry.proto's fields). */
interface WriteFields {
  readonly key?: string;
  readonly value?: string;
  readonly lease?: string;
  readonly writeId?: string;
  readonly fenceKey?: string;
}

/**
 * The enforcement of a RegistryAuth for one server: resolves each call's principal, checks its
 * roles and scope for the RPC and its arguments, and keeps quotas. Built by serveRegistry.
 */
export class RegistryAuthorizer {
  private readonly byCertificate = new Map<string, Resolved>();
  private readonly byTokenHash = new Map<string, Resolved>();
  private readonly prefix: string;
  private readonly ledger: Ledger;

  constructor(auth: RegistryAuth, machine: StateMachine) {
    const what = "serveRegistry auth";
    this.prefix = auth.prefix ?? "meridian/";
    for (const [name, p] of Object.entries(auth.certificates ?? {})) {
      if (name.length === 0) throw new TypeError(`${what}: a certificate principal needs a name (a URI or DNS SAN, or a CN)`);
      this.byCertificate.set(name, resolvePrincipal(what, name, p, auth.quotas));
    }
    for (const [token, p] of Object.entries(auth.tokens ?? {})) {
      if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
        throw new TypeError(`${what}: the token of principal ${quote(p.name)} must be at least ${MIN_TOKEN_LENGTH} characters without spaces (make one with: openssl rand -hex 24)`);
      }
      this.byTokenHash.set(hashToken(token), resolvePrincipal(what, p.name, p, auth.quotas));
    }
    if (this.byCertificate.size === 0 && this.byTokenHash.size === 0) {
      throw new TypeError(`${what}: no principals: give auth.certificates and/or auth.tokens (or serve with insecure: true, on a trusted loopback only)`);
    }
    this.ledger = new Ledger(machine);
  }

  /** Stops following the state machine. */
  close(): void {
    this.ledger.close();
  }

  /** The server middleware that enforces it: the first of the chain, so refusals cost nothing. */
  middleware(): Middleware {
    return (next) => async (req) => {
      const principal = this.authenticate(req.ctx);
      return this.authorize(principal, req, () => next(req));
    };
  }

  /** The principal of a call; UNAUTHENTICATED (saying what was looked for) when there is none. */
  private authenticate(ctx: CallContext): Resolved {
    const header = ctx.headers[AUTHORIZATION_HEADER];
    const fromCert = ctx.peerIdentity === undefined ? undefined : this.certificatePrincipal(ctx.peerIdentity);
    let fromToken: Resolved | undefined;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (m === null) throw new RpcError(Code.UNAUTHENTICATED, `the ${AUTHORIZATION_HEADER} header must be "Bearer <token>"`);
      fromToken = this.byTokenHash.get(hashToken(m[1]!));
      if (fromToken === undefined) throw new RpcError(Code.UNAUTHENTICATED, "the bearer token is not one this registry knows (check the token you pass: --token, MERIDIAN_REGISTRY_TOKEN or createRemoteStore({ token }))");
    }
    if (fromCert !== undefined && fromToken !== undefined && fromCert.name !== fromToken.name) {
      throw new RpcError(Code.UNAUTHENTICATED, `the client certificate names ${quote(fromCert.name)} and the bearer token ${quote(fromToken.name)}: send one identity`);
    }
    const principal = fromCert ?? fromToken;
    if (principal !== undefined) return principal;
    if (ctx.peerIdentity !== undefined) {
      const names = [...ctx.peerIdentity.subjectAltNames, ...(ctx.peerIdentity.commonName === undefined ? [] : [`CN=${ctx.peerIdentity.commonName}`])];
      throw new RpcError(Code.UNAUTHENTICATED, `the client certificate (${names.join(", ")}) is verified but names no principal of this registry (auth.certificates is keyed by a URI or DNS SAN, or the CN)`);
    }
    const ways = [
      ...(this.byCertificate.size > 0 ? ["a client certificate signed by the registry's CA (TcpClientTransport({ tls: { ca, cert, key } }); --ca --cert --key)"] : []),
      ...(this.byTokenHash.size > 0 ? [`a bearer token (createRemoteStore({ token }); --token or MERIDIAN_REGISTRY_TOKEN)`] : []),
    ];
    throw new RpcError(Code.UNAUTHENTICATED, `the registry requires credentials and this call had none; it looked for ${ways.join(" or ")}`);
  }

  private certificatePrincipal(id: PeerIdentity): Resolved | undefined {
    const uris = id.subjectAltNames.filter((s) => s.startsWith("URI:")).map((s) => s.slice(4));
    const dns = id.subjectAltNames.filter((s) => s.startsWith("DNS:")).map((s) => s.slice(4));
    for (const name of [...uris, ...dns, ...(id.commonName === undefined ? [] : [id.commonName])]) {
      const p = this.byCertificate.get(name);
      if (p !== undefined) return p;
    }
    return undefined;
  }

  private authorize(p: Resolved, req: RpcRequest, run: () => Promise<RpcResponse>): Promise<RpcResponse> {
    const method = req.method.name;
    const operator = p.roles.has("operator");
    const msg = req.message as WriteFields & { lease?: string };
    switch (method) {
      case "Get":
      case "List":
      case "Watch":
        this.need(p, method, "", operator || p.roles.has("reader") || p.roles.has("instance"), "the reader role (or instance, or operator)");
        return run();
      case "Status":
        return run();
      case "ResolveWrite":
        this.need(p, method, "", operator || p.roles.has("instance"), "the instance or operator role (a principal that writes)");
        return run();
      case "GrantLease":
        this.need(p, method, "", operator || p.roles.has("instance"), "the instance or operator role");
        return this.grant(p, run);
      case "KeepAlive":
      case "RevokeLease":
        return this.leaseCall(p, method, msg.lease ?? "", run);
      case "CompareAndSet":
      case "Delete":
        return this.write(p, method, msg, run);
      default:
        // An RPC this table does not know yet changes something it cannot judge: operators only.
        this.need(p, method, "", operator, "the operator role");
        return run();
    }
  }

  private need(p: Resolved, method: string, target: string, ok: boolean, needs: string): void {
    if (!ok) throw new RpcError(Code.PERMISSION_DENIED, `${describe(p)} may not ${method}${target === "" ? "" : ` ${target}`}: that needs ${needs}`);
  }

  private async grant(p: Resolved, run: () => Promise<RpcResponse>): Promise<RpcResponse> {
    const live = this.ledger.liveLeases(p.name);
    if (live >= p.quotas.maxLeases) {
      throw new RpcError(Code.RESOURCE_EXHAUSTED, `${describe(p)} holds ${live} leases, its quota (maxLeases ${p.quotas.maxLeases}); revoke some or raise the quota`);
    }
    const res = await run();
    const lease = res.message as { id: string; ttlMs: number };
    this.ledger.holdLease(p.name, lease.id, lease.ttlMs);
    return res;
  }

  private async leaseCall(p: Resolved, method: string, lease: LeaseId, run: () => Promise<RpcResponse>): Promise<RpcResponse> {
    const owner = this.ledger.leaseOwnerOf(lease);
    if (!p.roles.has("operator") && owner !== p.name) {
      if (owner === undefined && method === "KeepAlive") {
        // A lease this server did not see granted (before a restart) or that expired: the
        // instance registers again with a new lease, as after any expiry.
        throw new RpcError(Code.NOT_FOUND, `lease ${quote(lease)} is not a live lease of ${quote(p.name)} (expired, or granted before the registry restarted); grant a new lease`);
      }
      this.need(p, method, `lease ${quote(lease)}`, false, owner === undefined ? "a lease it granted (this one is no live lease of its)" : "the principal that granted it, or the operator role");
    }
    try {
      const res = await run();
      if (method === "RevokeLease") this.ledger.forgetLease(lease);
      else if (owner !== undefined) this.ledger.holdLease(owner, lease, (res.message as { ttlMs: number }).ttlMs);
      return res;
    } catch (e) {
      if (e instanceof RpcError && e.code === Code.NOT_FOUND) this.ledger.forgetLease(lease);
      throw e;
    }
  }

  private async write(p: Resolved, method: string, msg: WriteFields, run: () => Promise<RpcResponse>): Promise<RpcResponse> {
    const key = msg.key ?? "";
    const lease = method === "CompareAndSet" && msg.lease !== undefined && msg.lease !== "" ? msg.lease : undefined;
    if (!p.roles.has("operator")) this.checkScope(p, method, key, lease, msg.fenceKey ?? "");
    if (lease !== undefined && !p.roles.has("operator") && this.ledger.leaseOwnerOf(lease) !== p.name) {
      this.need(p, method, quote(key), false, `a lease it granted (lease ${quote(lease)} is not one of its live leases)`);
    }
    if (method !== "CompareAndSet") return run();
    const bytes = Buffer.byteLength(msg.value ?? "", "utf8");
    const q = p.quotas;
    if (bytes > q.maxValueBytes) {
      throw new RpcError(Code.RESOURCE_EXHAUSTED, `value of ${quote(key)} is ${bytes} bytes, over the quota of ${describe(p)} (maxValueBytes ${q.maxValueBytes})`);
    }
    const h = this.ledger.of(p.name);
    const held = this.ledger.heldBytes(p.name, key);
    if (held === undefined && h.keys + h.pendingKeys >= q.maxKeys) {
      throw new RpcError(Code.RESOURCE_EXHAUSTED, `${describe(p)} holds ${h.keys} keys, its quota (maxKeys ${q.maxKeys}); delete some or raise the quota`);
    }
    if (h.bytes + h.pendingBytes - (held ?? 0) + bytes > q.maxBytes) {
      throw new RpcError(Code.RESOURCE_EXHAUSTED, `writing ${bytes} bytes to ${quote(key)} would take ${describe(p)} over its quota of ${q.maxBytes} value bytes in all (maxBytes; it holds ${h.bytes})`);
    }
    const release = this.ledger.begin(p.name, msg.writeId ?? "", bytes, held === undefined);
    if (release === undefined) throw new RpcError(Code.ABORTED, `write id ${quote(msg.writeId ?? "")} is already in flight; retry it once that write is answered`);
    try {
      return await run();
    } finally {
      release();
    }
  }

  /** An instance's write scope (see the module comment); PERMISSION_DENIED outside it. */
  private checkScope(p: Resolved, method: string, key: string, lease: LeaseId | undefined, fenceKey: string): void {
    const target = quote(key);
    if (!p.roles.has("instance")) this.need(p, method, target, false, "the instance role (its own services' instances) or the operator role");
    const services = `${this.prefix}services/`;
    const holds = (service: string) => p.services.has("*") || p.services.has(service);
    if (key.startsWith(services)) {
      const rest = key.slice(services.length);
      const slash = rest.indexOf("/");
      const service = slash < 0 ? rest : rest.slice(0, slash);
      const instances = `${service}/instances/`;
      if (!rest.startsWith(instances) || rest.length === instances.length) {
        this.need(p, method, target, false, "the operator role (moving primaries and changing configuration); an instance writes only instance keys");
      }
      if (!holds(service)) this.need(p, method, target, false, `an instance principal of ${service} (it holds ${[...p.services].join(", ")})`);
      if (method === "CompareAndSet" && lease === undefined) this.need(p, method, target, false, "a lease it granted (an instance registers under its own lease, so the entry goes when it does)");
      return;
    }
    if (key.startsWith(`${this.prefix}kv/`)) {
      const m = fenceKey.startsWith(services) && fenceKey.endsWith("/primary") ? fenceKey.slice(services.length, -"/primary".length) : undefined;
      if (m === undefined || m.includes("/") || !holds(m)) {
        this.need(p, method, target, false, "a write fenced on the primary of a service the instance holds (fencedKv in a primary's handler), or the operator role");
      }
      return;
    }
    this.need(p, method, target, false, "the operator role (moving primaries and changing configuration)");
  }
}
