import {
  CompactedError,
  FencedError,
  LeaseNotFoundError,
  StoreError,
  checkFence,
  checkWriteId,
  quote,
  type Fence,
  type GetResult,
  type KeyValue,
  type Lease,
  type LeaseId,
  type ListResult,
  type WatchBatch,
  type WatchEvent,
  type WriteResolution,
  type WriteResult,
} from "../store.js";

/** Options of the embedded state machine. */
export interface StateMachineOptions {
  /** Monotonic clock in ms for lease expiry; default performance.now. */
  readonly now?: () => number;
  /** Watch history kept, in events (whole revisions are dropped together). Default 10 000. */
  readonly historyLimit?: number;
  /** Write ids remembered for resolveWrite and idempotent retries. Default 100 000. */
  readonly writeIdLimit?: number;
  /** Shortest lease TTL granted, ms. Default 100. */
  readonly minLeaseTtlMs?: number;
  /** Longest lease TTL granted, ms (longer asks are INVALID_ARGUMENT). Default 7 days. */
  readonly maxLeaseTtlMs?: number;
  /** Most keys held; a write creating one more is refused (RESOURCE_EXHAUSTED). Default 1 000 000. */
  readonly maxKeys?: number;
  /** Most leases held; granting one more is refused (RESOURCE_EXHAUSTED). Default 100 000. */
  readonly maxLeases?: number;
  /** Longest key, UTF-16 code units. Default 4096. */
  readonly maxKeyLength?: number;
  /** Longest value, UTF-16 code units. Default 1.5 MiB (etcd's request limit). */
  readonly maxValueLength?: number;
}

/** A key's stored state (the KeyValue without its key). */
export interface Entry {
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: LeaseId | undefined;
  writeId: string;
}

interface LeaseState {
  readonly id: LeaseId;
  readonly ttlMs: number;
  expiresAt: number;
  readonly keys: Set<string>;
}

/** What the write-id table remembers of a write: applied at a revision, or fenced by resolveWrite. */
export type WriteRecord = { status: "applied"; revision: number } | { status: "aborted" };

/**
 * One persistent change of the state machine, as the registry's log holds it: what changed, not
 * the operation that asked for it, so replaying the records in order rebuilds the state exactly,
 * whatever the clock, the limits or the options are at replay time.
 */
export interface Mutation {
  /** The store revision after the change. */
  readonly revision: number;
  /** A key written, with its whole entry. */
  readonly put?: readonly [string, Entry];
  /** Keys deleted (a revoked lease's keys, in one revision). */
  readonly del?: readonly string[];
  /** A write id remembered. */
  readonly write?: readonly [string, WriteRecord];
  /** A lease granted. */
  readonly grant?: { readonly id: LeaseId; readonly ttlMs: number };
  /** A lease revoked (its keys are in `del`). */
  readonly revoke?: LeaseId;
}

/** Receives every persistent change, in order, in the same synchronous step that made it. */
export type Journal = (mutation: Mutation) => void;

/** The persistent part of a state machine, as the snapshot file holds it. */
export interface StateSnapshot {
  readonly format: "meridian-registry-snapshot";
  readonly version: 1;
  readonly revision: number;
  readonly nextLease: number;
  readonly kvs: readonly (readonly [string, Entry])[];
  readonly leases: readonly { id: LeaseId; ttlMs: number; keys: string[] }[];
  readonly writes: readonly (readonly [string, WriteRecord])[];
}

/** Called after every change with its events (possibly none, for lease or write-id changes). */
export type ChangeListener = (events: readonly WatchEvent[], revision: number) => void;

/**
 * The embedded registry's state machine: keys with etcd-style revisions, leases with TTL
 * expiry, a bounded watch history and the table of write ids. Synchronous and single-threaded,
 * so every operation is atomic and they are totally ordered: linearizable by construction.
 * It owns no timers and no I/O; EmbeddedNode drives expiry and persistence.
 */
