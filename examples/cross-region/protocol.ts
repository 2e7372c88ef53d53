/**
 * What the demo's coordinator (demo.ts) and its region processes (region.ts) tell each other over
 * the IPC channel of child_process.fork, and the clock they share.
 */

/** The three regions of the demo, in display order. */
export const REGIONS = ["cn-north", "eu-west", "us-east"] as const;
/** One of the demo's regions. */
export type Region = (typeof REGIONS)[number];

/** The region that starts as the primary of the KeyValue service. */
export const FIRST_PRIMARY: Region = "cn-north";
/** Where the primary moves when the first primary is cut off (and where the embedded registry lives). */
export const SECOND_PRIMARY: Region = "eu-west";
/** The region cut off while it is not the primary. */
export const SECONDARY_CUT: Region = "us-east";

/** Where the service keeps its keys in the registry's store. */
export const DATA_PREFIX = "meridian/kv/demo/";

/** The response header in which a server says a failed write certainly was not applied (fencedKv's). */
export { WRITE_OUTCOME_HEADER } from "meridian-rpc/registry";

/** Request header of the demo's paused write: the instance holds it after admitting it (see region.ts). */
export const PAUSE_HEADER = "x-demo-pause";

/**
 * Milliseconds on one clock for every process of the demo (wall-clock origin, monotonic after),
 * so operations recorded in different regions can be ordered for the linearizability checker.
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Registry and store tuning shared by every region (short timeouts: the demo lasts a minute). */
export interface Tuning {
  /** Registry client: how often the store is probed (and primaries re-confirmed). */
  readonly healthIntervalMs: number;
  /** Registry client: without a successful probe for this long, the store counts as unreachable. */
  readonly staleAfterMs: number;
  /** How long a primary may act on a confirmation of its role (also the wait after a move). */
  readonly primaryLeaseMs: number;
  /** TTL of instance registrations. */
  readonly leaseTtlMs: number;
  /** Timeout of one store call. */
  readonly storeTimeoutMs: number;
  /** Timeout of one client call. */
  readonly callTimeoutMs: number;
  /** How long a primary region counts as down after a failed call. */
  readonly downForMs: number;
  /** How often a replica checks it is current (a linearizable list). */
  readonly replicaSyncMs: number;
}

/**
 * The tuning for a registry. The embedded store answers in one round trip to the region that
 * hosts it; etcd needs a quorum round first (a linearizable read or a write from a follower is
 * about 4 one-way latencies), so calls get more time there.
 */
export function tuningFor(registry: "embedded" | "etcd"): Tuning {
  const common = { primaryLeaseMs: 1500, leaseTtlMs: 3000, downForMs: 1000, replicaSyncMs: 200 };
  return registry === "embedded"
    ? { ...common, healthIntervalMs: 250, staleAfterMs: 750, storeTimeoutMs: 500, callTimeoutMs: 1000 }
    : { ...common, healthIntervalMs: 300, staleAfterMs: 1200, storeTimeoutMs: 1000, callTimeoutMs: 2000 };
}

