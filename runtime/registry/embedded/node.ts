import { StateMachine, type StateMachineOptions } from "./state-machine.js";
import { SnapshotWriter, loadSnapshot } from "./snapshot.js";
import {
  OutcomeUnknownError,
  StoreClosedError,
  type Fence,
  type GetResult,
  type Lease,
  type LeaseId,
  type ListResult,
  type WatchBatch,
  type WriteResolution,
  type WriteResult,
} from "../store.js";

/** Options of an embedded registry node. */
export interface EmbeddedNodeOptions extends StateMachineOptions {
  /**
   * Keep the state in this file: loaded on start, rewritten (atomically) before every write is
   * acknowledged, with group commit. Without it the registry lives in memory only.
   */
  readonly snapshotPath?: string;
}

/**
 * One embedded registry: the state machine plus what makes it a server's heart: lease expiry on
 * a timer, the optional snapshot file (a write is acknowledged only once it is on disk) and
 * long-poll waits for watch. Both the in-process Store and the network server sit on a node.
 */
export class EmbeddedNode {
  readonly machine: StateMachine;
  private readonly writer: SnapshotWriter | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryAt = Infinity;
  /** Long polls waiting for a change, oldest first. */
  private readonly waiters = new Set<{ prefix: string; session: string; wake: () => void }>();
  private closed = false;
  private readonly unsubscribe: () => void;
  private readonly now: () => number;

  private constructor(options: EmbeddedNodeOptions) {
    this.now = options.now ?? (() => performance.now());
    this.machine = new StateMachine(options);
    this.writer = options.snapshotPath
      ? new SnapshotWriter(options.snapshotPath, () => ({ mutations: this.machine.mutations, snapshot: this.machine.snapshot() }))
      : undefined;
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

  /** Creates a node, loading its snapshot file when there is one. */
  static async open(options: EmbeddedNodeOptions = {}): Promise<EmbeddedNode> {
    const node = new EmbeddedNode(options);
    if (options.snapshotPath) {
      const snapshot = await loadSnapshot(options.snapshotPath);
      if (snapshot) node.machine.restore(snapshot);
    }
    node.scheduleExpiry();
    return node;
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
   * watcher keeping two polls here is never without one while an answer travels back to it; it
   * must drop the events it already has, since a later answer starts from its poll's revision.
   */
  async waitForChanges(prefix: string, fromRevision: number, waitMs: number, signal?: AbortSignal, limit?: number, session = ""): Promise<WatchBatch> {
    this.checkOpen();
    const from = fromRevision === 0 ? this.machine.revision + 1 : fromRevision;
    let batch = this.machine.changes(prefix, from, limit);
    if (batch.events.length > 0 || waitMs <= 0) return batch;
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
    return batch;
  }

  /** Stops the expiry timer and wakes every long poll; the state stays in the snapshot file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.unsubscribe();
    for (const waiter of [...this.waiters]) waiter.wake();
    await this.writer?.persist(this.machine.mutations).catch(() => undefined);
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /** Answers once the state the operation saw is on disk (reads too: nothing read can be lost). */
  private async durably<T>(op: () => T): Promise<T> {
    this.checkOpen();
    const result = op();
    await this.writer?.persist(this.machine.mutations);
    return result;
  }

  /** A write applied in memory whose snapshot failed is not known to survive: outcome unknown. */
  private async write(key: string, writeId: string, op: () => WriteResult): Promise<WriteResult> {
    this.checkOpen();
    const result = op();
    if (this.writer) {
      try {
        await this.writer.persist(this.machine.mutations);
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
    this.machine.expireLeases();
    // Expiry is persisted in the background; the next acknowledged operation waits for it anyway.
    this.writer?.persist(this.machine.mutations).catch(() => undefined);
    this.scheduleExpiry();
  }
}
