/**
 * The two measurements of the registry benchmark over a Topology:
 *
 * - propagation: writes under a service's prefix from each region in turn (a compare-and-set on
 *   an instance record, as a registration is), and for each write the time from its
 *   acknowledgement (the writer's compareAndSet resolving) until the watch-fed cache of every
 *   other region holds it (its registry client's subscribe listener seeing it);
 * - fallback: a region's routed client keeps reading (linearizable) and writing while a region
 *   is cut off and then healed: how long until reads are served locally with the fallback
 *   headers, until writes fail fast, and after the heal until reads are served by the primary
 *   and writes accepted again.
 *
 * Every time is read from one clock (performance.now()) in this one process.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { Code, RpcError, HeaderKeys, type Headers } from "meridian-rpc";
import { type Instance, OutcomeUnknownError, newWriteId, type Store } from "meridian-rpc/registry";
import type { Topology } from "./topology.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The service whose prefix the propagation writes go to (no server behind it). */
export const PROBE_SERVICE = "bench.Propagation";

/** Options of measurePropagation. */
export interface PropagationOptions {
  /** Measured writes (after `warmup` more). */
  readonly writes: number;
  readonly warmup?: number;
  /** Random pause between one write being seen everywhere and the next, ms: [min, max). */
  readonly pauseMs?: readonly [number, number];
  /** A write not seen everywhere within this long counts as missed, ms. Default 3000. */
  readonly missAfterMs?: number;
  /**
   * Background writes per second under the same prefix while measuring, spread over the regions
   * (each region rewrites its own `load` instance): the demo's traffic makes about 30, and at that
   * rate a watch sees several changes per round trip to the registry. Default 0.
   */
  readonly loadPerSecond?: number;
}

/** One measured write. */
export interface PropagationSample {
  readonly writer: string;
  /** The writer's compareAndSet, from call to acknowledgement, ms. */
  readonly ackMs: number;
  /** Per other region: from the acknowledgement until its cache held the write, ms (may be < 0). */
  readonly seenMs: Readonly<Record<string, number>>;
  /** The slowest other region: the write's propagation time, ms. */
  readonly propagationMs: number;
}

/** What measurePropagation found. */
export interface PropagationResult {
  readonly samples: readonly PropagationSample[];
  /** Writes some region never saw within `missAfterMs`. */
  readonly missed: number;
  /** Writes that failed or whose outcome had to be resolved (not timed; retried). */
  readonly failedWrites: number;
  /**
   * This process's event-loop delay while measuring, ms (p99 and max): the links, the registry
   * clients and the timing all run here, so a stalled loop shows up in the tail.
   */
  readonly eventLoopDelayMs: { readonly p99: number; readonly max: number };
}

/**
 * One probe write, settled: a lost answer is resolved by write id, a lost compare re-reads the
 * key. Returns the revision and when the writer saw it acknowledged, or undefined (not timed)
 * when it took more than one clean attempt.
 */
async function probeWrite(store: Store, key: string, value: string, expected: number): Promise<{ revision: number; ackedAt: number | undefined }> {
  let clean = true;
  for (let attempt = 0; attempt < 20; attempt++) {
    const writeId = newWriteId();
    try {
      const r = await store.compareAndSet(key, value, expected, { writeId });
      if (r.ok) return { revision: r.revision, ackedAt: clean ? performance.now() : undefined };
      expected = r.current?.modRevision ?? 0;
    } catch (e) {
      if (e instanceof OutcomeUnknownError) {
        for (;;) {
          const resolution = await store.resolveWrite(writeId).catch(() => undefined);
          if (resolution?.status === "applied") return { revision: resolution.revision, ackedAt: undefined };
          if (resolution?.status === "not_applied") break;
          await sleep(200);
        }
      } else await sleep(200);
    }
    clean = false;
  }
  throw new Error(`probe write to ${key} kept failing`);
}

/**
 * Writes `writes` times (rotating the writer region), each a compare-and-set of the writer's
 * probe instance with a new sequence number, and records when each other region's cache sees it.
 */
