import { OutcomeUnknownError, newWriteId, type Store, type WriteOptions, type WriteResult } from "meridian-rpc/registry";
import { createLink } from "../../tools/linkproxy/index.js";

/** Which half of a write gets lost: the request (never applied) or the reply (applied). */
export type Loss = "request" | "reply";

/** A Store wrapper whose next write loses its request or its reply, as a network would. */
export interface LossyStore extends Store {
  /** The next compareAndSet or delete throws OutcomeUnknownError after losing `loss`. */
  loseNext(loss: Loss): void;
}

/**
 * Wraps a store so that one write can be made to lose its request (nothing applied) or its reply
 * (applied, but the caller cannot know): the in-process stand-in for a connection cut mid-call.
 * With `lossRate`, that fraction of all writes is lost at random (half requests, half replies).
 */
export function lossyStore(inner: Store, options: { lossRate?: number } = {}): LossyStore {
  let pending: Loss | undefined;
  const lose = async (key: string, writeId: string, apply: (writeId: string) => Promise<WriteResult>): Promise<WriteResult> => {
    const random = Math.random() < (options.lossRate ?? 0) ? (Math.random() < 0.5 ? "request" : "reply") : undefined;
    const loss = pending ?? random;
    pending = undefined;
    if (loss === "request") throw new OutcomeUnknownError(writeId, key);
    const result = await apply(writeId);
    if (loss === "reply") throw new OutcomeUnknownError(writeId, key);
    return result;
  };
  return {
    kind: inner.kind,
    loseNext(loss: Loss) {
      pending = loss;
    },
    get: (key, options) => inner.get(key, options),
    list: (prefix, options) => inner.list(prefix, options),
    compareAndSet: (key, value, expected, options: WriteOptions = {}) =>
      lose(key, options.writeId ?? newWriteId(), (writeId) => inner.compareAndSet(key, value, expected, { ...options, writeId })),
    delete: (key, expected, options = {}) =>
      lose(key, options.writeId ?? newWriteId(), (writeId) => inner.delete(key, expected, { ...options, writeId })),
    grantLease: (ttlMs, options) => inner.grantLease(ttlMs, options),
    keepAlive: (lease, options) => inner.keepAlive(lease, options),
    revokeLease: (lease, options) => inner.revokeLease(lease, options),
    watch: (prefix, from, options) => inner.watch(prefix, from, options),
    resolveWrite: (writeId, options) => inner.resolveWrite(writeId, options),
    close: () => inner.close(),
  };
}

/** A store whose next write loses its request or its reply (what the Store contract needs). */
export interface LossyTarget {
  readonly store: Store;
  loseNext(loss: Loss): void;
  /** Called after the lost write failed: heal whatever was cut. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A store reached through a link with `latencyMs` each way, so a write's request or reply can be
 * lost on the wire: cutting the link at a third of the latency drops the request (still in the
 * link), at 1.5 times the latency drops the reply (the request reached the server at 1x, the
 * reply would arrive at 2x).
 */
export async function lossyOverLink(target: string, latencyMs: number, connect: (address: string) => Store): Promise<LossyTarget> {
  const link = await createLink({ target, latencyMs });
  const store = connect(link.address);
  let timer: NodeJS.Timeout | undefined;
  return {
    store,
    loseNext(loss: Loss) {
      timer = setTimeout(() => link.blackhole(true), loss === "request" ? latencyMs / 3 : latencyMs * 1.5);
    },
    async settle() {
      clearTimeout(timer);
      link.heal();
    },
    async close() {
      clearTimeout(timer);
      await store.close();
      await link.close();
    },
  };
}
