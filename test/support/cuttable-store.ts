import { StoreUnavailableError, type Store, type WatchBatch } from "meridian-rpc/registry";

/** A Store wrapper that can be cut off from its store, like a region behind a cut cable. */
export interface CuttableStore extends Store {
  /** While cut, every call fails with StoreUnavailableError and watches deliver nothing. */
  cut(on: boolean): void;
}

/** Wraps an in-process store so a test can cut one registry client off and heal it. */
export function cuttableStore(inner: Store): CuttableStore {
  let isCut = false;
  const guard = <T>(op: () => Promise<T>): Promise<T> =>
    isCut ? Promise.reject(new StoreUnavailableError("cut off from the store (test)")) : op();
  return {
    kind: inner.kind,
    cut(on: boolean) {
      isCut = on;
    },
    get: (key, o) => guard(() => inner.get(key, o)),
    list: (prefix, o) => guard(() => inner.list(prefix, o)),
    compareAndSet: (key, value, expected, o) => guard(() => inner.compareAndSet(key, value, expected, o)),
    delete: (key, expected, o) => guard(() => inner.delete(key, expected, o)),
    grantLease: (ttl, o) => guard(() => inner.grantLease(ttl, o)),
    keepAlive: (lease, o) => guard(() => inner.keepAlive(lease, o)),
    revokeLease: (lease, o) => guard(() => inner.revokeLease(lease, o)),
    resolveWrite: (id, o) => guard(() => inner.resolveWrite(id, o)),
    async *watch(prefix, from, o): AsyncIterable<WatchBatch> {
      // Batches that arrive while cut are held back until healed, as a stalled stream would.
      for await (const batch of inner.watch(prefix, from, o)) {
        while (isCut) await new Promise((resolve) => setTimeout(resolve, 20));
        yield batch;
      }
    },
    close: () => inner.close(),
  };
}
