import { StateMachine, type StateMachineOptions } from "./state-machine.js";
import { DataDir, type DataDirOptions, type DataDirStatus } from "./data-dir.js";
import {
  OutcomeUnknownError,
  StoreClosedError,
  StoreUnavailableError,
  type Fence,
  type GetResult,
  type Lease,
  type LeaseId,
  type ListResult,
  type WatchBatch,
  type WriteResolution,
  type WriteResult,
} from "../store.js";

/** Watch sessions whose last answer a node remembers (see waitForChanges). */
const MAX_SESSIONS = 4096;

/** Options of an embedded registry node. */
export interface EmbeddedNodeOptions extends StateMachineOptions, DataDirOptions {
  /**
   * Keep the state in this folder (created if missing): a snapshot plus an append-only log of
   * every change since, recovered on start; an operation is answered only once what it did (or
   * read) is in the log, as durable as `fsync` says. Without it the registry lives in memory only.
   */
  readonly dataDir?: string;
  /**
   * Called once if the log on disk fails (disk full, I/O error). The node then refuses every call
   * (UNAVAILABLE): a server should exit and be restarted, recovering from its data directory.
   */
  readonly onStorageFailure?: (error: Error) => void;
}

/** What a node reports about itself (the Status call). */
export interface NodeStatus {
  /** "ok", or why the node refuses every call (its log failed). */
  readonly health: string;
  /** The store revision. */
  readonly revision: number;
  readonly keys: number;
  readonly leases: number;
  /** Write ids remembered for resolveWrite. */
  readonly writeIds: number;
  /** Since the node opened, ms. */
  readonly uptimeMs: number;
  /** The data directory, absent for a registry in memory. */
  readonly storage: DataDirStatus | undefined;
}

/**
 * One embedded registry: the state machine plus what makes it a server's heart: lease expiry on
 * a timer, the optional data directory (a write is acknowledged only once it is in the log) and
 * long-poll waits for watch. Both the in-process Store and the network server sit on a node.
 */
export class EmbeddedNode {
  readonly machine: StateMachine;
  private data: DataDir | undefined;
  private readonly openedAt = performance.now();
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryAt = Infinity;
  /** Long polls waiting for a change, oldest first. */
  private readonly waiters = new Set<{ prefix: string; session: string; wake: () => void }>();
  /** Session -> the newest revision an answer to one of its polls carried (most recent sessions only). */
  private readonly delivered = new Map<string, number>();
  private closed = false;
  private readonly unsubscribe: () => void;
  private readonly now: () => number;

  private constructor(options: EmbeddedNodeOptions) {
    this.now = options.now ?? (() => performance.now());
    // Recovery restores and replays without journaling; `data` is set once it is done.
    this.machine = new StateMachine(options, (m) => this.data?.append(m));
    this.unsubscribe = this.machine.subscribe((events) => {
      this.scheduleExpiry();
      if (events.length === 0) return;
      // Only the oldest waiting poll of a session answers: the session's others stay parked, so
      // one is still waiting while that answer travels back (see waitForChanges).
      const woken = new Set<string>();
      for (const waiter of [...this.waiters]) {
        if (waiter.session !== "" && woken.has(waiter.session)) continue;
        if (!events.some((e) => e.key.startsWith(waiter.prefix))) continue;
        if (waiter.session !== "") woken.add(waiter.session);
        waiter.wake();
      }
    });
  }

  /**
   * Creates a node, recovering its data directory when it has one (DataDirError when the folder
   * is corrupt or in use by another process).
   */
  static async open(options: EmbeddedNodeOptions = {}): Promise<EmbeddedNode> {
    const node = new EmbeddedNode(options);
    if (options.dataDir !== undefined) {
      const machine = node.machine;
      node.data = await DataDir.open(
        options.dataDir,
        { restore: (state) => machine.restore(state), apply: (m) => machine.apply(m), snapshot: () => machine.snapshot() },
        options,
        (error) => options.onStorageFailure?.(error),
      );
    }
    node.scheduleExpiry();
    return node;
  }

  /** The revision, sizes, uptime and data directory of this node. */
  status(): NodeStatus {
    const counts = this.machine.counts();
    const failure = this.data?.failure;
    return {
      health: failure ? `failed: ${failure.message}` : "ok",
      revision: this.machine.revision,
      ...counts,
      uptimeMs: performance.now() - this.openedAt,
      storage: this.data?.status(),
    };
  }

  /** Writes a snapshot and drops the log before it now (it also happens by size and period). */
  async compact(): Promise<void> {
    this.checkOpen();
    await this.data?.compact();
  }

  async get(key: string): Promise<GetResult> {
    return this.durably(() => this.machine.get(key));
  }

  async list(prefix: string): Promise<ListResult> {
    return this.durably(() => this.machine.list(prefix));
  }

  async compareAndSet(key: string, value: string, expected: number, writeId: string, lease?: LeaseId, fence?: Fence): Promise<WriteResult> {
    return this.write(key, writeId, () => this.machine.compareAndSet(key, value, expected, writeId, lease, fence));
  }

  async delete(key: string, expected: number | undefined, writeId: string, fence?: Fence): Promise<WriteResult> {
    return this.write(key, writeId, () => this.machine.delete(key, expected, writeId, fence));
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    return this.durably(() => this.machine.grantLease(ttlMs));
  }

