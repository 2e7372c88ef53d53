import { AsyncQueue } from "../async-queue.js";
import {
  StoreUnavailableError,
  abortedError,
  bounded,
  newWriteId,
  quote,
  type GetResult,
  type Lease,
  type LeaseId,
  type ListResult,
  type ReadOptions,
  type Store,
  type WatchBatch,
  type WatchOptions,
  type WriteOptions,
  type WriteResolution,
  type WriteResult,
} from "../store.js";
import { EmbeddedNode, type EmbeddedNodeOptions } from "./node.js";

/** Options of createEmbeddedStore. */
export interface EmbeddedStoreOptions extends EmbeddedNodeOptions {
  /** Use this node instead of opening a new one (several stores over one node share its state). */
  readonly node?: EmbeddedNode;
}

/** A Store over an embedded node in this process; `node` is exposed for servers and tests. */
export interface EmbeddedStore extends Store {
  readonly node: EmbeddedNode;
}

/**
 * Creates the embedded store in this process: a single-node registry, linearizable because one
 * event loop orders every operation. With `dataDir` it survives restarts. Closing the store
 * closes the node unless the node was passed in.
 *
 * Async where createRemoteStore and createEtcdStore are not: it opens and recovers its data
 * folder before it returns, so a damaged or locked folder fails here, at start-up, instead of
 * on some later call; the other two only connect, lazily, on first use (their failures are the
 * store's UNAVAILABLE answers). openRegistryStore opens any of the three from a URL, async.
 */
export async function createEmbeddedStore(options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
  const owned = options.node === undefined;
  const node = options.node ?? (await EmbeddedNode.open(options));
  const machine = node.machine;
  const watches = new Set<AsyncQueue<WatchBatch>>();

  /**
   * Every operation applies in one synchronous step; only waiting for the snapshot file can take
   * time. A call whose signal already aborted is not applied; one that runs out of time or is
   * aborted while its snapshot is written was applied in memory and its outcome is unknown.
   */
  const read = <T>(key: string, opts: ReadOptions, op: () => Promise<T>): Promise<T> => {
    if (opts.signal?.aborted) return Promise.reject(abortedError({ key }, false));
    return bounded(op(), opts, () => new StoreUnavailableError(`read of ${quote(key)} gave up (timeout or cancelled)`));
  };
  const write = (key: string, opts: Omit<WriteOptions, "lease">, op: (writeId: string) => Promise<WriteResult>): Promise<WriteResult> => {
    const writeId = opts.writeId ?? newWriteId();
    if (opts.signal?.aborted) return Promise.reject(abortedError({ key, writeId }, false));
    return bounded(op(writeId), opts, () => abortedError({ key, writeId }, true));
  };

  return {
    kind: "embedded",
    node,
    get: (key: string, opts: ReadOptions = {}): Promise<GetResult> => read(key, opts, () => node.get(key)),
    list: (prefix: string, opts: ReadOptions = {}): Promise<ListResult> => read(prefix, opts, () => node.list(prefix)),
    compareAndSet: (key: string, value: string, expected: number, opts: WriteOptions = {}): Promise<WriteResult> =>
      write(key, opts, (writeId) => node.compareAndSet(key, value, expected, writeId, opts.lease, opts.fence)),
    delete: (key: string, expected?: number, opts: Omit<WriteOptions, "lease"> = {}): Promise<WriteResult> =>
      write(key, opts, (writeId) => node.delete(key, expected, writeId, opts.fence)),
    grantLease: (ttlMs: number): Promise<Lease> => node.grantLease(ttlMs),
    keepAlive: (lease: LeaseId) => node.keepAlive(lease),
    revokeLease: (lease: LeaseId) => node.revokeLease(lease),
    resolveWrite: (writeId: string): Promise<WriteResolution> => node.resolveWrite(writeId),

    watch(prefix: string, fromRevision: number, opts: WatchOptions = {}): AsyncIterable<WatchBatch> {
      let unsubscribe = () => {};
      const onAbort = () => queue.end();
      const queue: AsyncQueue<WatchBatch> = new AsyncQueue(() => {
        unsubscribe();
        opts.signal?.removeEventListener("abort", onAbort);
        watches.delete(queue);
      });
      watches.add(queue);
      if (opts.signal?.aborted) {
        queue.end();
        return queue;
      }
      opts.signal?.addEventListener("abort", onAbort);
      try {
        // Backlog and subscription in the same tick: nothing can happen in between.
        const from = fromRevision === 0 ? machine.revision + 1 : fromRevision;
        const backlog = machine.changes(prefix, from, Infinity);
        if (backlog.events.length > 0) queue.push(backlog);
        unsubscribe = machine.subscribe((events, revision) => {
          const mine = events.filter((e) => e.key.startsWith(prefix));
          if (mine.length > 0) queue.push({ events: mine, revision });
        });
      } catch (e) {
        queue.fail(e);
      }
      return queue;
    },

    async close() {
      for (const queue of [...watches]) queue.end();
      if (owned) await node.close();
    },
  };
}
