/**
 * The Store: a linearizable key/value store with revisions, leases and watches, the one thing
 * the registry needs from its backend. Two implementations: the embedded store (one process
 * orders every write) and etcd (Raft). Every write is a compare-and-set on a key's mod revision;
 * there is no blind read-modify-write anywhere above this interface.
 *
 * Every write carries a unique write id. When a write's outcome cannot be known (timeout,
 * connection lost after sending) the store throws OutcomeUnknownError with that id, and
 * `resolveWrite(id)` later answers "applied" or "not applied" for good: a store makes sure a
 * write it reported as not applied can never apply afterwards (it fences the id).
 */

/** A lease id, as the store hands it out. */
export type LeaseId = string;

/** How a read is served: `linearizable` (default) reflects every write acknowledged before it;
 * `serializable` is answered by the local member alone and may be stale (fallback only). */
export type ReadMode = "linearizable" | "serializable";

/** A key's value with its revisions, as a store returns it. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** Store revision of the write that produced this value. */
  readonly modRevision: number;
  /** Store revision at which the key was (last) created. */
  readonly createRevision: number;
  /** Writes to the key since it was created (1 right after creation). */
  readonly version: number;
  /** The lease the key lives under, or undefined. */
  readonly lease: LeaseId | undefined;
  /** The id of the write that produced this value ("" when written by a foreign client). */
  readonly writeId: string;
}

/** Options of a read. */
export interface ReadOptions {
  /** Default `linearizable`. */
  readonly mode?: ReadMode;
  /** Give up after this many ms (StoreUnavailableError). Default: the store's own timeout. */
  readonly timeoutMs?: number;
  /** Give up when this aborts (StoreUnavailableError): a handler passes its call's signal. */
  readonly signal?: AbortSignal;
}

/** The answer to `get`: the key (or undefined) and the store revision the read was served at. */
export interface GetResult {
  readonly kv: KeyValue | undefined;
  readonly revision: number;
}

/** The answer to `list`: keys in key order and the store revision the read was served at. */
export interface ListResult {
  readonly kvs: readonly KeyValue[];
  readonly revision: number;
}

/**
 * A fence on a write: it applies only while the key `key` is still at mod revision `modRevision`,
 * checked in the same atomic step as the write itself (one etcd transaction, one state-machine
 * operation). The registry fences a primary's writes on its primary record: every move rewrites
 * that record, so the write of a primary that lost its role meanwhile is refused with FencedError.
 */
export interface Fence {
  readonly key: string;
  /** The fence key's mod revision the write was admitted under (> 0). */
  readonly modRevision: number;
}

/** Options of a write. */
export interface WriteOptions {
  /** Attach the key to this lease (it disappears when the lease expires). */
  readonly lease?: LeaseId;
  /**
   * The write's unique id; generated when omitted. Retrying an unknown-outcome write with the
   * same id is safe: if the first attempt was applied, the retry answers `ok` with its revision.
   */
  readonly writeId?: string;
  /** Give up after this many ms. Default: the store's own timeout. */
  readonly timeoutMs?: number;
  /**
   * Give up when this aborts: before the write was sent, StoreUnavailableError (not applied);
   * after, OutcomeUnknownError (resolve it by its write id).
   */
  readonly signal?: AbortSignal;
  /** Apply only while the fence holds (see Fence); else FencedError and nothing is written. */
  readonly fence?: Fence;
}

/**
 * The outcome of a write that the store answered: applied at `revision`, or not applied because
 * the compare failed (`current` is the key as it is, undefined when absent).
 */
export type WriteResult =
  | { readonly ok: true; readonly revision: number; readonly writeId: string }
  | { readonly ok: false; readonly current: KeyValue | undefined; readonly revision: number };

/** What `resolveWrite` found out: a definite answer, never "maybe". */
export type WriteResolution =
  | { readonly status: "applied"; readonly revision: number }
  | { readonly status: "not_applied" };

/** A granted lease. */
export interface Lease {
  readonly id: LeaseId;
  /** The TTL the store granted (it may round the asked TTL up). */
  readonly ttlMs: number;
}

/** One change seen by a watch. */
export type WatchEvent =
  | { readonly type: "put"; readonly key: string; readonly kv: KeyValue; readonly revision: number }
  | { readonly type: "delete"; readonly key: string; readonly revision: number };

/**
 * Changes delivered together: all events of one or more revisions, in revision order, and the
 * store revision they bring the watcher up to (`revision` >= every event's revision).
 */
