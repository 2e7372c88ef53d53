import { Etcd3, type IOptions } from "etcd3";
import { AsyncQueue } from "./async-queue.js";
import { describeTlsFailure, etcd3Options, etcdHosts, etcdIdentity, etcdRefusal, prefixEnd, type EtcdConnectOptions } from "./etcd-client.js";

import {
  CompactedError,
  FencedError,
  LeaseNotFoundError,
  OutcomeUnknownError,
  StoreClosedError,
  StoreError,
  StoreUnavailableError,
  abortedError,
  bounded,
  checkFence,
  checkWriteId,
  newWriteId,
  quote,
  type Fence,
  type GetResult,
  type KeyValue,
  type Lease,
  type LeaseId,
  type ListResult,
  type ReadOptions,
  type Store,
  type WatchBatch,
  type WatchEvent,
  type WatchOptions,
  type WriteOptions,
  type WriteResolution,
  type WriteResult,
} from "./store.js";

// The etcd connection and RBAC set-up, reachable from the same entry point as the store.
export type { EtcdAuth, EtcdConnectOptions } from "./etcd-client.js";
export {
  enableEtcdAuth,
  etcdRolesFor,
  setUpEtcdRoles,
  type EnableEtcdAuthOptions,
  type EtcdKeyLayout,
  type EtcdPermission,
  type EtcdPrincipal,
  type EtcdRegistryRole,
  type EtcdRolePlan,
  type EtcdRolesOptions,
  type EtcdRolesReport,
} from "./etcd-roles.js";

/**
 * Options of createEtcdStore. `hosts` are etcd client URLs (`http://127.0.0.1:2379`, or
 * `https://` with `tls`); a region's registry client usually names its own region's member only,
 * so serializable reads are local. `tls` and `auth` are how production etcd is reached: see
 * EtcdConnectOptions and docs/registry.md ("etcd with TLS and authentication").
 */
export interface EtcdStoreOptions extends EtcdConnectOptions {
  /** Default timeout of every call in ms. Default 5000. */
  readonly timeoutMs?: number;
  /**
   * Where write-id markers live (one small key per write, on a lease, so `resolveWrite` can
   * answer for good). Default `__meridian/writes/`.
   */
  readonly markerPrefix?: string;
  /** How long a write id can be resolved after its write, ms. Default 10 minutes. */
  readonly markerTtlMs?: number;
  /** gRPC keepalive ping interval, ms (detects dead connections under watches). Default 10 000. */
  readonly keepaliveMs?: number;
  /** Extra gRPC channel options for the etcd3 client. */
  readonly grpcOptions?: IOptions["grpcOptions"];
}

const ENVELOPE = "mw1:";
const APPLIED = "a";
const ABORTED = "x";

/** Wraps a value with its write id: `mw1:<writeId>:<value>`, readable with etcdctl. */
export function encodeEnvelope(writeId: string, value: string): string {
  return `${ENVELOPE}${writeId}:${value}`;
}

/** Splits a stored value into write id and value; foreign values get write id "". */
export function decodeEnvelope(raw: string): { writeId: string; value: string } {
  if (raw.startsWith(ENVELOPE)) {
    const end = raw.indexOf(":", ENVELOPE.length);
    if (end > 0) return { writeId: raw.slice(ENVELOPE.length, end), value: raw.slice(end + 1) };
  }
  return { writeId: "", value: raw };
}

interface RawKv {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  lease: string;
}

function toKeyValue(raw: RawKv): KeyValue {
  const { writeId, value } = decodeEnvelope(raw.value.toString("utf8"));
  return {
    key: raw.key.toString("utf8"),
    value,
    modRevision: Number(raw.mod_revision),
    createRevision: Number(raw.create_revision),
    version: Number(raw.version),
    lease: raw.lease && raw.lease !== "0" ? raw.lease : undefined,
    writeId,
  };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The request certainly never left this process (no connection to send it on). */
function notSent(e: unknown): boolean {
  return /No connection established|ECONNREFUSED|connect ECONN|Client was closed|client was already closed/i.test(messageOf(e));
}

function leaseNotFound(e: unknown): boolean {
  return /requested lease not found/i.test(messageOf(e));
}

/** etcd rejected the request before proposing it: nothing was applied. */
function rejectedBeforeProposal(e: unknown): boolean {
  return /too many requests|request is too large|permission denied|user name is empty|invalid auth token|key is not provided|InvalidArgument/i.test(
    messageOf(e),
  );
}

/** etcd3's fault handling replaced by a pass-through: retries here could duplicate writes. */
const passThrough = {
  execute: <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T) =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
} as unknown as NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