export async function measurePropagation(topology: Topology, options: PropagationOptions): Promise<PropagationResult> {
  const regions = topology.regions;
  const [pauseMin, pauseMax] = options.pauseMs ?? [0, 100];
  const missAfterMs = options.missAfterMs ?? 3000;
  /** seen.get(tag) = per region, when its cache first held the write tagged `tag`. */
  const seen = new Map<string, Map<string, number>>();
  const waiters = new Set<() => void>();
  const unsubscribe = regions.map((r) =>
    r.registry.subscribe(PROBE_SERVICE, (view) => {
      const now = performance.now();
      for (const instance of view.instances) {
        const tag = instance.tags.write;
        if (tag === undefined) continue;
        let regionsSeen = seen.get(tag);
        if (!regionsSeen) seen.set(tag, (regionsSeen = new Map()));
        if (!regionsSeen.has(r.name)) regionsSeen.set(r.name, now);
      }
      for (const wake of waiters) wake();
    }),
  );
  // Sync every cache of the probe service first (subscribe alone does not wait).
  await Promise.all(regions.map((r) => r.registry.view(PROBE_SERVICE)));

  const revisions = new Map<string, number>();
  const samples: PropagationSample[] = [];
  let missed = 0;
  let failedWrites = 0;
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const total = (options.warmup ?? 3) + options.writes;
  let loading = (options.loadPerSecond ?? 0) > 0;
  const load = regions.map(async (r) => {
    const key = `meridian/services/${PROBE_SERVICE}/instances/${r.name}/load`;
    const meanGapMs = (1000 * regions.length) / (options.loadPerSecond ?? 1);
    let revision = 0;
    for (let n = 0; loading; n++) {
      const value = JSON.stringify({ id: "load", service: PROBE_SERVICE, region: r.name, address: "127.0.0.1:9", transport: "bench", weight: 0, tags: { load: `${n}` } });
      const started = performance.now();
      revision = (await probeWrite(r.registry.store, key, value, revision).catch(() => ({ revision: 0 }))).revision;
      // Exponential gaps (a Poisson stream), less the write's own time.
      await sleep(Math.max(0, -Math.log(1 - Math.random()) * meanGapMs - (performance.now() - started)));
    }
  });
  try {
    for (let n = 0; n < total; n++) {
      const writer = regions[n % regions.length]!;
      const others = regions.filter((r) => r !== writer).map((r) => r.name);
      const tag = `${n}`;
      const key = `meridian/services/${PROBE_SERVICE}/instances/${writer.name}/probe`;
      const instance: Omit<Instance, "revision"> = {
        id: "probe",
        service: PROBE_SERVICE,
        region: writer.name,
        address: "127.0.0.1:9",
        transport: "bench",
        weight: 0,
        tags: { write: tag },
      };
      const started = performance.now();
      const result = await probeWrite(writer.registry.store, key, JSON.stringify(instance), revisions.get(key) ?? 0);
      const acked = result.ackedAt;
      revisions.set(key, result.revision);
      const all = await new Promise<boolean>((resolve) => {
        const check = (): void => {
          const s = seen.get(tag);
          if (others.every((o) => s?.has(o))) done(true);
        };
        const timer = setTimeout(() => done(false), missAfterMs);
        const done = (ok: boolean): void => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(ok);
        };
        waiters.add(check);
        check();
      });
      if (n >= total - options.writes) {
        if (acked === undefined) failedWrites++;
        else if (!all) missed++;
        else {
          const s = seen.get(tag)!;
          const seenMs = Object.fromEntries(others.map((o) => [o, s.get(o)! - acked]));
          samples.push({ writer: writer.name, ackMs: acked - started, seenMs, propagationMs: Math.max(...Object.values(seenMs)) });
        }
      }
      seen.delete(tag);
      await sleep(pauseMin + Math.random() * (pauseMax - pauseMin));
    }
  } finally {
    loading = false;
    await Promise.all(load);
    loopDelay.disable();
    for (const u of unsubscribe) u();
  }
  return { samples, missed, failedWrites, eventLoopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 } };
}

/** Which region is cut off in a fallback cycle, seen from which region's client. */
export interface FallbackScenario {
  /** A short name for the table. */
  readonly name: string;
  /** The region cut off. */
  readonly cut: number;
  /** The region whose client is watched (reads and writes). */
  readonly observer: number;
}

/** Options of measureFallback. */
export interface FallbackOptions {
  /** How long the region stays cut off once reads have fallen back, ms. */
  readonly holdMs: number;
  /** Give up waiting for fallback or recovery after this long, ms. */
  readonly giveUpMs?: number;
  /** Pause between two reads (and two writes) of the observer, ms. Default 20. */
  readonly gapMs?: number;
}

/** One cut-and-heal cycle. */
export interface FallbackCycle {
  readonly scenario: string;
  /** From the cut until the first read answered by the observer's own region with `x-stale-ms`, ms. */
  readonly fallbackMs: number | undefined;
  /** How long that first fallback read took, from its call, ms. */
  readonly firstFallbackCallMs: number | undefined;
  /** `x-stale-ms` of the first fallback read. */
  readonly staleHeader: string | undefined;
  /** From the cut until the first write failing fast (UNAVAILABLE, not sent), ms. */
  readonly writeFailFastMs: number | undefined;
  /** From the heal until the first read served by the primary again, ms. */
  readonly recoverMs: number | undefined;
  /** From the heal until the first write accepted again, ms. */
  readonly writeRecoverMs: number | undefined;
  /** Reads that failed, from the cut until recovery (fallback means none should). */
  readonly failedReads: number;
  readonly reads: number;
  /** Writes whose outcome was unknown to the caller (timed out in flight at the cut). */
  readonly unknownWrites: number;
}