export interface WatchBatch {
  readonly events: readonly WatchEvent[];
  readonly revision: number;
}

/** Options of `watch`. */
export interface WatchOptions {
  /** Ends the watch (the iteration finishes without error). */
  readonly signal?: AbortSignal;
}

/** A linearizable key/value store with revisions, leases and watches; see the module comment. */
export interface Store {
  /** Which implementation this is, for logs and the demo: `embedded`, `etcd`, `remote`. */
  readonly kind: string;

  /** Reads one key. */
  get(key: string, options?: ReadOptions): Promise<GetResult>;

  /** Reads every key starting with `prefix`, in key order. */
  list(prefix: string, options?: ReadOptions): Promise<ListResult>;

  /**
   * Writes `value` if the key's mod revision is still `expectedModRevision` (0: only if the key
   * does not exist). Throws OutcomeUnknownError when the answer was lost, LeaseNotFoundError
   * when `options.lease` does not exist (nothing was written), FencedError when `options.fence`
   * no longer holds (nothing was written), StoreUnavailableError when the write certainly was
   * not applied.
   */
  compareAndSet(key: string, value: string, expectedModRevision: number, options?: WriteOptions): Promise<WriteResult>;

  /**
   * Deletes the key if its mod revision is still `expectedModRevision`, or unconditionally when
   * it is undefined (deleting an absent key then succeeds). Errors as for compareAndSet.
   */
  delete(key: string, expectedModRevision?: number, options?: Omit<WriteOptions, "lease">): Promise<WriteResult>;

  /** Grants a lease; keys attached to it are deleted when it expires. */
  grantLease(ttlMs: number, options?: { timeoutMs?: number }): Promise<Lease>;

  /** Renews a lease for its whole TTL; throws LeaseNotFoundError when it has expired. */
  keepAlive(lease: LeaseId, options?: { timeoutMs?: number }): Promise<{ ttlMs: number }>;

  /** Revokes a lease, deleting its keys; revoking an unknown lease is not an error. */
  revokeLease(lease: LeaseId, options?: { timeoutMs?: number }): Promise<void>;

  /**
   * Streams every change to keys under `prefix` with revision >= `fromRevision` (0: from now),
   * in order, surviving reconnections without gaps. Throws CompactedError when `fromRevision`
   * is older than the history the store keeps (list again, then watch from the list's revision+1).
   */
  watch(prefix: string, fromRevision: number, options?: WatchOptions): AsyncIterable<WatchBatch>;

  /**
   * Tells whether the write with this id was applied. When it was not, the id is fenced first,
   * so a copy of the write still in flight can never apply afterwards. Throws
   * StoreUnavailableError while the store cannot answer (try again later).
   */
  resolveWrite(writeId: string, options?: { timeoutMs?: number }): Promise<WriteResolution>;

  /** Releases connections and timers. */
  close(): Promise<void>;
}

/** Why a store call failed. */
export type StoreErrorCode =
  | "OUTCOME_UNKNOWN"
  | "UNAVAILABLE"
  | "LEASE_NOT_FOUND"
  | "COMPACTED"
  | "CLOSED"
  | "INVALID_ARGUMENT"
  | "FENCED"
  | "RESOURCE_EXHAUSTED"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED";

/**
 * A key, id or other caller-given string quoted for an error message, cut to 80 characters: an
 * error must never grow with what a peer sent (a reply echoing a 4 MiB key would not fit a frame).
 */
export function quote(text: string): string {
  return text.length <= 80 ? `"${text}"` : `"${text.slice(0, 80)}..." (${text.length} characters)`;
}

/** The base class of every store error: a name, a code and a message that says what to do. */
export class StoreError extends Error {
  override readonly name: string = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A write was sent but its answer was lost (timeout, connection lost): it may or may not have
 * been applied. Never treat it as failed; call `store.resolveWrite(writeId)` once the store
 * answers again, or retry with the same write id.
 */
export class OutcomeUnknownError extends StoreError {
  override readonly name = "OutcomeUnknownError";
  constructor(
    readonly writeId: string,
    readonly key: string,
    options?: { cause?: unknown },
  ) {
    super(
      "OUTCOME_UNKNOWN",
      `write ${writeId} to ${quote(key)} may or may not have been applied; resolve it with resolveWrite("${writeId}") or retry with the same write id`,
      options,
    );
  }
}

/** The store could not be reached or has no quorum; the call certainly had no effect. */
export class StoreUnavailableError extends StoreError {
  override readonly name = "StoreUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("UNAVAILABLE", message, options);
  }
}

