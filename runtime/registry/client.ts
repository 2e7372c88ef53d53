import type { Endpoint } from "../rpc/transport.js";
import {
  CompactedError,
  LeaseNotFoundError,
  type LeaseId,
  OutcomeUnknownError,
  StoreError,
  StoreUnavailableError,
  newWriteId,
  type GetResult,
  type KeyValue,
  type ListResult,
  type ReadOptions,
  type Store,
  type WatchBatch,
  type WatchOptions,
  type WriteOptions,
  type WriteResult,
} from "./store.js";

/** What an instance registers: where a service can be called. */
export interface InstanceInfo {
  /** Fully qualified service name (`feed.FeedService`). */
  readonly service: string;
  /** The instance's region; default the registry client's. */
  readonly region?: string;
  /** Where to call it (`host:port` for TCP). */
  readonly address: string;
  /** Which transport serves it (`tcp`, `grpc`, `nats`, ...). */
  readonly transport: string;
  /** Load-balancing weight; default 1, 0 takes it out of rotation. */
  readonly weight?: number;
  readonly tags?: Readonly<Record<string, string>>;
  /** Stable instance id; default a random one. */
  readonly id?: string;
}

/** A registered instance as resolve returns it. */
export interface Instance {
  readonly id: string;
  readonly service: string;
  readonly region: string;
  readonly address: string;
  readonly transport: string;
  readonly weight: number;
  readonly tags: Readonly<Record<string, string>>;
  /** The store revision of its registration. */
  readonly revision: number;
}

/**
 * A service's primary region as stored in the registry. `epoch` grows by one with every move.
 * A primary stops accepting writes once it could not confirm its role for `leaseMs`; so after a
 * move the new primary waits `previousLeaseMs` from the moment it learned of the move (which took
 * effect after the old primary's last confirmation), and the two never overlap.
 */
export interface PrimaryRecord {
  readonly region: string;
  readonly epoch: number;
  /** Wall-clock ms when this record was written (informational; the first primary acts from `since + leaseMs`). */
  readonly since: number;
  /** How long a primary may act on a confirmation of its role, ms. */
  readonly leaseMs: number;
  /** The lease of the primary this record replaced; absent for a first primary (nothing to wait for). */
  readonly previousLeaseMs?: number;
}

/** A primary record with the store revision it was read at. */
export interface PrimaryInfo extends PrimaryRecord {
  readonly revision: number;
}

/** What the local cache knows about one service. */
export interface ServiceSnapshot {
  readonly service: string;
  /** Every instance, in key order. */
  readonly instances: readonly Instance[];
  /**
   * Instances as endpoints, of one region (or all) and one transport kind (or all: `tcp`,
   * `grpc`, `nats`, as registered); the same array while that set is unchanged.
   */
  endpoints(region?: string, transport?: string): readonly Endpoint[];
  readonly primary: PrimaryInfo | undefined;
  /** Wall-clock ms of the last linearizable read that confirmed `primary` (0: never). */
  readonly primaryConfirmedAt: number;
  /** Wall-clock ms when this cache first saw the current primary record (0: no record). */
  readonly primaryLearnedAt: number;
  /** The cache's store revision (0 until its first sync). */
  readonly revision: number;
  /** The store key of the service's primary record: what a primary's fenced writes are fenced on. */
  readonly primaryKey: string;
}

/** How well the registry client is in touch with its store. */
export interface RegistryHealth {
  /** The last linearizable read succeeded within `staleAfterMs`. */
  readonly reachable: boolean;
  /** Wall-clock ms when the last successful linearizable read was issued (0: never). */
  readonly lastContactAt: number;
  /** Ms since then (Infinity: never). */
  readonly staleMs: number;
}

/** A registration kept alive by the registry client. */
export interface Registration {
  readonly id: string;
  readonly key: string;
  readonly instance: Instance;
  /** How many times its key was found gone or changed (deleted, lost with its lease, a restored store) and written again. */
  readonly healed: number;
  /** Revokes the lease (the instance disappears at once) and stops the keepalive. */
  deregister(): Promise<void>;
}