/** One identity's certificate material, PEM text (it crosses the IPC channel to a region as is); see security.ts. */
export interface Identity {
  /** The demo's CA: the only one this identity trusts. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Where a region's processes find the registry's store. */
export type StoreConfig =
  | { readonly kind: "embedded"; readonly address: string }
  | { readonly kind: "etcd"; readonly hosts: readonly string[] };

/** The transports the demo can run its service on. */
export type TransportName = "tcp" | "grpc" | "nats";

/** Everything a region process needs to start. */
export interface RegionConfig {
  readonly region: Region;
  readonly transport: TransportName;
  readonly store: StoreConfig;
  /** One per instance: the port it listens on (tcp, grpc) or the subject prefix it serves (nats). */
  readonly instances: readonly { readonly id: string; readonly listen: string }[];
  /** Direct instance address -> the address of this region's link to it (other regions only). */
  readonly routes: Readonly<Record<string, string>>;
  /** The region's NATS server (nats only). */
  readonly natsUrl?: string;
  /** The region's certificate: mutual TLS on every link it serves or calls. Absent with --plaintext. */
  readonly identity?: Identity;
  readonly keys: readonly string[];
  /** Calls per second this region's clients start. */
  readonly rate: number;
  readonly seed: number;
  readonly tuning: Tuning;
}

/** One client call as a region recorded it. */
export interface OpRecord {
  readonly region: Region;
  readonly kind: "put" | "cas" | "get";
  /** Reads: what the caller asked for. */
  readonly consistency?: "eventual" | "linearizable";
  readonly key: string;
  /** Writes: the value written and the write id. */
  readonly value?: string;
  readonly writeId?: string;
  /** CAS: the revision expected. */
  readonly expected?: number;
  readonly call: number;
  readonly ret: number;
  /** ok: answered; failed: certainly had no effect; unknown: a write that may have been applied. */
  readonly outcome: "ok" | "failed" | "unknown";
  /** Error code name when not ok. */
  readonly code?: string;
  readonly message?: string;
  /** Put, applied CAS: the revision written. Get: the revision read (0 when absent). */
  readonly revision?: number;
  /** Get: found and the value. */
  readonly found?: boolean;
  readonly readValue?: string;
  /** CAS: applied or not; when not, the key as it was. */
  readonly applied?: boolean;
  readonly currentFound?: boolean;
  readonly currentValue?: string;
  readonly currentRevision?: number;
  /** Response headers: who served it, how stale it may be, under which primary epoch. */
  readonly servedRegion?: string;
  readonly staleMs?: number | "unknown";
  /** A linearizable read served from the local replica because the primary could not be reached. */
  readonly fallback?: boolean;
  readonly epoch?: number;
  /** A fencing probe (a write sent straight to one instance with an old epoch), not traffic. */
  readonly probe?: boolean;
  /** A probe admitted by the primary's instance, then frozen past a primary move before writing. */
  readonly paused?: boolean;
}

/** A replica applied a key's revision at a time. */
export type SeenEntry = readonly [key: string, revision: number, at: number];
/** A primary's store acknowledged a write at a time. */
export type CommitEntry = readonly [revision: number, at: number];

/** The coordinator's instructions; every one but `init` is answered by a `reply` with its id. */
export type ToRegion =
  | { readonly type: "init"; readonly config: RegionConfig }
  /** Open connections to every instance of the service (once all are registered). */
  | { readonly type: "warm-up"; readonly id: number }
  /** Start or stop traffic (stopping waits for the calls in flight). */
  | { readonly type: "traffic"; readonly id: number; readonly on: boolean }
  /** Send a write straight to this region's first instance with this epoch (fencing check). */
  | { readonly type: "probe"; readonly id: number; readonly epoch: number }
  /** Send a write to this region's first instance that, once admitted, waits for `resume` (the process is frozen meanwhile). */
  | { readonly type: "paused-write"; readonly id: number }
  /** Let the paused write go on. */
  | { readonly type: "resume"; readonly id: number }
  /** Try to move the service's primary to `to` with this region's own registry identity (an instance, not an operator). */
  | { readonly type: "rogue-move"; readonly id: number; readonly to: string }
  /** Report the replica's revision of every key. */
  | { readonly type: "replica-state"; readonly id: number }
  /** Read every key, linearizable and eventual, recording the reads. */
  | { readonly type: "final-reads"; readonly id: number }
  /** Stop traffic, deregister, close everything; the process exits after the reply. */
  | { readonly type: "stop"; readonly id: number };

/** What a region reports (every 250 ms), and its answers. */
export type FromRegion =
  | { readonly type: "ready"; readonly region: Region; readonly addresses: readonly string[] }
  | {
      readonly type: "report";
      readonly region: Region;
      readonly ops: readonly OpRecord[];
      readonly seen: readonly SeenEntry[];
      readonly commits: readonly CommitEntry[];
      /** The replica's current staleness bound, ms (Infinity before its first sync). */
      readonly replicaStaleMs: number;
      /** The primary and epoch this region's registry client sees. */
      readonly primary: { readonly region: string; readonly epoch: number } | undefined;
      readonly registryReachable: boolean;
      readonly inFlight: number;
      /** The region process's event-loop delay since the last report (p99), and its CPU use (share of one core). */
      readonly loopDelayP99Ms: number;
      readonly cpu: number;
    }
  | {
      readonly type: "reply";
      readonly id: number;
      /** probe: the probe's record. */
      readonly op?: OpRecord;
      /** replica-state: the revision of every key. */
      readonly revisions?: Readonly<Record<string, number>>;
      /** rogue-move: what became of the attempt (the store error's code when refused). */
      readonly move?: { readonly moved: boolean; readonly code?: string; readonly message: string };
    }
  /** The paused write was admitted (under `epoch`) and is waiting: freeze the process now. */
  | { readonly type: "paused"; readonly region: Region; readonly epoch: number }
  | { readonly type: "fatal"; readonly region: Region; readonly message: string };