/**
 * Creates a Store on etcd (v3 API, through the etcd3 client). Writes are transactions compared
 * on the key's mod revision (`version == 0` for create-if-absent) that also create the write's
 * marker key; reads are linearizable unless `serializable` is asked; leases are etcd leases;
 * watches are etcd watches, resumed after reconnects from the last revision seen.
 *
 * Errors: a write whose request may have reached etcd (deadline, connection lost, leader
 * change) throws OutcomeUnknownError; `resolveWrite` then answers from the marker, creating an
 * "aborted" marker when there is none so that the write can never apply later. etcd refusing
 * the credentials (`tls`, `auth`) or the user's permissions is a StoreError UNAUTHENTICATED or
 * PERMISSION_DENIED that names the member, the user and the operation.
 */
export function createEtcdStore(options: EtcdStoreOptions = {}): Store {
  const hosts = etcdHosts(options);
  const keepaliveMs = options.keepaliveMs ?? 10_000;
  const timeoutMs = options.timeoutMs ?? 5000;
  // One client per host: etcd3's own pool picks a host at random per call, so with one member
  // frozen or cut off about every other call would wait for it. The store fails over itself.
  // The password exchange gets a member's share of a call's budget, as the call itself does in
  // failover: a frozen first member must leave time for the next.
  const authTimeoutMs = Math.max(500, Math.floor(timeoutMs / hosts.length));
  const clients = hosts.map((host) => {
    const connect = etcd3Options(host, options, authTimeoutMs);
    return new EtcdHost(
      host,
      new Etcd3({
        ...connect,
        faultHandling: { host: () => passThrough, global: passThrough },
        grpcOptions: {
          "grpc.keepalive_time_ms": keepaliveMs,
          "grpc.keepalive_timeout_ms": Math.max(1000, Math.floor(keepaliveMs / 2)),
          "grpc.keepalive_permit_without_calls": 1,
          "grpc.initial_reconnect_backoff_ms": 100,
          "grpc.max_reconnect_backoff_ms": 2000,
          ...connect.grpcOptions,
          ...options.grpcOptions,
        },
      }),
    );
  });
  return new EtcdStore(clients, options);
}

/** One etcd member's client, with its URL for messages. */
class EtcdHost {
  constructor(
    readonly url: string,
    readonly client: Etcd3,
  ) {}
}

/** An etcd error in words an operator can act on (grpc-js says "Waiting for LB pick" when it never connected). */
function describeEtcdError(e: unknown, host: EtcdHost, options: EtcdConnectOptions): string {
  const tls = describeTlsFailure(e, host.url, options);
  if (tls !== undefined) return tls.message;
  const message = messageOf(e);
  if (/Waiting for LB pick|No connection established|ECONNREFUSED|connect ECONN/i.test(message)) {
    const hint = host.url.startsWith("http://") ? "; if it serves TLS, use an https:// host (etcds:// in a registry URL) with its CA" : "";
    return `could not connect to etcd at ${host.url} (is the member running and reachable from here?)${hint}`;
  }
  if (/DEADLINE_EXCEEDED|Deadline exceeded|timed out/i.test(message)) {
    return `etcd at ${host.url} did not answer in time (the member may be frozen, cut off from its peers, or without quorum)`;
  }
  return `etcd at ${host.url}: ${message}`;
}

/** An answer from etcd (as opposed to "could not reach it in time"): another member would say the same. */
function answered(e: unknown): boolean {
  return leaseNotFound(e) || rejectedBeforeProposal(e);
}