/** Options of createRegistry. */
export interface RegistryOptions {
  /**
   * The store (createEmbeddedStore, createRemoteStore, createEtcdStore, openRegistryStore).
   * Default: an embedded store in this process, opened on first use (one process: tests,
   * examples, a single-machine deployment; several processes share one through serveRegistry).
   */
  readonly store?: Store;
  /** This process's region. */
  readonly region: string;
  /** Prefix of every key the registry writes. Default `meridian/`. */
  readonly prefix?: string;
  /** TTL of an instance's lease, ms. Default 6000. */
  readonly leaseTtlMs?: number;
  /** How often the store is probed (linearizable read) and primaries re-confirmed, ms. Default 500. */
  readonly healthIntervalMs?: number;
  /** Past this without a successful probe, the store counts as unreachable, ms. Default 3 probes. */
  readonly staleAfterMs?: number;
  /** `leaseMs` written into new primary records. Default 2000. */
  readonly primaryLeaseMs?: number;
  /** Timeout of the registry's own store calls, ms. Default 1000. */
  readonly timeoutMs?: number;
  /** Close the store with the registry. Default true. */
  readonly ownStore?: boolean;
}

/** A compare-and-set on the primary record failed because another move got there first. */
export class PrimaryConflictError extends StoreError {
  override readonly name = "PrimaryConflictError";
  constructor(
    readonly service: string,
    readonly current: PrimaryInfo | undefined,
  ) {
    super(
      "INVALID_ARGUMENT",
      `the primary of ${service} changed meanwhile (now ${current ? `${current.region}, epoch ${current.epoch}` : "unset"}); read it again and retry the move`,
    );
  }
}

/**
 * The key/value API of the registry: keys live under `<prefix>kv/` in the store, and every key
 * given or returned here is relative to that space (`balance/alice`). For writes made on behalf
 * of a primary, use fencedKv(registry, ctx) in the handler: it carries the call's fence.
 */
export interface RegistryKv {
  /** Reads one key (linearizable unless `mode: "serializable"`). */
  get(key: string, options?: ReadOptions): Promise<GetResult>;
  /** Reads every key starting with `prefix`, in key order. */
  list(prefix: string, options?: ReadOptions): Promise<ListResult>;
  /** Streams changes under `prefix` from `fromRevision` (0: from now); see Store.watch. */
  watch(prefix: string, fromRevision: number, options?: WatchOptions): AsyncIterable<WatchBatch>;
  /** Creates the key if absent. */
  create(key: string, value: string, options?: WriteOptions): Promise<WriteResult>;
  /** Writes if the key's mod revision is still `expectedModRevision`. */
  cas(key: string, value: string, expectedModRevision: number, options?: WriteOptions): Promise<WriteResult>;
  /** Deletes the key if its mod revision is still `expectedModRevision` (undefined: unconditionally). */
  delete(key: string, expectedModRevision?: number, options?: Omit<WriteOptions, "lease">): Promise<WriteResult>;
}

/** A RegistryKv over the keys of `store` under `space`, with keys relative to it. */
function prefixedKv(store: Store, space: string): RegistryKv {
  const relative = (kv: KeyValue): KeyValue => ({ ...kv, key: kv.key.slice(space.length) });
  const result = (r: WriteResult): WriteResult => (r.ok || r.current === undefined ? r : { ...r, current: relative(r.current) });
  return {
    get: async (key, options) => {
      const r = await store.get(space + key, options);
      return r.kv === undefined ? r : { kv: relative(r.kv), revision: r.revision };
    },
    list: async (prefix, options) => {
      const r = await store.list(space + prefix, options);
      return { kvs: r.kvs.map(relative), revision: r.revision };
    },
    async *watch(prefix, fromRevision, options) {
      for await (const batch of store.watch(space + prefix, fromRevision, options)) {
        yield {
          revision: batch.revision,
          events: batch.events.map((e) =>
            e.type === "put" ? { ...e, key: e.key.slice(space.length), kv: relative(e.kv) } : { ...e, key: e.key.slice(space.length) },
          ),
        };
      }
    },
    create: async (key, value, options) => result(await store.compareAndSet(space + key, value, 0, options)),
    cas: async (key, value, expected, options) => result(await store.compareAndSet(space + key, value, expected, options)),
    delete: async (key, expected, options) => result(await store.delete(space + key, expected, options)),
  };
}

/**
 * The registry client: registers instances under leases, resolves services from a watch-fed
 * cache, keeps each service's primary region (moved by compare-and-set with an epoch), and
 * probes its store so routing knows when the registry cannot be reached.
 */