/** The lease does not exist (expired or revoked): grant a new one and register again. */
export class LeaseNotFoundError extends StoreError {
  override readonly name = "LeaseNotFoundError";
  constructor(
    readonly lease: LeaseId,
    options?: { cause?: unknown },
  ) {
    super("LEASE_NOT_FOUND", `lease ${quote(lease)} does not exist (expired or revoked); grant a new lease`, options);
  }
}

/** A watch asked for history the store no longer keeps: list again and watch from there. */
export class CompactedError extends StoreError {
  override readonly name = "CompactedError";
  constructor(
    readonly compactRevision: number,
    options?: { cause?: unknown },
  ) {
    super("COMPACTED", `revisions up to ${compactRevision} were compacted; list again and watch from the list's revision + 1`, options);
  }
}

/**
 * A fenced write was refused: its fence key moved on (for the registry: the primary moved, so the
 * instance that admitted the write is no longer the primary). Nothing was written, for good:
 * the write can never apply later, so it is safe to report it as failed.
 */
export class FencedError extends StoreError {
  override readonly name = "FencedError";
  constructor(
    readonly key: string,
    readonly fence: Fence,
    /** The fence key's mod revision now (0: the fence key is gone). */
    readonly currentRevision: number,
    options?: { cause?: unknown },
  ) {
    super(
      "FENCED",
      `write to ${quote(key)} refused: it was admitted while ${quote(fence.key)} was at revision ${fence.modRevision}, and that key has since moved to ${currentRevision === 0 ? "nothing (deleted)" : `revision ${currentRevision}`}; nothing was written`,
      options,
    );
  }
}

/** Checks a fence's shape (a non-empty key, a positive revision). */
export function checkFence(fence: Fence | undefined): Fence | undefined {
  if (fence !== undefined && (fence.key.length === 0 || !(Number.isSafeInteger(fence.modRevision) && fence.modRevision > 0))) {
    throw new StoreError("INVALID_ARGUMENT", `a fence needs a key and a positive mod revision, got ${quote(fence.key)}@${fence.modRevision}`);
  }
  return fence;
}

/** The error of an operation given up because its signal aborted, by whether it may have been sent. */
export function abortedError(op: { key: string; writeId?: string }, sent: boolean, cause?: unknown): StoreError {
  if (sent && op.writeId !== undefined) return new OutcomeUnknownError(op.writeId, op.key, { cause });
  return new StoreUnavailableError(`${op.writeId === undefined ? "read of" : "write to"} ${quote(op.key)} cancelled before it was sent; nothing was done`, { cause });
}

/**
 * Bounds a store call by a timeout and an abort signal, for calls whose client cannot be
 * cancelled mid-way: whichever comes first rejects with `giveUp()` (the call itself is left to
 * finish on its own; its answer is dropped). No timer when `timeoutMs` is undefined.
 */
export function bounded<T>(call: Promise<T>, limits: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined }, giveUp: () => Error): Promise<T> {
  const { timeoutMs, signal } = limits;
  if (timeoutMs === undefined && signal === undefined) return call;
  if (signal?.aborted) {
    call.catch(() => undefined);
    return Promise.reject(giveUp());
  }
  return new Promise<T>((resolve, reject) => {
    const stop = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
    };
    const abort = () => {
      stop();
      call.catch(() => undefined);
      reject(giveUp());
    };
    const timer = timeoutMs === undefined ? undefined : setTimeout(abort, Math.min(2 ** 31 - 1, Math.max(0, timeoutMs)));
    signal?.addEventListener("abort", abort, { once: true });
    call.then(
      (v) => {
        stop();
        resolve(v);
      },
      (e: unknown) => {
        stop();
        reject(e);
      },
    );
  });
}

/** The store was closed. */
export class StoreClosedError extends StoreError {
  override readonly name = "StoreClosedError";
  constructor() {
    super("CLOSED", "the store was closed; create a new one");
  }
}

/** Creates a fresh write id: 16 url-safe characters of randomness. */
export function newWriteId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Buffer.from(bytes).toString("base64url");
}

/** A write id must be url-safe base64 characters, 1 to 64 of them (it is stored in keys). */
export function checkWriteId(writeId: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(writeId)) {
    throw new StoreError("INVALID_ARGUMENT", `write id ${quote(writeId)} must be 1-64 characters of [A-Za-z0-9_-]`);
  }
  return writeId;
}