/** One lease renewal on one member: a keepalive stream, one request, its answer (or the deadline). */
async function keepAliveOnce(client: Etcd3, lease: LeaseId, deadline: number): Promise<{ ttlMs: number }> {
  let stream: Awaited<ReturnType<Etcd3["leaseClient"]["leaseKeepAlive"]>> | undefined;
  try {
    stream = await client.leaseClient.leaseKeepAlive({ deadline });
    const s = stream;
    const ttl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("keepalive timed out")), Math.max(1, deadline - Date.now()));
      s.on("data", (res: { TTL: string }) => {
        clearTimeout(timer);
        resolve(res.TTL);
      });
      s.on("error", (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      });
      s.write({ ID: lease });
    });
    if (Number(ttl) <= 0) throw new LeaseNotFoundError(lease);
    return { ttlMs: Number(ttl) * 1000 };
  } finally {
    // etcd3's own error listener would take our cancel for a failed member and close its channel
    // under the next call ("Channel closed before call started"): drop it first.
    (stream as unknown as NodeJS.EventEmitter | undefined)?.removeAllListeners("error");
    stream?.on("error", () => undefined);
    (stream as unknown as { cancel?: () => void } | undefined)?.cancel?.();
  }
}

class EtcdStore implements Store {
  readonly kind = "etcd";
  private readonly timeoutMs: number;
  private readonly markerPrefix: string;
  private readonly markerTtlMs: number;
  private markerLease: { id: string; grantedAt: number } | undefined;
  private granting: Promise<string> | undefined;
  private readonly watches = new Set<AsyncQueue<WatchBatch>>();
  private closed = false;
  /** The host tried first: the first given, then whichever answered last after a failover. */
  private preferred = 0;

  /** Who etcd sees in this client, for messages. */
  private readonly identity: string;
  /** The TLS options, for messages. */
  private readonly connect: EtcdConnectOptions;

  constructor(
    private readonly hosts: readonly EtcdHost[],
    options: EtcdStoreOptions,
  ) {
    this.identity = etcdIdentity(options);
    this.connect = options.tls === undefined ? {} : { tls: options.tls };
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.markerPrefix = options.markerPrefix ?? "__meridian/writes/";
    this.markerTtlMs = options.markerTtlMs ?? 600_000;
  }

  async get(key: string, options: ReadOptions = {}): Promise<GetResult> {
    const res = await this.read(key, options, (client, deadline) =>
      client.kv.range({ key: Buffer.from(key), serializable: options.mode === "serializable" }, { deadline }),
    );
    const raw = res.kvs[0] as RawKv | undefined;
    return { kv: raw ? toKeyValue(raw) : undefined, revision: Number(res.header.revision) };
  }

  async list(prefix: string, options: ReadOptions = {}): Promise<ListResult> {
    const key = Buffer.from(prefix.length === 0 ? "\0" : prefix);
    const range_end = prefix.length === 0 ? Buffer.from([0]) : prefixEnd(key);
    const res = await this.read(prefix, options, (client, deadline) =>
      client.kv.range({ key, range_end, serializable: options.mode === "serializable" }, { deadline }),
    );
    const kvs = (res.kvs as RawKv[]).map(toKeyValue).filter((kv) => !kv.key.startsWith(this.markerPrefix));
    return { kvs, revision: Number(res.header.revision) };
  }

  async compareAndSet(key: string, value: string, expected: number, options: WriteOptions = {}): Promise<WriteResult> {
    if (key.length === 0) throw new StoreError("INVALID_ARGUMENT", "keys must not be empty");
    const writeId = checkWriteId(options.writeId ?? newWriteId());
    const keyBuf = Buffer.from(key);
    const compare =
      expected === 0
        ? { key: keyBuf, target: "Version" as const, result: "Equal" as const, version: 0 }
        : { key: keyBuf, target: "Mod" as const, result: "Equal" as const, mod_revision: expected };
    const put = { request_put: { key: keyBuf, value: Buffer.from(encodeEnvelope(writeId, value)), lease: options.lease ?? 0 } };
    return this.write(key, writeId, options, compare, put, options.lease);
  }

  async delete(key: string, expected?: number, options: Omit<WriteOptions, "lease"> = {}): Promise<WriteResult> {
    if (key.length === 0) throw new StoreError("INVALID_ARGUMENT", "keys must not be empty");
    const writeId = checkWriteId(options.writeId ?? newWriteId());
    const keyBuf = Buffer.from(key);
    const compare = expected === undefined ? undefined : { key: keyBuf, target: "Mod" as const, result: "Equal" as const, mod_revision: expected };
    return this.write(key, writeId, options, compare, { request_delete_range: { key: keyBuf } }, undefined);
  }