export interface Registry {
  readonly region: string;
  readonly store: Store;
  readonly kv: RegistryKv;
  /** Registers an instance under a lease, kept alive until `deregister` (or the process dies). */
  register(info: InstanceInfo): Promise<Registration>;
  /**
   * The instances of a service (from the cache, synced on first use): all, or only one region's
   * and/or one transport kind's.
   */
  resolve(service: string, options?: { region?: string; transport?: string }): Promise<Instance[]>;
  /** The cache's view of a service, synced on first use and kept up to date by a watch. */
  view(service: string): Promise<ServiceSnapshot>;
  /**
   * The same view without waiting: what routing reads on every call. It is live (it changes as
   * the watch delivers) and, until the first sync, empty with `revision` 0: then await `view`.
   */
  snapshot(service: string): ServiceSnapshot;
  /** Calls `listener` with the service's view on every change; returns its removal. */
  subscribe(service: string, listener: (view: ServiceSnapshot) => void): () => void;
  /** Reads the primary record (linearizable) and updates the cache. */
  primary(service: string): Promise<PrimaryInfo | undefined>;
  /** Makes `region` the primary unless the service already has one; returns the record. */
  ensurePrimary(service: string, region: string): Promise<PrimaryInfo>;
  /**
   * Moves the primary to `region` by compare-and-set, bumping the epoch. With `expectedEpoch`,
   * fails with PrimaryConflictError unless the current epoch is that one. The new record keeps
   * the current record's `leaseMs` unless `leaseMs` is given.
   */
  movePrimary(service: string, region: string, options?: { expectedEpoch?: number; leaseMs?: number }): Promise<PrimaryInfo>;
  health(): RegistryHealth;
  /**
   * Resolves once the store has answered a linearizable read (so routing knows the primaries)
   * and the caches of `services` are filled; call it before serving or calling. Rejects with
   * StoreUnavailableError after `timeoutMs` (default 10 000) without an answer.
   */
  ready(options?: { services?: readonly string[]; timeoutMs?: number }): Promise<void>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function parseInstance(kv: KeyValue): Instance | undefined {
  try {
    const v = JSON.parse(kv.value) as Partial<Instance>;
    if (typeof v.address !== "string" || typeof v.service !== "string" || typeof v.region !== "string") return undefined;
    return {
      id: String(v.id ?? kv.key),
      service: v.service,
      region: v.region,
      address: v.address,
      transport: String(v.transport ?? "tcp"),
      weight: typeof v.weight === "number" ? v.weight : 1,
      tags: v.tags ?? {},
      revision: kv.modRevision,
    };
  } catch {
    return undefined;
  }
}

function parsePrimary(kv: KeyValue | undefined): PrimaryInfo | undefined {
  if (!kv) return undefined;
  try {
    const v = JSON.parse(kv.value) as PrimaryRecord;
    if (typeof v.region !== "string" || typeof v.epoch !== "number") return undefined;
    return {
      region: v.region,
      epoch: v.epoch,
      since: v.since ?? 0,
      leaseMs: v.leaseMs ?? 2000,
      ...(typeof v.previousLeaseMs === "number" ? { previousLeaseMs: v.previousLeaseMs } : {}),
      revision: kv.modRevision,
    };
  } catch {
    return undefined;
  }
}

/**
 * Runs a write and settles an unknown outcome by its write id (retrying the resolution until the
 * store answers or `timeoutMs` passes): the registry's own writes are never left in doubt.
 */
async function settledWrite(store: Store, timeoutMs: number, write: (writeId: string) => Promise<WriteResult>): Promise<WriteResult> {
  const writeId = newWriteId();
  try {
    return await write(writeId);
  } catch (e) {
    if (!(e instanceof OutcomeUnknownError)) throw e;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let resolution;
      try {
        resolution = await store.resolveWrite(writeId, { timeoutMs: Math.max(100, deadline - Date.now()) });
      } catch {
        if (Date.now() > deadline) throw e;
        await sleep(100);
        continue;
      }
      if (resolution.status === "applied") return { ok: true, revision: resolution.revision, writeId };
      throw new StoreUnavailableError(`write to "${e.key}" was not applied (its answer was lost; resolved by write id)`, { cause: e });
    }
  }
}

