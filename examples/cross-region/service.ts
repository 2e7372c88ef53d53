/**
 * The demo's KeyValue service: handlers over the registry's store, the package's watch-fed
 * Replica per region for eventual reads, and the server middleware that tells callers when a failed write certainly
 * was not applied.
 *
 * Writes are applied by the primary region only: fencingMiddleware admits them at the door, and
 * the handlers write through fencedKv, so the store applies a write only while the primary that
 * admitted it is still current, in the same atomic step as the write (an instance that paused
 * after admitting a write cannot write after the primary moved). Each stored value is stamped
 * with the epoch and region that accepted it and when, so the coordinator can check from the
 * store's own history that no two primaries ever accepted writes at the same time.
 */
import { OutcomeUnknownError, fencedKv, type Replica, type KeyValue as StoredKeyValue, type Registry } from "meridian-rpc/registry";
import { Code, HeaderKeys, RpcError, createContextKey, type CallContext, type Handlers, type Middleware } from "meridian-rpc";
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
  /** When it was accepted (just before the fenced store write), demo clock ms. */
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

/** What the handlers need. */
export interface ServiceDeps {
  readonly region: string;
  readonly registry: Registry;
  readonly replica: Replica;
  /** Called when this region's store acknowledged a write (for the propagation window). */
  readonly onCommit: (revision: number, at: number) => void;
}

/** An error for a write that certainly was not applied. */
function notApplied(code: Code, message: string): RpcError {
  return new RpcError(code, message, { headers: { [WRITE_OUTCOME_HEADER]: "not-applied" } });
}

/** The service's keys in the registry's kv space (DATA_PREFIX is `meridian/kv/` + this). */
const KV_SPACE = DATA_PREFIX.slice("meridian/kv/".length);

/**
 * The KeyValue handlers. Writes: a linearizable read of the key, then a compare-and-set with the
 * caller's write id (so a retry after a lost answer can never apply twice), both through
 * fencedKv: bounded by the call's deadline, and the write fenced on the primary that admitted
 * the call. Reads: linearizable ones from the store (only the primary gets them, fenced),
 * eventual ones from the region's replica with `x-stale-ms`.
 */
export function keyValueHandlers(deps: ServiceDeps): Handlers<typeof KeyValue> {
  const { replica } = deps;

  /** One compare-and-set on a key; an unknown outcome is retried with the same write id while time is left. */
  async function write(
    ctx: CallContext,
    key: string,
    value: string,
    expected: number,
    writeId: string,
  ): Promise<{ ok: true; revision: number } | { ok: false; current: StoredKeyValue | undefined }> {
    const kv = fencedKv(deps.registry, ctx);
    const stamp: Stamp = { v: value, e: kv.admitted.epoch, r: deps.region, t: now() };
    for (;;) {
      ctx.values.set(writeSentKey, true);
      try {
        const r = await kv.cas(KV_SPACE + key, JSON.stringify(stamp), expected, { writeId });
        if (r.ok) {
          deps.onCommit(r.revision, now());
          return { ok: true, revision: r.revision };
        }
        return { ok: false, current: r.current && { ...r.current, key: DATA_PREFIX + key } };
      } catch (e) {
        // Same write id: it applies at most once, whatever the first attempt did.
        if (e instanceof RpcError && e.cause instanceof OutcomeUnknownError && (ctx.timeLeft() ?? Infinity) > 20) continue;
        throw e;
      }
    }
  }

  /** A linearizable read of a key from the store, for writes and linearizable reads. */
  async function readStore(ctx: CallContext, key: string): Promise<StoredKeyValue | undefined> {
    return (await fencedKv(deps.registry, ctx).get(KV_SPACE + key)).kv;
  }

  return {
    async put(req, ctx) {
      if (req.key === "" || req.writeId === "") throw notApplied(Code.INVALID_ARGUMENT, "Put needs a key and a write id");
      let expected = (await readStore(ctx, req.key))?.modRevision ?? 0;
      for (let attempt = 0; attempt < 8; attempt++) {
        const r = await write(ctx, req.key, req.value, expected, req.writeId);
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
      const r = await write(ctx, req.key, req.value, req.expectedRevision, req.writeId);
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