  async grantLease(ttlMs: number, options: { timeoutMs?: number } = {}): Promise<Lease> {
    this.checkOpen();
    const ttl = Math.max(1, Math.ceil(ttlMs / 1000));
    try {
      return await this.failover("lease grant", options.timeoutMs, async (client, deadline) => {
        const res = await client.leaseClient.leaseGrant({ TTL: ttl, ID: 0 }, { deadline });
        if (res.error) throw new Error(res.error);
        return { id: res.ID, ttlMs: Number(res.TTL) * 1000 };
      });
    } catch (e) {
      if (e instanceof StoreError) throw e;
      // An orphaned lease (granted, answer lost) just expires on its own: safe to report as failed.
      throw new StoreUnavailableError(`etcd did not grant a lease: ${messageOf(e)}`, { cause: e });
    }
  }

  async keepAlive(lease: LeaseId, options: { timeoutMs?: number } = {}): Promise<{ ttlMs: number }> {
    this.checkOpen();
    try {
      return await this.failover(`renewal of lease ${quote(lease)}`, options.timeoutMs, (client, deadline) => keepAliveOnce(client, lease, deadline));
    } catch (e) {
      if (e instanceof StoreError) throw e;
      if (leaseNotFound(e)) throw new LeaseNotFoundError(lease, { cause: e });
      throw new StoreUnavailableError(`etcd did not renew lease ${quote(lease)}: ${messageOf(e)}`, { cause: e });
    }
  }

  async revokeLease(lease: LeaseId, options: { timeoutMs?: number } = {}): Promise<void> {
    this.checkOpen();
    try {
      await this.failover(`revocation of lease ${quote(lease)}`, options.timeoutMs, (client, deadline) => client.leaseClient.leaseRevoke({ ID: lease }, { deadline }));
    } catch (e) {
      if (leaseNotFound(e)) return;
      if (e instanceof StoreError) throw e;
      throw new StoreUnavailableError(`etcd did not revoke lease ${lease}: ${messageOf(e)}`, { cause: e });
    }
  }

  async resolveWrite(writeId: string, options: { timeoutMs?: number } = {}): Promise<WriteResolution> {
    this.checkOpen();
    checkWriteId(writeId);
    const marker = Buffer.from(this.markerPrefix + writeId);
    try {
      const lease = await this.markerLeaseId(options.timeoutMs);
      // Idempotent: whichever member the fencing write reached, a retry elsewhere reads the marker.
      const res = await this.failover(`resolution of write ${writeId} (its marker ${quote(marker.toString())})`, options.timeoutMs, (client, deadline) =>
        client.kv.txn(
          {
            compare: [{ key: marker, target: "Version", result: "Equal", version: 0 }],
            success: [{ request_put: { key: marker, value: Buffer.from(ABORTED), lease } }],
            failure: [{ request_range: { key: marker } }],
          },
          { deadline },
        ),
      );
      if (res.succeeded) return { status: "not_applied" };
      const raw = res.responses[0]?.response_range.kvs[0] as RawKv | undefined;
      if (raw && raw.value.toString() === APPLIED) return { status: "applied", revision: Number(raw.mod_revision) };
      return { status: "not_applied" };
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreUnavailableError(`etcd could not resolve write ${writeId} yet: ${messageOf(e)}`, { cause: e });
    }
  }

  watch(prefix: string, fromRevision: number, options: WatchOptions = {}): AsyncIterable<WatchBatch> {
    this.checkOpen();
    return new EtcdWatch(this.watchHosts, prefix, fromRevision, this.markerPrefix, options.signal, this.watches).queue;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const queue of [...this.watches]) queue.end();
    for (const host of this.hosts) host.client.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /** What a watch needs from the store: the host to watch on now, a way to give up on one, and its refusals typed. */
  private readonly watchHosts: WatchHosts = {
    current: (): EtcdHost => this.hosts[this.preferred]!,
    failed: (host: EtcdHost): void => {
      if (this.hosts[this.preferred] === host) this.preferred = (this.preferred + 1) % this.hosts.length;
    },
    refusal: (e: unknown, host: EtcdHost, what: string): StoreError | undefined => etcdRefusal(e, host.url, this.identity, what),
  };