/** The cache of one service: list, then watch from the list's revision, relist on compaction. */
class ServiceCache implements ServiceSnapshot {
  readonly instancesByKey = new Map<string, Instance>();
  primary: PrimaryInfo | undefined;
  primaryConfirmedAt = 0;
  primaryLearnedAt = 0;
  revision = 0;
  readonly ready: Promise<void>;
  private readyResolve!: () => void;
  private endpointCache = new Map<string, readonly Endpoint[]>();
  private sortedInstances: Instance[] | undefined;
  readonly listeners = new Set<(view: ServiceSnapshot) => void>();
  private readonly controller = new AbortController();

  constructor(
    readonly service: string,
    private readonly store: Store,
    private readonly servicePrefix: string,
    /** The store key of the service's primary record (what fenced writes are fenced on). */
    readonly primaryKey: string,
    private readonly timeoutMs: number,
  ) {
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
    void this.run();
  }

  get instances(): readonly Instance[] {
    return (this.sortedInstances ??= [...this.instancesByKey.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, i]) => i));
  }

  endpoints(region?: string, transport?: string): readonly Endpoint[] {
    const cacheKey = `${region ?? "\u0000all"}\u0000${transport ?? "\u0000any"}`;
    let list = this.endpointCache.get(cacheKey);
    if (!list) {
      list = this.instances
        .filter((i) => (region === undefined || i.region === region) && (transport === undefined || i.transport === transport))
        .map((i) => ({ address: i.address, region: i.region, weight: i.weight, tags: i.tags }));
      this.endpointCache.set(cacheKey, list);
    }
    return list;
  }

  /** A newer primary record (by revision) replaces the cached one. */
  learnPrimary(info: PrimaryInfo | undefined, revision: number, confirmedAt?: number): void {
    const before = this.primary;
    if (info === undefined ? revision >= (before?.revision ?? 0) : info.revision >= (before?.revision ?? 0)) {
      this.primary = info;
    }
    const changed = (this.primary?.revision ?? 0) !== (before?.revision ?? 0);
    if (changed) this.primaryLearnedAt = this.primary === undefined ? 0 : Date.now();
    if (confirmedAt !== undefined) this.primaryConfirmedAt = Math.max(this.primaryConfirmedAt, confirmedAt);
    if (changed) this.notify();
  }

  stop(): void {
    this.controller.abort();
  }

  private changed(): void {
    this.sortedInstances = undefined;
    this.endpointCache = new Map();
  }

  private notify(): void {
    for (const l of this.listeners) l(this);
  }

  private async run(): Promise<void> {
    const signal = this.controller.signal;
    let backoff = 100;
    while (!signal.aborted) {
      try {
        const listed = await this.store.list(this.servicePrefix, { timeoutMs: this.timeoutMs });
        this.instancesByKey.clear();
        let primary: PrimaryInfo | undefined;
        for (const kv of listed.kvs) {
          if (kv.key === this.primaryKey) primary = parsePrimary(kv);
          else {
            const instance = parseInstance(kv);
            if (instance) this.instancesByKey.set(kv.key, instance);
          }
        }
        this.revision = listed.revision;
        this.changed();
        this.learnPrimary(primary, listed.revision);
        this.notify();
        this.readyResolve();
        backoff = 100;
        for await (const batch of this.store.watch(this.servicePrefix, listed.revision + 1, { signal })) {
          let touched = false;
          for (const e of batch.events) {
            if (e.key === this.primaryKey) {
              this.learnPrimary(e.type === "put" ? parsePrimary(e.kv) : undefined, e.revision);
              continue;
            }
            touched = true;
            if (e.type === "put") {
              const instance = parseInstance(e.kv);
              if (instance) this.instancesByKey.set(e.key, instance);
              else this.instancesByKey.delete(e.key);
            } else this.instancesByKey.delete(e.key);
          }
          this.revision = Math.max(this.revision, batch.revision);
          if (touched) {
            this.changed();
            this.notify();
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        if (!(e instanceof CompactedError)) {
          await sleep(backoff);
          backoff = Math.min(2000, backoff * 2);
        }
      }
    }
  }
}

class RegistrationImpl implements Registration {
  readonly id: string;
  readonly key: string;
  readonly instance: Instance;
  /** How many times the key was found missing or changed and written again. */
  healed = 0;
  private readonly value: string;
  private lease: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The timer is a retry after a failed renewal (see retryNow). */
  private retrying = false;
  private renewing = false;
  /** The store came back while a renewal was out: retry at once if it fails. */
  private kicked = false;

  constructor(
    private readonly registry: RegistryImpl,
    info: InstanceInfo,
  ) {
    this.id = info.id ?? newWriteId();
    const region = info.region ?? registry.region;
    this.key = `${registry.servicePrefix(info.service)}instances/${region}/${this.id}`;
    this.instance = {
      id: this.id,
      service: info.service,
      region,
      address: info.address,
      transport: info.transport,
      weight: info.weight ?? 1,
      tags: info.tags ?? {},
      revision: 0,
    };
    this.value = JSON.stringify({ ...this.instance, revision: undefined });
  }

  /** Grants a lease and writes the instance under it (over any copy of an earlier registration). */
  async start(): Promise<void> {
    const lease = await this.registry.store.grantLease(this.registry.leaseTtlMs, { timeoutMs: this.registry.timeoutMs });
    await this.write(lease.id);
    this.lease = lease.id;
  }

  /** Writes the instance's key under `lease`, over whatever is there. */
  private async write(lease: LeaseId): Promise<void> {
    const store = this.registry.store;
    const timeoutMs = this.registry.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const current = (await store.get(this.key, { timeoutMs })).kv;
      const r = await settledWrite(store, timeoutMs, (writeId) =>
        store.compareAndSet(this.key, this.value, current?.modRevision ?? 0, { lease, writeId, timeoutMs }),
      );
      if (r.ok) return;
      if (attempt >= 5) throw new StoreUnavailableError(`could not register ${this.key}: it keeps changing`);
    }
  }

  /**
   * Checks that the instance's key is still there, ours and under our lease; when it is not
   * (deleted by hand, lost with its lease, or the store restored from an older snapshot), writes
   * it again, so the watch-fed caches everywhere see the instance again.
   */
  private async heal(lease: LeaseId): Promise<void> {
    const { kv } = await this.registry.store.get(this.key, { timeoutMs: this.registry.timeoutMs });
    if (kv !== undefined && kv.lease === lease && kv.value === this.value) return;
    await this.write(lease);
    this.healed++;
  }

  async deregister(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.registry.registrations.delete(this);
    if (this.lease !== undefined) await this.registry.store.revokeLease(this.lease, { timeoutMs: this.registry.timeoutMs });
  }

  /**
   * Every third of the TTL: renews the lease and checks the key is still there (writing it again
   * when not); registers again with a new lease when the lease ran out (cut off too long).
   */
  schedule(delayMs = this.registry.leaseTtlMs / 3, retry = false): void {
    if (this.stopped) return;
    this.retrying = retry;
    this.timer = setTimeout(() => void this.renew(), Math.max(50, delayMs));
    this.timer.unref();
  }

  /**
   * The registry heard from the store again after losing it: a renewal waiting out its retry
   * delay runs now, so an instance whose lease ran out during the cut is back in the views at
   * once rather than up to a retry delay after the heal.
   */
  retryNow(): void {
    if (this.stopped) return;
    // A renewal sent during the cut may still be waiting for its timeout: retry as soon as it fails.
    if (this.renewing) this.kicked = true;
    if (!this.retrying) return;
    if (this.timer) clearTimeout(this.timer);
    this.retrying = false;
    void this.renew();
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    this.retrying = false;
    this.renewing = true;
    this.kicked = false;
    try {
      if (this.lease !== undefined) {
        try {
          await this.registry.store.keepAlive(this.lease, { timeoutMs: this.registry.timeoutMs });
          await this.heal(this.lease);
          this.schedule();
          return;
        } catch (e) {
          if (!(e instanceof LeaseNotFoundError)) throw e;
          // The store answered, so it is reachable again after a cut longer than the TTL: register
          // again now, not after the retry delay (the instance is missing from every region's view,
          // its own region's included, until it does).
          this.lease = undefined;
        }
      }
      await this.start();
      this.schedule();
    } catch {
      this.schedule(this.kicked ? 0 : Math.min(500, this.registry.leaseTtlMs / 3), true);
    } finally {
      this.renewing = false;
    }
  }
}

