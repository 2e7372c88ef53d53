/**
 * The demo's KeyValue service: handlers over the registry's store, a watch-fed replica per region
 * for eventual reads, and the server middleware that tells callers when a failed write certainly
 * was not applied.
 *
 * Writes are applied by the primary region only (fencingMiddleware at the door, and the same
 * fence again right before the store write, so a primary that lost its role between the two
 * cannot write). Each stored value is stamped with the epoch and region that accepted it and
 * when, so the coordinator can check from the store's own history that no two primaries ever
 * accepted writes at the same time.
 */
import {
  CompactedError,
  OutcomeUnknownError,
  StoreUnavailableError,
  fencingMiddleware,
  type KeyValue as StoredKeyValue,
  type Registry,
  type Store,
} from "meridian-rpc/registry";
import {
  Code,
  HeaderKeys,
  RpcError,
  createContextKey,
  type CallContext,
  type Handlers,
  type MethodDescriptor,
  type Middleware,
  type RpcRequest,
} from "meridian-rpc/runtime";
import { KeyValue } from "./gen/kv.js";
import { DATA_PREFIX, WRITE_OUTCOME_HEADER, now } from "./protocol.js";

/** What the store holds for a key: the caller's value, stamped by the primary that accepted it. */
export interface Stamp {
  /** The value the client wrote. */
  readonly v: string;
  /** Primary epoch under which the write was accepted. */
  readonly e: number;
  /** Region that accepted it. */
  readonly r: string;
  /** When it was accepted (the last fence check before the store write), demo clock ms. */
  readonly t: number;
}

/** Parses a stored value; a value not written by the demo reads as itself with epoch 0. */
export function parseStamp(raw: string): Stamp {
  try {
    const s = JSON.parse(raw) as Partial<Stamp>;
    if (typeof s.v === "string" && typeof s.e === "number") return { v: s.v, e: s.e, r: String(s.r ?? ""), t: Number(s.t ?? 0) };
  } catch {
    // Not ours.
  }
  return { v: raw, e: 0, r: "", t: 0 };
}

/** Set once a handler has sent its write to the store: from then on a failure is not "certainly not applied". */
const writeSentKey = createContextKey<boolean>(false, { description: "demo: store write sent" });

/**
 * Server middleware (outermost): when a write fails before its handler sent anything to the store
 * (fenced, not the primary, lease lost, store unreachable before the write), the error says so
 * with `x-write-outcome: not-applied`, so the caller can record it as failed rather than unknown.
 */