  /**
   * Runs one call against the members, the preferred one first. A member that does not answer
   * within its share of the budget (the budget split evenly over the members left), or cannot be
   * reached, gives way to the next, which becomes the preferred one when it answers: so a frozen
   * or cut-off member costs one share of one call, not every call. An answer (an etcd error that
   * any member would give) ends the call at once. With one host, it gets the whole budget.
   * `call` must be safe to repeat on another member: reads, and writes made idempotent by their
   * write id.
   */
  private async failover<T>(
    what: string,
    timeoutMs: number | undefined,
    call: (client: Etcd3, deadline: number, host: EtcdHost) => Promise<T>,
  ): Promise<T> {
    const end = Date.now() + (timeoutMs ?? this.timeoutMs);
    const n = this.hosts.length;
    const start = this.preferred;
    const errors: string[] = [];
    let unsent = 0;
    let refusedTls = 0;
    let last: unknown;
    for (let i = 0; i < n; i++) {
      const index = (start + i) % n;
      const host = this.hosts[index]!;
      const left = end - Date.now();
      if (left <= 0 && i > 0) break;
      const share = i === n - 1 ? left : Math.floor(left / (n - i));
      try {
        const result = await call(host.client, Date.now() + Math.max(1, share), host);
        this.preferred = index;
        return result;
      } catch (e) {
        // A refused password or permission: every member would say the same.
        const refusal = etcdRefusal(e, host.url, this.identity, what);
        if (refusal !== undefined) throw refusal;
        if (answered(e) || e instanceof StoreError) throw e;
        last = e;
        const tls = describeTlsFailure(e, host.url, this.connect);
        if (tls?.code === "UNAUTHENTICATED") refusedTls++;
        const described = describeEtcdError(e, host, this.connect);
        if (tls !== undefined || described.startsWith("could not connect")) unsent++;
        errors.push(described);
      }
    }
    // Every member refused the certificates: a set-up error that waiting will not fix.
    if (refusedTls > 0 && refusedTls === errors.length) throw new StoreError("UNAUTHENTICATED", errors.join("; "), { cause: last });
    const error = new Error(errors.join("; "), { cause: last });
    // Keep what the classifiers look for (connection refused, deadline) visible.
    throw Object.assign(error, { allUnsent: errors.length === n && unsent === n });
  }

  private async read<T>(key: string, options: ReadOptions, op: (client: Etcd3, deadline: number) => Promise<T>): Promise<T> {
    this.checkOpen();
    if (options.signal?.aborted) throw abortedError({ key }, false);
    try {
      return await bounded(this.failover(`${options.mode ?? "linearizable"} read of ${quote(key)}`, options.timeoutMs, op), { signal: options.signal }, () => new StoreUnavailableError(`etcd read of ${quote(key)} cancelled`));
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreUnavailableError(`etcd read failed (${options.mode ?? "linearizable"}): ${messageOf(e)}`, { cause: e });
    }
  }

  /** The lease write markers live under; a fresh one every half marker TTL. */
  private async markerLeaseId(timeoutMs: number | undefined): Promise<string> {
    const current = this.markerLease;
    if (current && performance.now() - current.grantedAt < this.markerTtlMs / 2) return current.id;
    this.granting ??= this.grantLease(this.markerTtlMs, timeoutMs === undefined ? {} : { timeoutMs })
      .then((lease) => {
        this.markerLease = { id: lease.id, grantedAt: performance.now() };
        return lease.id;
      })
      .finally(() => {
        this.granting = undefined;
      });
    return this.granting;
  }