class RegistryImpl implements Registry {
  readonly region: string;
  readonly store: Store;
  readonly prefix: string;
  readonly leaseTtlMs: number;
  readonly timeoutMs: number;
  readonly registrations = new Set<RegistrationImpl>();
  private readonly healthIntervalMs: number;
  private readonly staleAfterMs: number;
  private readonly primaryLeaseMs: number;
  private readonly caches = new Map<string, ServiceCache>();
  private lastContactAt = 0;
  private readonly firstContact: Promise<void>;
  private contacted!: () => void;
  private healthTimer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly kv: RegistryKv;

  constructor(private readonly options: RegistryOptions) {
    this.region = options.region;
    this.store = options.store ?? lazyStore(async () => (await import("./embedded/store.js")).createEmbeddedStore());
    this.firstContact = new Promise((resolve) => (this.contacted = resolve));
    this.prefix = options.prefix ?? "meridian/";
    this.leaseTtlMs = options.leaseTtlMs ?? 6000;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.healthIntervalMs = options.healthIntervalMs ?? 500;
    this.staleAfterMs = options.staleAfterMs ?? this.healthIntervalMs * 3;
    this.primaryLeaseMs = options.primaryLeaseMs ?? 2000;
    this.kv = prefixedKv(this.store, `${this.prefix}kv/`);
    void this.probe();
  }

