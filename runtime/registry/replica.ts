/**
 * A watch-fed replica: a region's local copy of the keys under a prefix (of `registry.kv` or of
 * a Store), for eventual reads served in the region, with a bound on how stale it may be.
 */
import type { RegistryKv } from "./client.js";
import { ReplicaClock } from "./staleness.js";
import { CompactedError, type KeyValue } from "./store.js";

/** Where a replica reads from: `registry.kv` (keys relative to its space) or a Store. */
export type ReplicaSource = Pick<RegistryKv, "list" | "watch">;

/** Options of a Replica. */
export interface ReplicaOptions {
  /** How often it proves itself current by a linearizable list, ms. Default 200. */
  readonly syncMs?: number;
  /** Timeout of each list, ms. Default 1000. */
  readonly timeoutMs?: number;
  /** Called for every revision of a key it applies. */
  readonly onApplied?: (key: string, revision: number) => void;
  /** The clock of the staleness bound, ms. Default Date.now (compare with the primary's clock). */
  readonly now?: () => number;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

/**
 * A local copy of the keys under a prefix: listed, then kept current by a watch (listing again
 * after compaction or a store that went back in time). It knows how current it is: every
 * `syncMs` it makes a linearizable list of the keys' revisions, and once it holds every one of
 * them it is current as of when that list was issued. `staleMs()` is then the bound for the
 * `x-stale-ms` of the reads it serves (`fencingMiddleware(registry, { staleness: () =>
 * replica.staleMs() })`); it grows while the region is cut off. Deletes are applied too.
 *
 * Memory: the replica holds every key under its prefix; give it the prefix of data meant to be
 * replicated to every region, not a whole store.
 */
export class Replica {
  private readonly data = new Map<string, KeyValue>();
  private readonly clock = new ReplicaClock();
  private readonly controller = new AbortController();
  private readonly firstList: Promise<void>;
  private listed!: () => void;
  private readonly syncMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly source: ReplicaSource,
    private readonly prefix: string,
    private readonly options: ReplicaOptions = {},
  ) {
    this.syncMs = options.syncMs ?? 200;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.now = options.now ?? Date.now;
    this.firstList = new Promise((resolve) => (this.listed = resolve));
    void this.follow();
    void this.sync();
  }

  /** Resolves once the first list is applied. */
  ready(): Promise<void> {
    return this.firstList;
  }

  /** The key as the replica holds it (full key, as the source names it). */
  get(key: string): KeyValue | undefined {
    return this.data.get(key);
  }

  /** Every key held under `prefix` (default all), in key order. */
  list(prefix = ""): KeyValue[] {
    return [...this.data.values()].filter((kv) => kv.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The revision held of each key. */
  revisions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, kv] of this.data) out[key] = kv.modRevision;
    return out;
  }

  /** How stale a read served now may be, ms (Infinity before it was first known current). */
  staleMs(): number {
    return this.clock.staleMs(this.now()) ?? Infinity;
  }

  /** Stops following the source. */
  stop(): void {
    this.controller.abort();
  }

  private apply(kv: KeyValue): void {
    const held = this.data.get(kv.key);
    if (held !== undefined && held.modRevision >= kv.modRevision) return;
    this.data.set(kv.key, kv);
    this.options.onApplied?.(kv.key, kv.modRevision);
  }

  private async follow(): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      try {
        const listed = await this.source.list(this.prefix, { timeoutMs: this.timeoutMs, signal });
        const present = new Set(listed.kvs.map((kv) => kv.key));
        for (const key of [...this.data.keys()]) if (!present.has(key)) this.data.delete(key);
        for (const kv of listed.kvs) {
          // A fresh list is the truth, also when the store went back in time.
          if ((this.data.get(kv.key)?.modRevision ?? 0) > kv.modRevision) this.data.delete(kv.key);
          this.apply(kv);
        }
        this.listed();
        for await (const batch of this.source.watch(this.prefix, listed.revision + 1, { signal })) {
          for (const e of batch.events) {
            if (e.type === "put") this.apply(e.kv);
            else this.data.delete(e.key);
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        if (!(e instanceof CompactedError)) await sleep(200, signal);
      }
    }
  }

  private async sync(): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      const issued = this.now();
      try {
        const listed = await this.source.list(this.prefix, { timeoutMs: this.timeoutMs, signal });
        // Give the watch a moment to deliver what the list saw, then judge.
        for (let i = 0; i < 5 && !this.holds(listed.kvs); i++) await sleep(20, signal);
        if (this.holds(listed.kvs)) this.clock.synced(issued);
      } catch {
        // Cut off: the sync point stays where it was and staleness grows.
      }
      await sleep(Math.max(0, this.syncMs - (this.now() - issued)), signal);
    }
  }

  private holds(kvs: readonly KeyValue[]): boolean {
    return kvs.every((kv) => (this.data.get(kv.key)?.modRevision ?? 0) >= kv.modRevision);
  }
}