export class StateMachine {
  private readonly now: () => number;
  private readonly historyLimit: number;
  private readonly writeIdLimit: number;
  private readonly minLeaseTtlMs: number;
  private readonly maxLeaseTtlMs: number;
  private readonly maxKeys: number;
  private readonly maxLeases: number;
  private readonly maxKeyLength: number;
  private readonly maxValueLength: number;
  private revision_ = 1;
  private nextLease = 1;
  private compactRevision_ = 0;
  private readonly kvs = new Map<string, Entry>();
  private readonly leases = new Map<LeaseId, LeaseState>();
  private readonly writes = new Map<string, WriteRecord>();
  private readonly history: WatchEvent[] = [];
  private readonly listeners = new Set<ChangeListener>();
  /** Bumped on every change that a snapshot must carry. */
  private mutations_ = 0;
  private readonly journal: Journal | undefined;

  /** `journal` sees every persistent change (the node writes them to its log). */
  constructor(options: StateMachineOptions = {}, journal?: Journal) {
    this.journal = journal;
    this.now = options.now ?? (() => performance.now());
    this.historyLimit = options.historyLimit ?? 10_000;
    this.writeIdLimit = options.writeIdLimit ?? 100_000;
    this.minLeaseTtlMs = options.minLeaseTtlMs ?? 100;
    this.maxLeaseTtlMs = options.maxLeaseTtlMs ?? 7 * 24 * 3600_000;
    this.maxKeys = options.maxKeys ?? 1_000_000;
    this.maxLeases = options.maxLeases ?? 100_000;
    this.maxKeyLength = options.maxKeyLength ?? 4096;
    this.maxValueLength = options.maxValueLength ?? 1.5 * 1024 * 1024;
  }

  /** The store revision: bumped by every write that changes a key. */
  get revision(): number {
    return this.revision_;
  }

  /** Watches must start after this revision; older history is gone. */
  get compactRevision(): number {
    return this.compactRevision_;
  }

  /** A counter of persistent changes. */
  get mutations(): number {
    return this.mutations_;
  }

  /** Adds a change listener; returns its removal. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(key: string): GetResult {
    return { kv: this.toKv(key, this.kvs.get(key)), revision: this.revision_ };
  }

  list(prefix: string): ListResult {
    const kvs: KeyValue[] = [];
    for (const [key, entry] of this.kvs) if (key.startsWith(prefix)) kvs.push(this.toKv(key, entry)!);
    kvs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { kvs, revision: this.revision_ };
  }

  /** Writes `value` if the key is at `expectedModRevision` (0: absent) and `fence` holds. */
  compareAndSet(key: string, value: string, expectedModRevision: number, writeId: string, lease?: LeaseId, fence?: Fence): WriteResult {
    this.checkKey(key);
    if (value.length > this.maxValueLength) {
      throw new StoreError("INVALID_ARGUMENT", `value of ${quote(key)} is ${value.length} characters, over the limit of ${this.maxValueLength}`);
    }
    checkWriteId(writeId);
    checkFence(fence);
    const seen = this.seenWrite(key, writeId);
    if (seen) return seen;
    this.checkFenceHolds(key, fence);
    if (lease !== undefined && !this.isLive(lease)) throw new LeaseNotFoundError(lease);
    const current = this.kvs.get(key);
    const matches = expectedModRevision === 0 ? current === undefined : current?.modRevision === expectedModRevision;
    if (!matches) return { ok: false, current: this.toKv(key, current), revision: this.revision_ };
    if (current === undefined && this.kvs.size >= this.maxKeys) {
      throw new StoreError("RESOURCE_EXHAUSTED", `the registry holds its limit of ${this.maxKeys} keys; delete some or raise maxKeys`);
    }
    const revision = ++this.revision_;
    if (current?.lease !== undefined && current.lease !== lease) this.leases.get(current.lease)?.keys.delete(key);
    const entry: Entry = {
      value,
      createRevision: current?.createRevision ?? revision,
      modRevision: revision,
      version: (current?.version ?? 0) + 1,
      lease,
      writeId,
    };
    this.kvs.set(key, entry);
    if (lease !== undefined) this.leases.get(lease)!.keys.add(key);
    const record: WriteRecord = { status: "applied", revision };
    this.rememberWrite(writeId, record);
    this.emit([{ type: "put", key, kv: this.toKv(key, entry)!, revision }], { revision, put: [key, { ...entry }], write: [writeId, record] });
    return { ok: true, revision, writeId };
  }