  servicePrefix(service: string): string {
    return `${this.prefix}services/${service}/`;
  }

  private primaryKey(service: string): string {
    return `${this.servicePrefix(service)}primary`;
  }

  async register(info: InstanceInfo): Promise<Registration> {
    const registration = new RegistrationImpl(this, info);
    await registration.start();
    this.registrations.add(registration);
    registration.schedule();
    return registration;
  }

  async resolve(service: string, options: { region?: string; transport?: string } = {}): Promise<Instance[]> {
    const view = await this.view(service);
    return view.instances.filter(
      (i) => (options.region === undefined || i.region === options.region) && (options.transport === undefined || i.transport === options.transport),
    );
  }

  async view(service: string): Promise<ServiceSnapshot> {
    const cache = this.cache(service);
    await cache.ready;
    return cache;
  }

  snapshot(service: string): ServiceSnapshot {
    return this.cache(service);
  }

  /** The cache of a service, made on first use (its first sync starts then). */
  private cache(service: string): ServiceCache {
    let cache = this.caches.get(service);
    if (!cache) {
      cache = new ServiceCache(service, this.store, this.servicePrefix(service), this.primaryKey(service), this.timeoutMs);
      this.caches.set(service, cache);
    }
    return cache;
  }

  subscribe(service: string, listener: (view: ServiceSnapshot) => void): () => void {
    const cache = this.cache(service);
    cache.listeners.add(listener);
    return () => cache.listeners.delete(listener);
  }

  async primary(service: string): Promise<PrimaryInfo | undefined> {
    const issued = Date.now();
    const { kv, revision } = await this.store.get(this.primaryKey(service), { timeoutMs: this.timeoutMs });
    this.contact(issued);
    const info = parsePrimary(kv);
    this.caches.get(service)?.learnPrimary(info, revision, issued);
    return info;
  }

  async ensurePrimary(service: string, region: string): Promise<PrimaryInfo> {
    const existing = await this.primary(service);
    if (existing) return existing;
    // The first primary has no predecessor to wait for: it may act at once.
    const record: PrimaryRecord = { region, epoch: 1, since: Date.now() - this.primaryLeaseMs, leaseMs: this.primaryLeaseMs };
    const r = await settledWrite(this.store, this.timeoutMs * 5, (writeId) =>
      this.store.compareAndSet(this.primaryKey(service), JSON.stringify(record), 0, { writeId, timeoutMs: this.timeoutMs }),
    );
    if (!r.ok) return (await this.primary(service))!;
    const info = { ...record, revision: r.revision };
    this.caches.get(service)?.learnPrimary(info, r.revision);
    return info;
  }