  async keepAlive(lease: LeaseId): Promise<{ ttlMs: number }> {
    // Renewals are not persisted: after a restart every lease gets its whole TTL anyway.
    this.checkOpen();
    return this.machine.keepAlive(lease);
  }

  async revokeLease(lease: LeaseId): Promise<void> {
    return this.durably(() => this.machine.revokeLease(lease));
  }

  async resolveWrite(writeId: string): Promise<WriteResolution> {
    return this.durably(() => this.machine.resolveWrite(writeId));
  }

  /**
   * Long poll: the changes under `prefix` from `fromRevision`, waiting up to `waitMs` for the
   * first one. Resolves with an empty batch at the current revision when nothing happened.
   *
   * Polls with the same non-empty `session` are one watcher's: a change wakes only the oldest of
   * them that is waiting, the others keep waiting for the next change (or their `waitMs`). A
   * watcher keeping several polls here is not without one while an answer travels back to it; it
   * must drop the events it already has, since a later answer starts from its poll's revision.
   */
  async waitForChanges(prefix: string, fromRevision: number, waitMs: number, signal?: AbortSignal, limit?: number, session = ""): Promise<WatchBatch> {
    this.checkOpen();
    const from = fromRevision === 0 ? this.machine.revision + 1 : fromRevision;
    let batch = this.machine.changes(prefix, from, limit);
    // A poll sent before its watcher received the answer to another of its polls asks again for
    // what that answer carries. Answering it at once would leave the session without a waiting
    // poll for a round trip (under steady writes, most of the time: every change would wait for
    // the next poll to arrive); it waits for a change the session has not been sent instead, and
    // then answers from its own revision, so a watcher that lost an answer (and polls again under
    // a new session) misses nothing.
    if ((batch.events.length > 0 && !this.sentBefore(session, batch)) || waitMs <= 0) {
      this.markSent(session, batch);
      await this.synced();
      return batch;
    }
    await new Promise<void>((resolve) => {
      const waiter = { prefix, session, wake: () => done() };
      const timer = setTimeout(() => done(), waitMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.waiters.add(waiter);
      signal?.addEventListener("abort", done);
    });
    this.checkOpen();
    batch = this.machine.changes(prefix, from, limit);
    this.markSent(session, batch);
    // A watcher must not see a change that a crash could still take back.
    await this.synced();
    return batch;
  }

  /** Whether every event of `batch` was in an answer to the session already (and none past it is left out by the limit). */
  private sentBefore(session: string, batch: WatchBatch): boolean {
    if (session === "" || batch.revision !== this.machine.revision) return false;
    const sent = this.delivered.get(session);
    return sent !== undefined && batch.events.every((e) => e.revision <= sent);
  }

  private markSent(session: string, batch: WatchBatch): void {
    if (session === "" || batch.events.length === 0) return;
    const newest = batch.events[batch.events.length - 1]!.revision;
    const sent = this.delivered.get(session) ?? 0;
    this.delivered.delete(session);
    this.delivered.set(session, Math.max(sent, newest));
    // Forget the least recently answered sessions (a forgotten one just answers at once again).
    if (this.delivered.size > MAX_SESSIONS) this.delivered.delete(this.delivered.keys().next().value!);
  }

  /** Stops the expiry timer and wakes every long poll; the state stays in the data directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.unsubscribe();
    for (const waiter of [...this.waiters]) waiter.wake();
    await this.data?.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
    const failure = this.data?.failure;
    if (failure) throw new StoreUnavailableError(failure.message, { cause: failure });
  }

  /** Answers once the state the operation saw is on disk (reads too: nothing read can be lost). */
  private async durably<T>(op: () => T): Promise<T> {
    this.checkOpen();
    const result = op();
    await this.synced();
    return result;
  }

  /** Resolves once every change so far is in the log; UNAVAILABLE once the log failed. */
  private async synced(): Promise<void> {
    if (!this.data) return;
    try {
      await this.data.durable(this.data.lastLsn);
    } catch (cause) {
      throw new StoreUnavailableError((cause as Error).message, { cause });
    }
  }

  /** A write applied in memory whose log record failed is not known to survive: outcome unknown. */
  private async write(key: string, writeId: string, op: () => WriteResult): Promise<WriteResult> {
    this.checkOpen();
    const result = op();
    if (this.data) {
      try {
        await this.data.durable(this.data.lastLsn);
      } catch (cause) {
        throw new OutcomeUnknownError(writeId, key, { cause });
      }
    }
    return result;
  }

  private scheduleExpiry(): void {
    if (this.closed) return;
    const next = this.machine.nextExpiry();
    if (next === undefined || next >= this.expiryAt) return;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryAt = next;
    // Capped at setTimeout's limit: a longer delay would fire at once (and spin); past the cap
    // the timer simply fires early and is set again.
    this.expiryTimer = setTimeout(() => this.onExpiryTimer(), Math.min(2 ** 31 - 1, Math.max(0, next - this.now()) + 1));
    this.expiryTimer.unref();
  }

  private onExpiryTimer(): void {
    this.expiryTimer = undefined;
    this.expiryAt = Infinity;
    // Expiry is logged like any change; the next acknowledged operation waits for it anyway.
    if (!this.data?.failure) this.machine.expireLeases();
    this.scheduleExpiry();
  }
}
