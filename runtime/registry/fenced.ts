/**
 * Fenced writes for handlers: what fencingMiddleware admitted a call under (the primary's epoch
 * and its record's revision), a key/value API bound to the call that carries that fence into the
 * store in the same atomic step as the write, and the fencing-token rule for a database a service
 * keeps itself. A primary that lost its role between admitting a call and writing (a GC pause, a
 * stalled event loop) then has its write refused instead of landing after the new primary's.
 */
import { createContextKey, type CallContext } from "../rpc/context.js";
import { Code, RpcError } from "../rpc/errors.js";
import type { Registry, RegistryKv } from "./client.js";
import {
  FencedError,
  LeaseNotFoundError,
  OutcomeUnknownError,
  StoreError,
  quote,
  type Fence,
  type GetResult,
  type ListResult,
  type ReadOptions,
  type WatchBatch,
  type WriteOptions,
  type WriteResult,
} from "./store.js";

/** What fencingMiddleware admitted a call under: the service's primary as it was then. */
export interface AdmittedPrimary {
  readonly service: string;
  /** The primary region (this server's). */
  readonly region: string;
  /** The primary epoch: the fencing token for a service's own database (see checkFencingToken). */
  readonly epoch: number;
  /** The store fence: the primary record's key at the revision that made this epoch. */
  readonly fence: Fence;
}

/** How many store writes fencedKv made for a call without an explicit write id (see fencedKv). */
const callWritesKey = createContextKey<{ count: number } | undefined>(undefined, { description: "meridian fenced writes of the call" });

/**
 * The write id of a call's next store write without an explicit one: the call's `x-write-id`
 * (set by consistencyMiddleware) for the first, `<id>-2`, `<id>-3`, ... for the next ones, so a
 * caller whose write timed out can settle the first by the id it knows. Undefined (a fresh id)
 * when the call has no valid id.
 */
function nextCallWriteId(ctx: CallContext): string | undefined {
  const base = ctx.headers[WRITE_ID_HEADER];
  if (base === undefined || !/^[A-Za-z0-9_-]{1,56}$/.test(base)) return undefined;
  let state = ctx.values.get(callWritesKey);
  if (state === undefined) ctx.values.set(callWritesKey, (state = { count: 0 }));
  state.count++;
  return state.count === 1 ? base : `${base}-${state.count}`;
}

/** Set by fencingMiddleware on every call it admits as the primary's (writes, linearizable reads). */
export const admittedPrimaryKey = createContextKey<AdmittedPrimary | undefined>(undefined, { description: "meridian admitted primary" });

/** Response header on a write refused or left in doubt: the write id the handler used. */
export const WRITE_ID_HEADER = "x-write-id";
/** Response header on a failed write: `not-applied` (for good) or `unknown` (resolve it by write id). */
export const WRITE_OUTCOME_HEADER = "x-write-outcome";

/** The primary this call was admitted under; FAILED_PRECONDITION when fencingMiddleware did not admit it. */
export function admittedPrimary(ctx: CallContext): AdmittedPrimary {
  const admitted = ctx.values.get(admittedPrimaryKey);
  if (admitted === undefined) {
    throw new RpcError(
      Code.FAILED_PRECONDITION,
      `${ctx.service.typeName}/${ctx.method.name}: no primary admitted this call; put fencingMiddleware in the server's middleware and give the service a primary (ensurePrimary)`,
    );
  }
  return admitted;
}

/**
 * The fencing token of this call: the primary epoch fencingMiddleware admitted it under. Send it
 * with every write to a database the service keeps itself, and have the database refuse a write
 * whose token is lower than the highest it has seen (checkFencingToken), in the same transaction
 * as the write.
 */
export function fencingToken(ctx: CallContext): number {
  return admittedPrimary(ctx).epoch;
}

/** A write to a service's own database carried a token older than one the database has seen. */
export class StaleTokenError extends RpcError {
  override readonly name = "StaleTokenError";
  constructor(
    readonly token: number,
    readonly highestSeen: number,
  ) {
    super(
      Code.FAILED_PRECONDITION,
      `write refused: its fencing token (primary epoch ${token}) is older than epoch ${highestSeen}, which has written already; the primary moved, nothing was written`,
      { headers: { [WRITE_OUTCOME_HEADER]: "not-applied" } },
    );
  }
}

/**
 * The fencing-token rule for a service's own database, to run inside the database transaction
 * that makes the write: given the highest token the database has stored (undefined: none yet)
 * and the write's token, returns the token to store with the write, or throws StaleTokenError
 * (FAILED_PRECONDITION) when a newer primary has written already. Reading the stored token, this
 * check and the write must be one atomic step (one transaction, `SELECT ... FOR UPDATE`, or a
 * conditional `UPDATE ... WHERE token <= $token`); see docs/registry.md.
 */
export function checkFencingToken(highestSeen: number | undefined, token: number): number {
  if (!Number.isSafeInteger(token) || token <= 0) throw new RpcError(Code.INVALID_ARGUMENT, `a fencing token is a positive primary epoch, got ${token}`);
  if (highestSeen !== undefined && token < highestSeen) throw new StaleTokenError(token, highestSeen);
  return Math.max(token, highestSeen ?? 0);
}

