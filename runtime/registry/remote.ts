import { createClient, type Client } from "../rpc/client.js";
import { Code, RpcError } from "../rpc/errors.js";
import type { ClientTransport } from "../rpc/transport.js";
import { AsyncQueue } from "./async-queue.js";
import { Event_Type, Registry, type KeyValue as WireKeyValue, type WatchResponse } from "./embedded/gen/registry.js";
import { FENCE_REVISION_HEADER } from "./embedded/server.js";
import {
  CompactedError,
  FencedError,
  LeaseNotFoundError,
  OutcomeUnknownError,
  StoreClosedError,
  StoreError,
  StoreUnavailableError,
  checkFence,
  checkWriteId,
  newWriteId,
  quote,
  type Fence,
  type GetResult,
  type KeyValue,
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
} from "./store.js";

/** Options of createRemoteStore. */
export interface RemoteStoreOptions {
  /** A client transport (the TCP transport); closed with the store unless `ownTransport` is false. */
  readonly transport: ClientTransport;
  /** The registry server's address (`host:port`). */
  readonly address: string;
  /** Default timeout of every call, ms. Default 3000. */
  readonly timeoutMs?: number;
  /** How long one watch long poll waits on the server, ms. Default 5000. */
  readonly pollWaitMs?: number;
  /**
   * Long polls each watch keeps waiting at the server. A change answers one of them, which is
   * away for a round trip before it waits again; a change that finds none waiting waits for the
   * next to arrive. Keep more than the changes a watch sees in one round trip. Default 6.
   */
  readonly watchPolls?: number;
  /** Whether closing the store closes the transport. Default true. */
  readonly ownTransport?: boolean;
  /**
   * A bearer token for a registry server that authenticates by token (development; production
   * uses mTLS: give the transport `tls: { ca, cert, key }`). Sent as `authorization: Bearer <token>`.
   */
  readonly token?: string;
}

/**
 * The StoreError of a call the server refused before doing anything (bad input, a quota, missing
 * or insufficient credentials): certainly not applied, and not worth retrying as is.
 */
function refusal(e: RpcError): StoreError | undefined {
  switch (e.code) {
    case Code.INVALID_ARGUMENT:
      return new StoreError("INVALID_ARGUMENT", e.message, { cause: e });
    case Code.RESOURCE_EXHAUSTED:
      return new StoreError("RESOURCE_EXHAUSTED", e.message, { cause: e });
    case Code.UNAUTHENTICATED:
      return new StoreError("UNAUTHENTICATED", `the registry server refused the call: ${e.message}`, { cause: e });
    case Code.PERMISSION_DENIED:
      return new StoreError("PERMISSION_DENIED", `the registry server refused the call: ${e.message}`, { cause: e });
    default:
      return undefined;
  }
}