export const writeOutcomeMiddleware: Middleware = (next) => async (req) => {
  try {
    return await next(req);
  } catch (e) {
    if (req.method.idempotency !== "NO_SIDE_EFFECTS" && !req.ctx.values.get(writeSentKey)) {
      req.ctx.responseHeaders[WRITE_OUTCOME_HEADER] = "not-applied";
    }
    throw e;
  }
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A region's copy of the service's keys: listed, then kept current by a watch on the store. It
 * knows how current it is: every `syncMs` it makes a linearizable list of the keys' revisions, and
 * once it holds every one of them it is known current as of when that list was issued. A read
 * served here says how stale it may be (`x-stale-ms`), which grows while the region is cut off.
 */
export class Replica {
  private readonly data = new Map<string, StoredKeyValue>();
  private currentAsOf = 0;
  private readonly controller = new AbortController();
  private readonly ready: Promise<void>;
  private readyResolve!: () => void;

  constructor(
    private readonly store: Store,
    private readonly syncMs: number,
    private readonly timeoutMs: number,
    /** Called for every revision of a key this replica applies, with the time. */
    private readonly onApplied: (key: string, revision: number, at: number) => void,
  ) {
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
    void this.follow();
    void this.sync();
  }

  /** Waits for the first listing. */
  async whenReady(): Promise<void> {
    await this.ready;
  }

  get(key: string): StoredKeyValue | undefined {
    return this.data.get(key);
  }

  /** The revision held for each key. */
  revisions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, kv] of this.data) out[key.slice(DATA_PREFIX.length)] = kv.modRevision;
    return out;
  }

  /** How stale a read served now may be, ms (Infinity before the first sync). */
  staleMs(): number {
    return this.currentAsOf === 0 ? Infinity : Math.max(0, now() - this.currentAsOf);
  }

  stop(): void {
    this.controller.abort();
  }

  private apply(kv: StoredKeyValue): void {
    const held = this.data.get(kv.key);
    if (held !== undefined && held.modRevision >= kv.modRevision) return;
    this.data.set(kv.key, kv);
    this.onApplied(kv.key.slice(DATA_PREFIX.length), kv.modRevision, now());
  }

  private async follow(): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      try {
        const listed = await this.store.list(DATA_PREFIX, { timeoutMs: this.timeoutMs });
        for (const kv of listed.kvs) this.apply(kv);
        this.readyResolve();
        for await (const batch of this.store.watch(DATA_PREFIX, listed.revision + 1, { signal })) {
          for (const e of batch.events) if (e.type === "put") this.apply(e.kv);
        }
      } catch (e) {
        if (signal.aborted) return;
        if (!(e instanceof CompactedError)) await sleep(200);
      }
    }
  }

  private async sync(): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      const issued = now();
      try {
        const listed = await this.store.list(DATA_PREFIX, { timeoutMs: this.timeoutMs });
        // Wait briefly for the watch to deliver what the list saw, then judge.
        for (let i = 0; i < 5 && !this.holds(listed.kvs); i++) await sleep(20);
        if (this.holds(listed.kvs)) this.currentAsOf = Math.max(this.currentAsOf, issued);
      } catch {
        // Cut off: currentAsOf stays where it was and staleness grows.
      }
      await sleep(Math.max(0, this.syncMs - (now() - issued)));
    }
  }

  private holds(kvs: readonly StoredKeyValue[]): boolean {
    return kvs.every((kv) => (this.data.get(kv.key)?.modRevision ?? 0) >= kv.modRevision);
  }
}

/** What the handlers need. */
export interface ServiceDeps {
  readonly region: string;
  readonly registry: Registry;
  readonly store: Store;
  readonly replica: Replica;
  readonly storeTimeoutMs: number;
  /** Called when this region's store acknowledged a write (for the propagation window). */
  readonly onCommit: (revision: number, at: number) => void;
}

/** An error for a write that certainly was not applied. */
function notApplied(code: Code, message: string): RpcError {
  return new RpcError(code, message, { headers: { [WRITE_OUTCOME_HEADER]: "not-applied" } });
}

/** The time left for a store call: the call's budget minus a margin for the answer's trip back. */
function budget(ctx: CallContext, storeTimeoutMs: number): number {
  const left = ctx.timeLeft();
  return left === undefined ? storeTimeoutMs : Math.min(storeTimeoutMs, left - 50);
}

/**
 * The KeyValue handlers. Writes: a linearizable read of the key, the fence again, then a
 * compare-and-set with the caller's write id (so a retry after a lost answer can never apply
 * twice). Reads: linearizable ones from the store (only the primary gets them, fenced), eventual
 * ones from the region's replica with `x-stale-ms`.
 */