/** A store error as the RpcError a handler should answer with, saying what happened to the write. */
export function storeErrorToRpc(e: unknown, ctx: CallContext, admitted?: AdmittedPrimary): RpcError {
  if (e instanceof RpcError) return e;
  const writeId = e instanceof OutcomeUnknownError ? e.writeId : undefined;
  const outcome = (value: "not-applied" | "unknown") => {
    ctx.responseHeaders[WRITE_OUTCOME_HEADER] = value;
    if (writeId !== undefined) ctx.responseHeaders[WRITE_ID_HEADER] = writeId;
  };
  if (e instanceof FencedError) {
    outcome("not-applied");
    const who = admitted ? `${admitted.region} admitted it as the primary of ${admitted.service} (epoch ${admitted.epoch}), ` : "";
    return new RpcError(Code.FAILED_PRECONDITION, `write to ${quote(e.key)} refused: ${who}but the primary has moved since; nothing was written`, { cause: e });
  }
  if (e instanceof OutcomeUnknownError) {
    outcome("unknown");
    return new RpcError(Code.UNKNOWN, `the outcome of ${e.message}`, { cause: e });
  }
  if (e instanceof LeaseNotFoundError) {
    outcome("not-applied");
    return new RpcError(Code.FAILED_PRECONDITION, e.message, { cause: e });
  }
  if (e instanceof StoreError) {
    if (e.code === "INVALID_ARGUMENT") return new RpcError(Code.INVALID_ARGUMENT, e.message, { cause: e });
    outcome("not-applied");
    if (e.code === "RESOURCE_EXHAUSTED") return new RpcError(Code.RESOURCE_EXHAUSTED, e.message, { cause: e });
    if (e.code === "UNAUTHENTICATED") return new RpcError(Code.UNAUTHENTICATED, `the registry store refused this server's credentials: ${e.message}`, { cause: e });
    if (e.code === "PERMISSION_DENIED") return new RpcError(Code.PERMISSION_DENIED, `the registry store refused: ${e.message}`, { cause: e });
    return new RpcError(Code.UNAVAILABLE, `the registry store failed: ${e.message}`, { cause: e });
  }
  return RpcError.from(e, Code.INTERNAL);
}

/**
 * The registry's key/value API bound to one call (see fencedKv): writes carry the call's fence,
 * every operation its deadline and cancellation, and failures are RpcErrors that say what
 * happened to the write.
 */
export interface FencedKv extends RegistryKv {
  /** What the call was admitted under (its epoch is the call's fencing token). */
  readonly admitted: AdmittedPrimary;
}

/**
 * The registry's key/value store (keys under `<prefix>kv/`) for a handler of a call that
 * fencingMiddleware admitted as the primary's: every write applies only while that primary is
 * still current, checked by the store in the same atomic step as the write, so a primary that
 * paused after admitting the call cannot write after its successor. A refused write fails
 * FAILED_PRECONDITION (`x-write-outcome: not-applied`); a write whose answer was lost fails
 * UNKNOWN naming its write id (`x-write-id`, `x-write-outcome: unknown`; settle it with
 * `registry.store.resolveWrite(id)`, or retry with the same write id). Reads and writes are bounded
 * by the call's deadline and end when it is cancelled. A write without `writeId` takes the
 * call's `x-write-id` (the first one; `<id>-2`, ... after it), so the caller knows the id of a
 * write whose answer it never got; pass `writeId` to choose it (and to retry one).
 */
export function fencedKv(registry: Registry, ctx: CallContext): FencedKv {
  const admitted = admittedPrimary(ctx);
  const limits = (): { timeoutMs?: number; signal: AbortSignal } => {
    const left = ctx.timeLeft();
    return left === undefined ? { signal: ctx.signal } : { timeoutMs: Math.max(1, left), signal: ctx.signal };
  };
  const kv = registry.kv;
  const run = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (e) {
      throw storeErrorToRpc(e, ctx, admitted);
    }
  };
  const writeOptions = (options: WriteOptions = {}): WriteOptions => {
    const writeId = options.writeId ?? nextCallWriteId(ctx);
    return { ...options, ...(writeId === undefined ? {} : { writeId }), ...limits(), fence: admitted.fence };
  };
  return {
    admitted,
    get: (key: string, options: ReadOptions = {}): Promise<GetResult> => run(() => kv.get(key, { ...options, ...limits() })),
    list: (prefix: string, options: ReadOptions = {}): Promise<ListResult> => run(() => kv.list(prefix, { ...options, ...limits() })),
    watch: (prefix: string, fromRevision: number, options = {}): AsyncIterable<WatchBatch> => kv.watch(prefix, fromRevision, { signal: ctx.signal, ...options }),
    create: (key: string, value: string, options?: WriteOptions): Promise<WriteResult> => run(() => kv.create(key, value, writeOptions(options))),
    cas: (key: string, value: string, expected: number, options?: WriteOptions): Promise<WriteResult> =>
      run(() => kv.cas(key, value, expected, writeOptions(options))),
    delete: (key: string, expected?: number, options?: Omit<WriteOptions, "lease">): Promise<WriteResult> =>
      run(() => kv.delete(key, expected, writeOptions(options))),
  };
}