function fromWire(kv: WireKeyValue): KeyValue {
  return {
    key: kv.key,
    value: kv.value,
    modRevision: kv.modRevision,
    createRevision: kv.createRevision,
    version: kv.version,
    lease: kv.lease === "" ? undefined : kv.lease,
    writeId: kv.writeId,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A Store that talks to an embedded registry server (serveRegistry) over a Meridian transport.
 * A write whose call failed after it may have been sent (timeout, connection lost) throws
 * OutcomeUnknownError; one that surely never left (`notSent`) throws StoreUnavailableError.
 * Watch is a loop of long polls, resumed from the last revision seen after any failure.
 */
export function createRemoteStore(options: RemoteStoreOptions): Store {
  if (options.token !== undefined && (options.token === "" || /\s/.test(options.token))) {
    throw new StoreError("INVALID_ARGUMENT", "createRemoteStore: token must be a non-empty string without spaces");
  }
  const headers = options.token === undefined ? undefined : { authorization: `Bearer ${options.token}` };
  const client = createClient(Registry, { transport: options.transport, endpoints: [{ address: options.address }], ...(headers === undefined ? {} : { headers }) });
  return new RemoteStore(client, options);
}

class RemoteStore implements Store {
  readonly kind = "remote";
  private readonly timeoutMs: number;
  private readonly pollWaitMs: number;
  private readonly watches = new Set<AsyncQueue<WatchBatch>>();
  private closed = false;

  constructor(
    private readonly client: Client<typeof Registry>,
    private readonly options: RemoteStoreOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.pollWaitMs = options.pollWaitMs ?? 5000;
  }

  async get(key: string, options: ReadOptions = {}): Promise<GetResult> {
    const r = await this.read(() => this.client.get({ key }, this.callOptions(options)));
    return { kv: r.kv ? fromWire(r.kv) : undefined, revision: r.revision };
  }

  async list(prefix: string, options: ReadOptions = {}): Promise<ListResult> {
    const r = await this.read(() => this.client.list({ prefix }, this.callOptions(options)));
    return { kvs: r.kvs.map(fromWire), revision: r.revision };
  }

  async compareAndSet(key: string, value: string, expected: number, options: WriteOptions = {}): Promise<WriteResult> {
    const writeId = checkWriteId(options.writeId ?? newWriteId());
    const fence = checkFence(options.fence);
    const r = await this.write(key, writeId, options.lease, fence, () =>
      this.client.compareAndSet(
        { key, value, expectedModRevision: expected, lease: options.lease ?? "", writeId, fenceKey: fence?.key ?? "", fenceModRevision: fence?.modRevision ?? 0 },
        this.callOptions(options),
      ),
    );
    return r.ok ? { ok: true, revision: r.revision, writeId } : { ok: false, revision: r.revision, current: r.current ? fromWire(r.current) : undefined };
  }

  async delete(key: string, expected?: number, options: Omit<WriteOptions, "lease"> = {}): Promise<WriteResult> {
    const writeId = checkWriteId(options.writeId ?? newWriteId());
    const fence = checkFence(options.fence);
    const r = await this.write(key, writeId, undefined, fence, () =>
      this.client.delete(
        { key, expectedModRevision: expected, writeId, fenceKey: fence?.key ?? "", fenceModRevision: fence?.modRevision ?? 0 },
        this.callOptions(options),
      ),
    );
    return r.ok ? { ok: true, revision: r.revision, writeId } : { ok: false, revision: r.revision, current: r.current ? fromWire(r.current) : undefined };
  }

  async grantLease(ttlMs: number, options: { timeoutMs?: number } = {}): Promise<Lease> {
    // A lease granted whose answer was lost just expires: safe to report as a plain failure.
    const r = await this.read(() => this.client.grantLease({ ttlMs }, { timeoutMs: options.timeoutMs ?? this.timeoutMs }));
    return { id: r.id, ttlMs: r.ttlMs };
  }

  async keepAlive(lease: LeaseId, options: { timeoutMs?: number } = {}): Promise<{ ttlMs: number }> {
    try {
      const r = await this.read(() => this.client.keepAlive({ lease }, { timeoutMs: options.timeoutMs ?? this.timeoutMs }));
      return { ttlMs: r.ttlMs };
    } catch (e) {
      if (e instanceof StoreUnavailableError && e.cause instanceof RpcError && e.cause.code === Code.NOT_FOUND) throw new LeaseNotFoundError(lease, { cause: e.cause });
      throw e;
    }
  }

  async revokeLease(lease: LeaseId, options: { timeoutMs?: number } = {}): Promise<void> {
    await this.read(() => this.client.revokeLease({ lease }, { timeoutMs: options.timeoutMs ?? this.timeoutMs }));
  }

  async resolveWrite(writeId: string, options: { timeoutMs?: number } = {}): Promise<WriteResolution> {
    const r = await this.read(() => this.client.resolveWrite({ writeId }, { timeoutMs: options.timeoutMs ?? this.timeoutMs }));
    return r.applied ? { status: "applied", revision: r.revision } : { status: "not_applied" };
  }

  watch(prefix: string, fromRevision: number, options: WatchOptions = {}): AsyncIterable<WatchBatch> {
    this.checkOpen();
    const controller = new AbortController();
    const onAbort = () => queue.end();
    const queue: AsyncQueue<WatchBatch> = new AsyncQueue(() => {
      controller.abort();
      options.signal?.removeEventListener("abort", onAbort);
      this.watches.delete(queue);
    });
    this.watches.add(queue);
    if (options.signal?.aborted) queue.end();
    else {
      options.signal?.addEventListener("abort", onAbort);
      void this.poll(prefix, fromRevision, queue, controller.signal);
    }
    return queue;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const queue of [...this.watches]) queue.end();
    if (this.options.ownTransport !== false) await this.options.transport.close();
  }

  /**
   * The long polls of one watch. `watchPolls` polls of one session are kept at the server (see
   * the Watch call in registry.proto): a change answers one, and the others still wait while that
   * answer travels back and the next poll travels out, so no change waits for a round trip.
   * Answers may overlap (a poll starts from the revision it was sent with); events already
   * delivered are dropped, so the consumer sees each change once, in order.
   */
  private async poll(prefix: string, fromRevision: number, queue: AsyncQueue<WatchBatch>, signal: AbortSignal): Promise<void> {
    // Renewed after a failed poll: its answer may have been lost, and the server holds back polls
    // asking only for what it already sent the session (see waitForChanges).
    let session = newWriteId();
    const live = () => !signal.aborted && !this.closed && !failed;
    let failed = false;
    /** The first revision not delivered yet. */
    let next = fromRevision;
    const call = (from: number, waitMs: number) =>
      this.client.watch({ prefix, fromRevision: from, waitMs, limit: 0, session }, { timeoutMs: waitMs + this.timeoutMs, signal });
    const backoff = { ms: 100 };
    const retry = async () => {
      await sleep(backoff.ms);
      backoff.ms = Math.min(2000, backoff.ms * 2);
    };
    /** Ends the watch when the server refused the poll for its credentials: polling again would be refused again. */
    const refused = (e: unknown): boolean => {
      if (!(e instanceof RpcError && (e.code === Code.UNAUTHENTICATED || e.code === Code.PERMISSION_DENIED))) return false;
      if (!failed) queue.fail(refusal(e)!);
      failed = true;
      return true;
    };
    // "From now": learn the current revision first, so every poll starts from the same one.
    while (next === 0 && live()) {
      try {
        next = (await call(0, 0)).revision + 1;
      } catch (e) {
        if (signal.aborted || refused(e)) return;
        await retry();
      }
    }
    const worker = async (): Promise<void> => {
      while (live()) {
        // Waits differ a little, so the polls do not time out (and leave) together.
        const waitMs = Math.round(this.pollWaitMs * (0.8 + 0.4 * Math.random()));
        let res: WatchResponse;
        try {
          res = await call(next, waitMs);
        } catch (e) {
          if (signal.aborted || refused(e)) return;
          session = newWriteId();
          await retry();
          continue;
        }
        backoff.ms = 100;
        if (!live()) return;
        if (res.compactRevision > 0) {
          failed = true;
          queue.fail(new CompactedError(res.compactRevision));
          return;
        }
        if (res.revision < next - 1) {
          // The server's history ends before what this watch already delivered: it was restored
          // from an older snapshot. Its revisions restart below ours, so waiting for "next" would
          // miss every change: make the consumer list again, as after compaction.
          failed = true;
          queue.fail(new CompactedError(res.revision));
          return;
        }
        if (res.revision < next) continue;
        const events = res.events
          .filter((e) => e.revision >= next)
          .map((e) =>
            e.type === Event_Type.DELETE || !e.kv
              ? ({ type: "delete", key: e.key, revision: e.revision } as const)
              : ({ type: "put", key: e.key, kv: fromWire(e.kv), revision: e.revision } as const),
          );
        queue.push({ events, revision: res.revision });
        next = res.revision + 1;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.options.watchPolls ?? 6) }, () => worker()));
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /** A call's timeout and signal: the caller's, else the store's default timeout. */
  private callOptions(options: { timeoutMs?: number; signal?: AbortSignal }): { timeoutMs: number; signal?: AbortSignal } {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return options.signal === undefined ? { timeoutMs } : { timeoutMs, signal: options.signal };
  }

  /** A call without side effects (or whose lost answer is harmless): any failure is "unavailable". */
  private async read<T>(op: () => Promise<T>): Promise<T> {
    this.checkOpen();
    try {
      return await op();
    } catch (e) {
      const refused = e instanceof RpcError ? refusal(e) : undefined;
      if (refused !== undefined) throw refused;
      throw new StoreUnavailableError(`registry server did not answer: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  private async write<T>(key: string, writeId: string, lease: LeaseId | undefined, fence: Fence | undefined, op: () => Promise<T>): Promise<T> {
    this.checkOpen();
    try {
      return await op();
    } catch (e) {
      if (!(e instanceof RpcError)) throw new OutcomeUnknownError(writeId, key, { cause: e });
      if (e.code === Code.NOT_FOUND) throw new LeaseNotFoundError(lease ?? "", { cause: e });
      if (e.code === Code.FAILED_PRECONDITION && fence !== undefined) {
        throw new FencedError(key, fence, Number(e.headers[FENCE_REVISION_HEADER] ?? 0), { cause: e });
      }
      // Refused before the handler (bad input, a limit, a shed queue, credentials): certainly not applied.
      const refused = refusal(e);
      if (refused !== undefined) throw refused;
      if (e.notSent) throw new StoreUnavailableError(`write to ${quote(key)} was not sent: ${e.message}`, { cause: e });
      throw new OutcomeUnknownError(writeId, key, { cause: e });
    }
  }
}