  /**
   * One write as a transaction: if the marker does not exist (and the key compare and the fence
   * hold), do the operation and create the marker; otherwise read the key, the marker and the
   * fence key, to tell a retry of an applied write, a refused fence and a failed compare apart.
   */
  private async write(
    key: string,
    writeId: string,
    options: { timeoutMs?: number; signal?: AbortSignal; fence?: Fence },
    compare: { key: Buffer; target: "Version" | "Mod"; result: "Equal"; version?: number; mod_revision?: number } | undefined,
    op: object,
    userLease: LeaseId | undefined,
  ): Promise<WriteResult> {
    this.checkOpen();
    const { timeoutMs, signal } = options;
    const fence = checkFence(options.fence);
    const marker = Buffer.from(this.markerPrefix + writeId);
    const fenceKey = fence === undefined ? undefined : Buffer.from(fence.key);
    for (let attempt = 0; ; attempt++) {
      // Failing to get the marker lease means nothing was sent: a definite failure.
      const markerLease = await this.markerLeaseId(timeoutMs);
      if (signal?.aborted) throw abortedError({ key, writeId }, false);
      let res;
      try {
        res = await bounded(
          // Safe to send again to another member: the marker makes a second copy a no-op.
          this.failover(`write to ${quote(key)}`, timeoutMs, (client, deadline) =>
            client.kv.txn(
            {
              compare: [
                { key: marker, target: "Version", result: "Equal", version: 0 },
                ...(compare ? [compare] : []),
                ...(fenceKey ? [{ key: fenceKey, target: "Mod" as const, result: "Equal" as const, mod_revision: fence!.modRevision }] : []),
              ],
              success: [op, { request_put: { key: marker, value: Buffer.from(APPLIED), lease: markerLease } }],
              failure: [{ request_range: { key: Buffer.from(key) } }, { request_range: { key: marker } }, ...(fenceKey ? [{ request_range: { key: fenceKey } }] : [])],
            },
            { deadline },
          )),
          { signal },
          () => abortedError({ key, writeId }, true),
        );
      } catch (e) {
        if (e instanceof StoreError) throw e;
        if (leaseNotFound(e)) {
          // Either lease may be gone; etcd checks leases before applying, so nothing happened.
          this.markerLease = undefined;
          if (attempt === 0) continue;
          throw new LeaseNotFoundError(userLease ?? markerLease, { cause: e });
        }
        if ((e as { allUnsent?: boolean }).allUnsent === true || notSent(e) || rejectedBeforeProposal(e)) {
          throw new StoreUnavailableError(`etcd write to ${quote(key)} was not applied: ${messageOf(e)}`, { cause: e });
        }
        throw new OutcomeUnknownError(writeId, key, { cause: e });
      }
      const revision = Number(res.header.revision);
      if (res.succeeded) return { ok: true, revision, writeId };
      const markerKv = res.responses[1]?.response_range.kvs[0] as RawKv | undefined;
      if (markerKv && markerKv.value.toString() === APPLIED) {
        // A retry of a write that was applied: answer with the first attempt's outcome.
        return { ok: true, revision: Number(markerKv.mod_revision), writeId };
      }
      if (fence !== undefined) {
        const fenceKv = res.responses[2]?.response_range.kvs[0] as RawKv | undefined;
        const current = fenceKv ? Number(fenceKv.mod_revision) : 0;
        if (current !== fence.modRevision) throw new FencedError(key, fence, current);
      }
      const raw = res.responses[0]?.response_range.kvs[0] as RawKv | undefined;
      return { ok: false, current: raw ? toKeyValue(raw) : undefined, revision };
    }
  }
}

type WatchStream = Awaited<ReturnType<Etcd3["watchClient"]["watch"]>>;

/** What an EtcdWatch needs from its store. */
interface WatchHosts {
  /** The host to watch on now. */
  current(): EtcdHost;
  /** Gives up on a host (the next call or watch tries the next member). */
  failed(host: EtcdHost): void;
  /** etcd's refusal of this client's credentials or permissions, typed; undefined for other errors. */
  refusal(e: unknown, host: EtcdHost, what: string): StoreError | undefined;
}

/**
 * One Store watch on etcd: a raw watch stream, re-created after errors from the revision after
 * the last event delivered, so the consumer sees every change once and in order.
 */
class EtcdWatch {
  readonly queue: AsyncQueue<WatchBatch>;
  private next: number;
  private stream: WatchStream | undefined;
  private stopped = false;
  private backoffMs = 100;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly key: Buffer;
  private readonly rangeEnd: Buffer;

  /** The host the current stream is on. */
  private host: EtcdHost | undefined;

  constructor(
    private readonly hosts: WatchHosts,
    private readonly prefix: string,
    fromRevision: number,
    private readonly markerPrefix: string,
    signal: AbortSignal | undefined,
    registry: Set<AsyncQueue<WatchBatch>>,
  ) {
    this.next = fromRevision;
    this.key = Buffer.from(prefix.length === 0 ? "\0" : prefix);
    this.rangeEnd = prefix.length === 0 ? Buffer.from([0]) : prefixEnd(this.key);
    const onAbort = () => this.queue.end();
    this.queue = new AsyncQueue(() => {
      this.stop();
      signal?.removeEventListener("abort", onAbort);
      registry.delete(this.queue);
    });
    registry.add(this.queue);
    if (signal?.aborted) {
      this.queue.end();
      return;
    }
    signal?.addEventListener("abort", onAbort);
    void this.connect();
  }