interface Outcome {
  readonly start: number;
  readonly end: number;
  readonly headers: Headers;
  readonly error: RpcError | undefined;
}

/** Runs one cut-and-heal cycle and times the switch to fallback and back; see FallbackCycle. */
export async function measureFallback(topology: Topology, scenario: FallbackScenario, options: FallbackOptions): Promise<FallbackCycle> {
  const observer = topology.regions[scenario.observer]!;
  const primaryRegion = topology.regions[0]!.name;
  const giveUpMs = options.giveUpMs ?? 15_000;
  const gapMs = options.gapMs ?? 20;
  const servedByPrimary = (o: Outcome) => o.error === undefined && o.headers[HeaderKeys.servedRegion] === primaryRegion && o.headers[HeaderKeys.staleness] === undefined;
  const fellBack = (o: Outcome) => o.error === undefined && o.headers[HeaderKeys.servedRegion] === observer.name && o.headers[HeaderKeys.staleness] !== undefined;

  const call = async (fn: (onHeaders: (h: Headers) => void) => Promise<unknown>): Promise<Outcome> => {
    let headers: Headers = {};
    const start = performance.now();
    try {
      await fn((h) => (headers = h));
      return { start, end: performance.now(), headers, error: undefined };
    } catch (e) {
      const error = e instanceof RpcError ? e : RpcError.from(e);
      return { start, end: performance.now(), headers: error.headers, error };
    }
  };
  const read = () => call((onHeaders) => observer.client.balance({ account: "bench" }, { consistency: "linearizable", onHeaders }));
  const write = () => call((onHeaders) => observer.client.deposit({ account: "bench", amount: 1 }, { onHeaders }));

  // Steady state first: reads served by the primary, writes accepted.
  const settle = performance.now() + giveUpMs;
  for (;;) {
    const [r, w] = await Promise.all([read(), write()]);
    if (servedByPrimary(r) && w.error === undefined) break;
    if (performance.now() > settle) throw new Error(`${scenario.name}: no steady state before the cut (read: ${r.error?.message ?? r.headers[HeaderKeys.servedRegion]}, write: ${w.error?.message})`);
    await sleep(100);
  }

  const reads: Outcome[] = [];
  const writes: Outcome[] = [];
  let running = true;
  const loop = async (op: () => Promise<Outcome>, into: Outcome[]) => {
    while (running) {
      into.push(await op());
      await sleep(gapMs);
    }
  };
  const loops = [loop(read, reads), loop(write, writes)];
  const waitFor = async (what: () => boolean): Promise<void> => {
    const deadline = performance.now() + giveUpMs;
    while (!what() && performance.now() < deadline) await sleep(10);
  };

  await sleep(200);
  const cutAt = performance.now();
  topology.cut(scenario.cut);
  await waitFor(() => reads.some((o) => o.end > cutAt && fellBack(o)) && writes.some((o) => o.start >= cutAt && o.error?.notSent === true));
  await sleep(options.holdMs);
  const healAt = performance.now();
  topology.heal(scenario.cut);
  await waitFor(() => reads.some((o) => o.start >= healAt && servedByPrimary(o)) && writes.some((o) => o.start >= healAt && o.error === undefined));
  running = false;
  await Promise.all(loops);

  const firstFallback = reads.find((o) => o.end > cutAt && fellBack(o));
  const failFast = writes.find((o) => o.start >= cutAt && o.error?.code === Code.UNAVAILABLE && o.error.notSent);
  const recovered = reads.find((o) => o.start >= healAt && servedByPrimary(o));
  const writeRecovered = writes.find((o) => o.start >= healAt && o.error === undefined);
  const during = reads.filter((o) => o.end > cutAt && (recovered === undefined || o.start <= recovered.start));
  return {
    scenario: scenario.name,
    fallbackMs: firstFallback && firstFallback.end - cutAt,
    firstFallbackCallMs: firstFallback && firstFallback.end - firstFallback.start,
    staleHeader: firstFallback?.headers[HeaderKeys.staleness],
    writeFailFastMs: failFast && failFast.end - cutAt,
    recoverMs: recovered && recovered.end - healAt,
    writeRecoverMs: writeRecovered && writeRecovered.end - healAt,
    failedReads: during.filter((o) => o.error !== undefined).length,
    reads: during.length,
    unknownWrites: writes.filter((o) => o.end > cutAt && o.error?.code === Code.DEADLINE_EXCEEDED).length,
  };
}