export function keyValueHandlers(deps: ServiceDeps): Handlers<typeof KeyValue> {
  const { store, replica, storeTimeoutMs } = deps;
  const fence = fencingMiddleware(deps.registry);

  /** Runs the fence for this call again; returns the epoch it confirmed. */
  async function fenceAgain(method: MethodDescriptor, message: unknown, ctx: CallContext): Promise<number> {
    const req: RpcRequest = { service: KeyValue, method, message, headers: ctx.headers, ctx };
    await fence(async () => ({ message: undefined, headers: {} }))(req);
    return Number(ctx.responseHeaders[HeaderKeys.epoch] ?? 0);
  }

  /** One compare-and-set attempt on a key; unknown outcomes are retried with the same write id. */
  async function write(
    method: MethodDescriptor,
    message: unknown,
    ctx: CallContext,
    key: string,
    value: string,
    expected: number,
    writeId: string,
  ): Promise<{ ok: true; revision: number } | { ok: false; current: StoredKeyValue | undefined }> {
    for (;;) {
      const timeoutMs = budget(ctx, storeTimeoutMs);
      if (timeoutMs < 20) {
        if (ctx.values.get(writeSentKey)) throw new RpcError(Code.DEADLINE_EXCEEDED, `write ${writeId} ran out of time; its outcome is unknown`);
        throw notApplied(Code.DEADLINE_EXCEEDED, `write ${writeId} ran out of time before it was sent`);
      }
      let epoch: number;
      try {
        epoch = await fenceAgain(method, message, ctx);
      } catch (e) {
        // Refused by the fence: if an earlier attempt's outcome is unknown, so is this write's.
        if (ctx.values.get(writeSentKey)) throw new RpcError(Code.UNAVAILABLE, `write ${writeId}: ${(e as Error).message}; an earlier attempt's outcome is unknown`);
        throw e;
      }
      const stamp: Stamp = { v: value, e: epoch, r: deps.region, t: now() };
      ctx.values.set(writeSentKey, true);
      try {
        const r = await store.compareAndSet(DATA_PREFIX + key, JSON.stringify(stamp), expected, { writeId, timeoutMs });
        if (r.ok) {
          deps.onCommit(r.revision, now());
          return { ok: true, revision: r.revision };
        }
        return { ok: false, current: r.current };
      } catch (e) {
        if (e instanceof OutcomeUnknownError) continue; // same write id: applies at most once
        throw new RpcError(Code.UNAVAILABLE, `the store failed the write: ${(e as Error).message}`);
      }
    }
  }

  /** A linearizable read of a key from the store, for writes and linearizable reads. */
  async function readStore(ctx: CallContext, key: string): Promise<StoredKeyValue | undefined> {
    try {
      return (await store.get(DATA_PREFIX + key, { timeoutMs: budget(ctx, storeTimeoutMs) })).kv;
    } catch (e) {
      if (e instanceof StoreUnavailableError) throw notApplied(Code.UNAVAILABLE, `the store cannot be read from ${deps.region}: ${e.message}`);
      throw e;
    }
  }

  return {
    async put(req, ctx) {
      if (req.key === "" || req.writeId === "") throw notApplied(Code.INVALID_ARGUMENT, "Put needs a key and a write id");
      let expected = (await readStore(ctx, req.key))?.modRevision ?? 0;
      for (let attempt = 0; attempt < 8; attempt++) {
        const r = await write(KeyValue.methods.put, req, ctx, req.key, req.value, expected, req.writeId);
        if (r.ok) return { revision: r.revision };
        // Someone wrote in between (so no earlier attempt of this write can apply any more: its
        // compare would fail too): try again on the revision the store just reported.
        expected = r.current?.modRevision ?? 0;
        ctx.values.set(writeSentKey, false);
      }
      throw notApplied(Code.ABORTED, `Put ${req.key}: the key kept changing; try again`);
    },

    async compareAndSet(req, ctx) {
      if (req.key === "" || req.writeId === "") throw notApplied(Code.INVALID_ARGUMENT, "CompareAndSet needs a key and a write id");
      const r = await write(KeyValue.methods.compareAndSet, req, ctx, req.key, req.value, req.expectedRevision, req.writeId);
      if (r.ok) return { applied: true, revision: r.revision };
      if (r.current === undefined) return { applied: false, found: false };
      return { applied: false, found: true, currentValue: parseStamp(r.current.value).v, currentRevision: r.current.modRevision };
    },

    async get(req, ctx) {
      if (ctx.consistency === "linearizable") {
        const kv = await readStore(ctx, req.key);
        return kv === undefined ? { found: false } : { found: true, value: parseStamp(kv.value).v, revision: kv.modRevision };
      }
      const stale = replica.staleMs();
      ctx.responseHeaders[HeaderKeys.staleness] = Number.isFinite(stale) ? String(Math.round(stale)) : "unknown";
      const kv = replica.get(DATA_PREFIX + req.key);
      return kv === undefined ? { found: false } : { found: true, value: parseStamp(kv.value).v, revision: kv.modRevision };
    },
  };
}