  private stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.closeStream();
  }

  private closeStream(): void {
    const stream = this.stream;
    this.stream = undefined;
    if (!stream) return;
    const raw = stream as unknown as NodeJS.EventEmitter & { cancel?: () => void };
    raw.removeAllListeners();
    raw.on("error", () => undefined);
    raw.cancel?.();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let stream: WatchStream;
    const host = this.hosts.current();
    try {
      stream = await host.client.watchClient.watch();
    } catch (e) {
      // A refused password does not heal by retrying: end the watch with it.
      const refusal = this.hosts.refusal(e, host, this.what);
      if (refusal !== undefined) {
        this.queue.fail(refusal);
        return;
      }
      this.hosts.failed(host);
      this.retry();
      return;
    }
    this.host = host;
    if (this.stopped) {
      (stream as unknown as { cancel?: () => void }).cancel?.();
      return;
    }
    this.stream = stream;
    stream.on("data", (res) => this.onResponse(res));
    stream.on("error", () => {
      // Watch the next member from now on (the store's failover does the same for calls).
      if (this.host) this.hosts.failed(this.host);
      this.retry();
    });
    stream.on("end", () => this.retry());
    stream.write({
      create_request: { key: this.key, range_end: this.rangeEnd, start_revision: this.next, progress_notify: true },
    });
  }

  /** The watch as refusals name it. */
  private get what(): string {
    return `watch of ${quote(this.prefix)}`;
  }

  /**
   * etcd cancels a watch with "permission denied" both when the user may not read the range and
   * when its auth token has expired (etcd3 renews tokens on unary calls only). A one-key read of
   * the same range tells them apart, renewing the token if that was it: readable means watch
   * again; refused means the watch ends with PERMISSION_DENIED.
   */
  private async recheckPermission(): Promise<void> {
    this.closeStream();
    const host = this.host ?? this.hosts.current();
    try {
      await host.client.kv.range({ key: this.key, range_end: this.rangeEnd, limit: 1, keys_only: true, serializable: true }, { deadline: Date.now() + 5000 });
    } catch (e) {
      const refusal = this.hosts.refusal(e, host, this.what);
      if (refusal !== undefined && !this.stopped) {
        this.queue.fail(refusal);
        return;
      }
    }
    this.retry();
  }

  private retry(): void {
    this.closeStream();
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, this.backoffMs);
    this.backoffMs = Math.min(2000, this.backoffMs * 2);
  }

  private onResponse(res: {
    header: { revision: string };
    created: boolean;
    canceled: boolean;
    compact_revision: string;
    cancel_reason: string;
    events: { type: string; kv: RawKv }[];
  }): void {
    if (this.stopped) return;
    this.backoffMs = 100;
    if (res.canceled && /permission denied/i.test(res.cancel_reason)) {
      void this.recheckPermission();
      return;
    }
    if (res.canceled) {
      const compact = Number(res.compact_revision);
      this.queue.fail(
        compact > 0 ? new CompactedError(compact) : new StoreUnavailableError(`etcd cancelled the watch on ${quote(this.prefix)}: ${res.cancel_reason}`),
      );
      return;
    }
    if (res.created) {
      if (this.next === 0) this.next = Number(res.header.revision) + 1;
      return;
    }
    const events: WatchEvent[] = [];
    let last = 0;
    for (const e of res.events) {
      const revision = Number(e.kv.mod_revision);
      last = Math.max(last, revision);
      const key = e.kv.key.toString("utf8");
      if (key.startsWith(this.markerPrefix)) continue;
      events.push(e.type === "Delete" || e.type === "DELETE" ? { type: "delete", key, revision } : { type: "put", key, kv: toKeyValue(e.kv), revision });
    }
    if (res.events.length > 0) {
      this.next = last + 1;
      if (events.length > 0) this.queue.push({ events, revision: last });
    } else {
      // A progress notification: nothing changed up to the header revision.
      const revision = Number(res.header.revision);
      if (revision >= this.next) this.next = revision + 1;
      this.queue.push({ events: [], revision });
    }
  }
}