  /** Deletes the key if it is at `expectedModRevision` (undefined: unconditionally) and `fence` holds. */
  delete(key: string, expectedModRevision: number | undefined, writeId: string, fence?: Fence): WriteResult {
    this.checkKey(key);
    checkWriteId(writeId);
    checkFence(fence);
    const seen = this.seenWrite(key, writeId);
    if (seen) return seen;
    this.checkFenceHolds(key, fence);
    const current = this.kvs.get(key);
    if (expectedModRevision !== undefined && current?.modRevision !== expectedModRevision) {
      return { ok: false, current: this.toKv(key, current), revision: this.revision_ };
    }
    if (current === undefined) {
      // Deleting an absent key unconditionally changes nothing; the id is still remembered.
      const record: WriteRecord = { status: "applied", revision: this.revision_ };
      this.rememberWrite(writeId, record);
      this.emit([], { revision: this.revision_, write: [writeId, record] });
      return { ok: true, revision: this.revision_, writeId };
    }
    const revision = ++this.revision_;
    this.removeKey(key, current);
    const record: WriteRecord = { status: "applied", revision };
    this.rememberWrite(writeId, record);
    this.emit([{ type: "delete", key, revision }], { revision, del: [key], write: [writeId, record] });
    return { ok: true, revision, writeId };
  }

  grantLease(ttlMs: number): Lease {
    if (!(ttlMs > 0 && ttlMs <= this.maxLeaseTtlMs)) {
      throw new StoreError("INVALID_ARGUMENT", `lease TTL must be positive and at most ${this.maxLeaseTtlMs} ms, got ${ttlMs}`);
    }
    if (this.leases.size >= this.maxLeases) {
      throw new StoreError("RESOURCE_EXHAUSTED", `the registry holds its limit of ${this.maxLeases} leases; revoke some or raise maxLeases`);
    }
    const ttl = Math.max(this.minLeaseTtlMs, Math.ceil(ttlMs));
    const id = (this.nextLease++).toString(16);
    this.leases.set(id, { id, ttlMs: ttl, expiresAt: this.now() + ttl, keys: new Set() });
    this.emit([], { revision: this.revision_, grant: { id, ttlMs: ttl } });
    return { id, ttlMs: ttl };
  }

  keepAlive(id: LeaseId): { ttlMs: number } {
    const lease = this.leases.get(id);
    if (!lease || !this.isLive(id)) throw new LeaseNotFoundError(id);
    lease.expiresAt = this.now() + lease.ttlMs;
    return { ttlMs: lease.ttlMs };
  }

  revokeLease(id: LeaseId): void {
    const lease = this.leases.get(id);
    if (!lease) return;
    this.leases.delete(id);
    if (lease.keys.size === 0) {
      this.emit([], { revision: this.revision_, revoke: id });
      return;
    }
    // Like etcd: all keys of a lease go in one revision.
    const revision = ++this.revision_;
    const events: WatchEvent[] = [];
    for (const key of [...lease.keys].sort()) {
      const entry = this.kvs.get(key);
      if (!entry) continue;
      this.removeKey(key, entry);
      events.push({ type: "delete", key, revision });
    }
    this.emit(events, { revision, del: events.map((e) => e.key), revoke: id });
  }

  /** Revokes every lease whose TTL ran out; returns when the next one runs out (or undefined). */
  expireLeases(): number | undefined {
    const now = this.now();
    let next: number | undefined;
    for (const lease of [...this.leases.values()]) {
      if (lease.expiresAt <= now) this.revokeLease(lease.id);
      else next = next === undefined ? lease.expiresAt : Math.min(next, lease.expiresAt);
    }
    return next;
  }