  async movePrimary(service: string, region: string, options: { expectedEpoch?: number; leaseMs?: number } = {}): Promise<PrimaryInfo> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const { kv } = await this.store.get(this.primaryKey(service), { timeoutMs: this.timeoutMs });
      const current = parsePrimary(kv);
      if (options.expectedEpoch !== undefined && (current?.epoch ?? 0) !== options.expectedEpoch) throw new PrimaryConflictError(service, current);
      if (current?.region === region) return current;
      const record: PrimaryRecord = {
        region,
        epoch: (current?.epoch ?? 0) + 1,
        since: Date.now(),
        leaseMs: options.leaseMs ?? current?.leaseMs ?? this.primaryLeaseMs,
        ...(current === undefined ? {} : { previousLeaseMs: current.leaseMs }),
      };
      const r = await settledWrite(this.store, this.timeoutMs * 5, (writeId) =>
        this.store.compareAndSet(this.primaryKey(service), JSON.stringify(record), kv?.modRevision ?? 0, { writeId, timeoutMs: this.timeoutMs }),
      );
      if (r.ok) {
        const info = { ...record, revision: r.revision };
        this.caches.get(service)?.learnPrimary(info, r.revision);
        return info;
      }
      if (options.expectedEpoch !== undefined) throw new PrimaryConflictError(service, parsePrimary(r.current));
    }
    throw new PrimaryConflictError(service, undefined);
  }

  /** Records a successful linearizable read issued at `issued`. */
  private contact(issued: number): void {
    const wasLost = this.lastContactAt !== 0 && issued - this.lastContactAt > this.staleAfterMs;
    this.lastContactAt = Math.max(this.lastContactAt, issued);
    this.contacted();
    if (wasLost) for (const r of this.registrations) r.retryNow();
  }

  async ready(options: { services?: readonly string[]; timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreUnavailableError(`the registry's store (${this.store.kind}) did not answer within ${timeoutMs} ms; is it running and reachable from ${this.region}?`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([Promise.all([this.firstContact, ...(options.services ?? []).map((s) => this.cache(s).ready)]), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  health(): RegistryHealth {
    const staleMs = this.lastContactAt === 0 ? Infinity : Date.now() - this.lastContactAt;
    return { reachable: staleMs <= this.staleAfterMs, lastContactAt: this.lastContactAt, staleMs };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.healthTimer) clearTimeout(this.healthTimer);
    for (const cache of this.caches.values()) cache.stop();
    await Promise.all([...this.registrations].map((r) => r.deregister().catch(() => undefined)));
    if (this.options.ownStore !== false) await this.store.close();
  }

  /**
   * Every health interval: a linearizable read of each watched service's primary record (or of a
   * health key), which both proves the store reachable and re-confirms the primaries.
   */
  private async probe(): Promise<void> {
    if (this.closed) return;
    const services = [...this.caches.keys()];
    const issued = Date.now();
    try {
      if (services.length === 0) await this.store.get(`${this.prefix}health`, { timeoutMs: this.timeoutMs });
      for (const service of services) await this.primary(service);
      this.contact(issued);
    } catch {
      // Unreachable for now: health() shows it as the time since the last contact grows.
    }
    if (this.closed) return;
    this.healthTimer = setTimeout(() => void this.probe(), Math.max(0, this.healthIntervalMs - (Date.now() - issued)));
    this.healthTimer.unref();
  }
}

/**
 * A Store that opens its real store on first use: the default store of createRegistry, which is
 * synchronous while opening an embedded store is not.
 */
function lazyStore(open: () => Promise<Store>): Store {
  let opened: Promise<Store> | undefined;
  const store = () => (opened ??= open());
  return {
    kind: "embedded",
    get: async (key, options) => (await store()).get(key, options),
    list: async (prefix, options) => (await store()).list(prefix, options),
    compareAndSet: async (key, value, expected, options) => (await store()).compareAndSet(key, value, expected, options),
    delete: async (key, expected, options) => (await store()).delete(key, expected, options),
    grantLease: async (ttlMs, options) => (await store()).grantLease(ttlMs, options),
    keepAlive: async (lease, options) => (await store()).keepAlive(lease, options),
    revokeLease: async (lease, options) => (await store()).revokeLease(lease, options),
    resolveWrite: async (writeId, options) => (await store()).resolveWrite(writeId, options),
    async *watch(prefix, fromRevision, options) {
      yield* (await store()).watch(prefix, fromRevision, options);
    },
    close: async () => {
      if (opened) await (await opened).close();
    },
  };
}

/** Creates a registry client over a store (default: an embedded store in this process); see Registry. */
export function createRegistry(options: RegistryOptions): Registry {
  return new RegistryImpl(options);
}
