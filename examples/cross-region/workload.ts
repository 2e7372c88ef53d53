/**
 * A region's traffic: an open loop of calls at a fixed rate (writes, eventual reads and
 * linearizable reads over a few keys), each recorded with its call and return times, its outcome
 * and what the response headers said (served region, staleness, epoch).
 */
import { HeaderKeys, RpcError, type CallOptions, type Client, type Headers } from "meridian-rpc";
import { newWriteId } from "meridian-rpc/registry";
import type { KeyValue } from "./gen/kv.js";
import { WRITE_OUTCOME_HEADER, now, type OpRecord, type Region } from "./protocol.js";
import { seededRandom } from "../../tools/random/index.js";

type KvClient = Client<typeof KeyValue>;

/** What the response headers say about where and how a call was served. */
function served(headers: Headers): Pick<OpRecord, "servedRegion" | "staleMs" | "epoch"> {
  const stale = headers[HeaderKeys.staleness];
  const epoch = headers[HeaderKeys.epoch];
  return {
    ...(headers[HeaderKeys.servedRegion] === undefined ? {} : { servedRegion: headers[HeaderKeys.servedRegion] }),
    ...(stale === undefined ? {} : { staleMs: stale === "unknown" ? ("unknown" as const) : Number(stale) }),
    ...(epoch === undefined ? {} : { epoch: Number(epoch) }),
  };
}

/** How a failed call is recorded: reads and writes that surely did nothing fail; other writes are unknown. */
function failure(e: unknown, write: boolean): Pick<OpRecord, "outcome" | "code" | "message" | "servedRegion" | "epoch"> {
  const err = RpcError.from(e);
  const certain = !write || err.notSent || err.headers[WRITE_OUTCOME_HEADER] === "not-applied";
  return { outcome: certain ? "failed" : "unknown", code: err.codeName, message: err.message, ...served(err.headers) };
}

/** Calls Put and records it. */
export async function recordPut(
  client: KvClient,
  region: Region,
  key: string,
  value: string,
  options: CallOptions = {},
  extra: Partial<OpRecord> = {},
): Promise<OpRecord> {
  const writeId = newWriteId();
  let headers: Headers = {};
  const call = now();
  const base = { region, kind: "put", key, value, writeId, call, ...extra } as const;
  try {
    const res = await client.put({ key, value, writeId }, { ...options, onHeaders: (h) => (headers = h) });
    return { ...base, ret: now(), outcome: "ok", revision: res.revision, ...served(headers) };
  } catch (e) {
    return { ...base, ret: now(), ...failure(e, true) };
  }
}

/** Calls CompareAndSet and records it. */
export async function recordCas(client: KvClient, region: Region, key: string, expected: number, value: string): Promise<OpRecord> {
  const writeId = newWriteId();
  let headers: Headers = {};
  const call = now();
  const base = { region, kind: "cas", key, value, writeId, expected, call } as const;
  try {
    const res = await client.compareAndSet({ key, expectedRevision: expected, value, writeId }, { onHeaders: (h) => (headers = h) });
    const out = res.applied
      ? { applied: true, revision: res.revision }
      : { applied: false, currentFound: res.found, currentValue: res.currentValue, currentRevision: res.currentRevision };
    return { ...base, ret: now(), outcome: "ok", ...out, ...served(headers) };
  } catch (e) {
    return { ...base, ret: now(), ...failure(e, true) };
  }
}

/** Calls Get at a consistency level and records it (a linearizable read that fell back says so). */
export async function recordGet(client: KvClient, region: Region, key: string, consistency: "eventual" | "linearizable"): Promise<OpRecord> {
  let headers: Headers = {};
  const call = now();
  const base = { region, kind: "get", key, consistency, call } as const;
  try {
    const res = await client.get({ key }, { consistency, onHeaders: (h) => (headers = h) });
    const fallback = consistency === "linearizable" && headers[HeaderKeys.staleness] !== undefined;
    return {
      ...base,
      ret: now(),
      outcome: "ok",
      found: res.found,
      readValue: res.value,
      revision: res.found ? res.revision : 0,
      fallback,
      ...served(headers),
    };
  } catch (e) {
    return { ...base, ret: now(), ...failure(e, false) };
  }
}

/** Options of Workload. */
export interface WorkloadOptions {
  readonly client: KvClient;
  readonly region: Region;
  readonly keys: readonly string[];
  /** Calls started per second. */
  readonly rate: number;
  readonly seed: number;
  /** Calls in flight at most (past it the loop skips, so a stalled region does not pile up). */
  readonly maxInFlight?: number;
  readonly record: (op: OpRecord) => void;
}

/**
 * The open loop: every 20 ms it starts the calls owed at `rate`: 20 % Put, 10 % CompareAndSet
 * (on the revision this region last saw), 35 % eventual Get, 35 % linearizable Get.
 */
export class Workload {
  private timer: NodeJS.Timeout | undefined;
  private owed = 0;
  private last = 0;
  private seq = 0;
  private readonly inFlightCalls = new Set<Promise<void>>();
  private readonly random: () => number;
  private readonly lastRevision = new Map<string, number>();

  constructor(private readonly options: WorkloadOptions) {
    this.random = seededRandom(options.seed);
  }

  get inFlight(): number {
    return this.inFlightCalls.size;
  }

  start(): void {
    if (this.timer) return;
    this.last = now();
    this.timer = setInterval(() => this.tick(), 20);
  }

  /** Stops starting calls and waits for those in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inFlightCalls]);
  }

  private tick(): void {
    const t = now();
    this.owed += ((t - this.last) / 1000) * this.options.rate;
    this.last = t;
    const max = this.options.maxInFlight ?? 64;
    while (this.owed >= 1) {
      this.owed -= 1;
      if (this.inFlightCalls.size >= max) continue;
      const p = this.one().then(
        (op) => {
          this.learn(op);
          this.options.record(op);
        },
        () => undefined,
      );
      this.inFlightCalls.add(p);
      void p.finally(() => this.inFlightCalls.delete(p));
    }
  }

  private one(): Promise<OpRecord> {
    const { client, region, keys } = this.options;
    const key = keys[Math.floor(this.random() * keys.length)]!;
    const roll = this.random();
    if (roll < 0.2) return recordPut(client, region, key, `${region}:${++this.seq}`);
    if (roll < 0.3) return recordCas(client, region, key, this.lastRevision.get(key) ?? 0, `${region}:${++this.seq}`);
    return recordGet(client, region, key, roll < 0.65 ? "eventual" : "linearizable");
  }

  /** Remembers the newest revision seen per key, for the next CompareAndSet. */
  private learn(op: OpRecord): void {
    if (op.outcome !== "ok") return;
    const r = op.kind === "cas" && op.applied === false ? op.currentRevision : op.revision;
    if (r !== undefined && r >= (this.lastRevision.get(op.key) ?? 0)) this.lastRevision.set(op.key, r);
  }
}