  /** When the earliest lease runs out, or undefined without leases. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const lease of this.leases.values()) next = next === undefined ? lease.expiresAt : Math.min(next, lease.expiresAt);
    return next;
  }

  /** Applied (with its revision) or not; an unknown id is fenced so it can never apply later. */
  resolveWrite(writeId: string): WriteResolution {
    checkWriteId(writeId);
    const record = this.writes.get(writeId);
    if (record?.status === "applied") return { status: "applied", revision: record.revision };
    if (!record) {
      this.rememberWrite(writeId, { status: "aborted" });
      this.emit([], { revision: this.revision_, write: [writeId, { status: "aborted" }] });
    }
    return { status: "not_applied" };
  }

  /**
   * The changes under `prefix` with revision >= `fromRevision`, at most about `limit` events
   * (whole revisions), and the revision they bring a watcher up to. `fromRevision` 0 means now.
   */
  changes(prefix: string, fromRevision: number, limit = 1000): WatchBatch {
    if (fromRevision === 0) return { events: [], revision: this.revision_ };
    if (fromRevision <= this.compactRevision_) throw new CompactedError(this.compactRevision_);
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.history[mid]!.revision < fromRevision) lo = mid + 1;
      else hi = mid;
    }
    const events: WatchEvent[] = [];
    for (let i = lo; i < this.history.length; i++) {
      const event = this.history[i]!;
      if (events.length >= limit && event.revision !== events[events.length - 1]!.revision) {
        return { events, revision: events[events.length - 1]!.revision };
      }
      if (event.key.startsWith(prefix)) events.push(event);
    }
    return { events, revision: this.revision_ };
  }

  /** The persistent state, for the snapshot file. */
  snapshot(): StateSnapshot {
    return {
      format: "meridian-registry-snapshot",
      version: 1,
      revision: this.revision_,
      nextLease: this.nextLease,
      kvs: [...this.kvs].map(([k, e]) => [k, { ...e }] as const),
      leases: [...this.leases.values()].map((l) => ({ id: l.id, ttlMs: l.ttlMs, keys: [...l.keys] })),
      writes: [...this.writes],
    };
  }

  /**
   * Loads a snapshot into an empty state machine. Leases restart with their whole TTL (as etcd
   * does after a restart); watch history starts empty, so watchers from before must list again.
   */
  restore(snapshot: StateSnapshot): void {
    if (snapshot.format !== "meridian-registry-snapshot" || snapshot.version !== 1) {
      throw new StoreError("INVALID_ARGUMENT", "not a Meridian registry snapshot (format/version mismatch)");
    }
    this.revision_ = snapshot.revision;
    this.compactRevision_ = snapshot.revision;
    this.nextLease = snapshot.nextLease;
    this.kvs.clear();
    for (const [key, entry] of snapshot.kvs) this.kvs.set(key, { ...entry, lease: entry.lease ?? undefined });
    this.leases.clear();
    for (const l of snapshot.leases) {
      this.leases.set(l.id, { id: l.id, ttlMs: l.ttlMs, expiresAt: this.now() + l.ttlMs, keys: new Set(l.keys) });
    }
    this.writes.clear();
    for (const [id, record] of snapshot.writes) this.writes.set(id, record);
    this.history.length = 0;
  }

  /**
   * Replays one logged change during recovery, after `restore` (or on an empty machine). Like
   * `restore`, it keeps no watch history and gives a granted lease its whole TTL from now.
   */
  apply(m: Mutation): void {
    this.revision_ = m.revision;
    this.compactRevision_ = m.revision;
    if (m.grant) {
      const { id, ttlMs } = m.grant;
      this.leases.set(id, { id, ttlMs, expiresAt: this.now() + ttlMs, keys: new Set() });
      this.nextLease = Math.max(this.nextLease, Number.parseInt(id, 16) + 1);
    }
    if (m.put) {
      const [key, entry] = m.put;
      const current = this.kvs.get(key);
      if (current?.lease !== undefined && current.lease !== entry.lease) this.leases.get(current.lease)?.keys.delete(key);
      this.kvs.set(key, { ...entry, lease: entry.lease ?? undefined });
      if (entry.lease !== undefined) this.leases.get(entry.lease)?.keys.add(key);
    }
    for (const key of m.del ?? []) {
      const current = this.kvs.get(key);
      if (current) this.removeKey(key, current);
    }
    if (m.revoke !== undefined) this.leases.delete(m.revoke);
    if (m.write) this.rememberWrite(m.write[0], m.write[1]);
    this.mutations_++;
  }

  /** How many keys, leases and remembered write ids the machine holds (for status). */
  counts(): { keys: number; leases: number; writeIds: number } {
    return { keys: this.kvs.size, leases: this.leases.size, writeIds: this.writes.size };
  }

  /** A lease that exists and has not run out (expiry may lag behind by a timer tick). */
  private isLive(id: LeaseId): boolean {
    const lease = this.leases.get(id);
    return lease !== undefined && lease.expiresAt > this.now();
  }

  private checkKey(key: string): void {
    if (key.length === 0) throw new StoreError("INVALID_ARGUMENT", "keys must not be empty");
    if (key.length > this.maxKeyLength) throw new StoreError("INVALID_ARGUMENT", `key ${quote(key)} is over the limit of ${this.maxKeyLength} characters`);
  }

  /** In the same synchronous step as the write: the fence key must still be at its revision. */
  private checkFenceHolds(key: string, fence: Fence | undefined): void {
    if (fence === undefined) return;
    const current = this.kvs.get(fence.key)?.modRevision ?? 0;
    if (current !== fence.modRevision) throw new FencedError(key, fence, current);
  }

  private seenWrite(key: string, writeId: string): WriteResult | undefined {
    const record = this.writes.get(writeId);
    if (!record) return undefined;
    if (record.status === "applied") return { ok: true, revision: record.revision, writeId };
    // Fenced by resolveWrite: it was reported as not applied, so it must never apply.
    return { ok: false, current: this.toKv(key, this.kvs.get(key)), revision: this.revision_ };
  }

  private removeKey(key: string, entry: Entry): void {
    this.kvs.delete(key);
    if (entry.lease !== undefined) this.leases.get(entry.lease)?.keys.delete(key);
  }

  private rememberWrite(writeId: string, record: WriteRecord): void {
    this.writes.set(writeId, record);
    if (this.writes.size > this.writeIdLimit) {
      // Maps iterate in insertion order: the oldest ids go first.
      const excess = this.writes.size - this.writeIdLimit;
      let i = 0;
      for (const id of this.writes.keys()) {
        if (i++ >= excess) break;
        this.writes.delete(id);
      }
    }
  }

  private emit(events: WatchEvent[], mutation: Mutation): void {
    this.mutations_++;
    this.journal?.(mutation);
    if (events.length > 0) {
      for (const e of events) this.history.push(e);
      if (this.history.length > this.historyLimit * 1.25) this.compactHistory();
    }
    for (const listener of this.listeners) listener(events, this.revision_);
  }

  private compactHistory(): void {
    let cut = this.history.length - this.historyLimit;
    // Never split a revision: drop up to the end of the revision at the cut.
    while (cut < this.history.length && this.history[cut]!.revision === this.history[cut - 1]!.revision) cut++;
    this.compactRevision_ = this.history[cut - 1]!.revision;
    this.history.splice(0, cut);
  }

  private toKv(key: string, entry: Entry | undefined): KeyValue | undefined {
    if (!entry) return undefined;
    return {
      key,
      value: entry.value,
      modRevision: entry.modRevision,
      createRevision: entry.createRevision,
      version: entry.version,
      lease: entry.lease,
      writeId: entry.writeId,
    };
  }
}


