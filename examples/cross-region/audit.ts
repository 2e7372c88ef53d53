/**
 * The demo's auditor: it follows the store's own history of the service's keys and primary
 * record (a watch from the start), settles every write whose outcome was unknown by its write id,
 * and checks the invariants the demo promises:
 *
 * - no acknowledged write lost, and no write reported as failed that was applied;
 * - no write applied twice;
 * - the recorded history (writes and linearizable reads, unknown outcomes included) is
 *   linearizable, by tools/linearizability's checker;
 * - fencing: every stored write was accepted by the primary of its epoch, the primaries' times of
 *   accepting writes never overlap, a fenced old primary refused the writes sent to it, and a
 *   write admitted by the primary and frozen past a primary move was refused by the store;
 * - after healing, every region's replica holds the final value of every key.
 */
import type { Store, WriteResolution } from "meridian-rpc/registry";
import { checkHistory, formatOperation, type CheckResult, type KvOutput, type Operation } from "../../tools/linearizability/index.js";
import { DATA_PREFIX, now, type OpRecord, type Region } from "./protocol.js";
import { parseStamp, type Stamp } from "./service.js";

/** A write as the store recorded it. */
export interface LogWrite {
  readonly revision: number;
  readonly key: string;
  readonly writeId: string;
  readonly stamp: Stamp;
}

/** A primary record as the store recorded it. */
export interface LogPrimary {
  readonly revision: number;
  readonly region: string;
  readonly epoch: number;
}

/** The store's history of the service's keys and primary record, followed by a watch. */
export class StoreLog {
  readonly writes: LogWrite[] = [];
  readonly primaries: LogPrimary[] = [];
  private readonly controller = new AbortController();
  private readonly seenRevisions = new Set<string>();
  /** Called for every primary record as it arrives. */
  onPrimary: ((p: LogPrimary) => void) | undefined;

  private constructor(
    private readonly store: Store,
    private readonly primaryKey: string,
  ) {}

  /** Lists what is there (the keys are empty at the start), then watches both prefixes. */
  static async start(store: Store, primaryKey: string): Promise<StoreLog> {
    const log = new StoreLog(store, primaryKey);
    for (const prefix of [DATA_PREFIX, primaryKey]) {
      const listed = await store.list(prefix);
      for (const kv of listed.kvs) log.add(kv.key, kv.value, kv.modRevision, kv.writeId);
      void log.follow(prefix, listed.revision + 1);
    }
    return log;
  }

  stop(): void {
    this.controller.abort();
  }

  /** The newest write of each key. */
  latest(): Map<string, LogWrite> {
    const out = new Map<string, LogWrite>();
    for (const w of this.writes) if ((out.get(w.key)?.revision ?? 0) < w.revision) out.set(w.key, w);
    return out;
  }

  private add(key: string, value: string, revision: number, writeId: string): void {
    const id = `${key}@${revision}`;
    if (this.seenRevisions.has(id)) return;
    this.seenRevisions.add(id);
    if (key === this.primaryKey) {
      const record = JSON.parse(value) as { region: string; epoch: number };
      const p = { revision, region: record.region, epoch: record.epoch };
      this.primaries.push(p);
      this.onPrimary?.(p);
    } else this.writes.push({ revision, key: key.slice(DATA_PREFIX.length), writeId, stamp: parseStamp(value) });
  }

  private async follow(prefix: string, from: number): Promise<void> {
    const signal = this.controller.signal;
    let next = from;
    while (!signal.aborted) {
      try {
        for await (const batch of this.store.watch(prefix, next, { signal })) {
          for (const e of batch.events) if (e.type === "put") this.add(e.key, e.kv.value, e.revision, e.kv.writeId);
          next = batch.revision + 1;
        }
      } catch {
        if (signal.aborted) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }
}

/**
 * Settles every write whose outcome was unknown: `resolveWrite` answers "applied" (with its
 * revision) or "not applied", and then the write can never apply afterwards.
 */
export async function resolveUnknownWrites(store: Store, ops: readonly OpRecord[], timeoutMs = 20_000): Promise<Map<string, WriteResolution>> {
  const pending = ops.filter((op) => op.outcome === "unknown" && op.writeId !== undefined).map((op) => op.writeId!);
  const out = new Map<string, WriteResolution>();
  const deadline = now() + timeoutMs;
  const worker = async () => {
    for (let id = pending.pop(); id !== undefined; id = pending.pop()) {
      for (;;) {
        try {
          out.set(id, await store.resolveWrite(id, { timeoutMs: 2000 }));
          break;
        } catch (e) {
          if (now() > deadline) throw new Error(`could not resolve write ${id}: ${(e as Error).message}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return out;
}

/** One checked promise. */
export interface Invariant {
  readonly id: "no-lost-writes" | "no-doubled-writes" | "linearizable" | "fencing" | "converged" | "authorization";
  readonly title: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** What the auditor found. */
export interface AuditResult {
  readonly invariants: readonly Invariant[];
  readonly linearizability: CheckResult;
  readonly history: { readonly operations: number; readonly keys: number };
  readonly writes: {
    readonly acknowledged: number;
    readonly failed: number;
    readonly unknown: number;
    readonly unknownApplied: number;
    readonly unknownNotApplied: number;
  };
  readonly epochs: readonly LogPrimary[];
  /** The writes sent straight to a fenced primary, and what became of them. */
  readonly probes: readonly { readonly region: string; readonly outcome: string; readonly code?: string; readonly message?: string; readonly paused?: boolean }[];
}

/** What the auditor needs. */
export interface AuditInput {
  readonly ops: readonly OpRecord[];
  readonly log: StoreLog;
  readonly resolutions: ReadonlyMap<string, WriteResolution>;
  /** Each region's replica after the final check: revision per key. */
  readonly replicas: ReadonlyMap<Region, Readonly<Record<string, number>>>;
  readonly checkBudgetMs: number;
}

/** The applied writes among the recorded ones: acknowledged, or unknown and resolved as applied. */
function appliedRevision(op: OpRecord, resolutions: ReadonlyMap<string, WriteResolution>): number | undefined {
  if (op.kind === "get") return undefined;
  if (op.outcome === "ok") return op.kind === "put" || op.applied ? op.revision : undefined;
  if (op.outcome === "unknown") {
    const r = resolutions.get(op.writeId!);
    return r?.status === "applied" ? r.revision : undefined;
  }
  return undefined;
}

/** The history for the checker: writes and linearizable reads served by the primary. */
export function buildHistory(ops: readonly OpRecord[], resolutions: ReadonlyMap<string, WriteResolution>): Operation[] {
  const history: Operation[] = [];
  for (const op of ops) {
    if (op.outcome === "failed") continue;
    if (op.kind === "get") {
      if (op.consistency !== "linearizable" || op.fallback) continue;
      history.push({
        client: op.region,
        key: op.key,
        input: { type: "get" },
        call: op.call,
        return: op.ret,
        output: op.found ? { value: op.readValue!, revision: op.revision! } : { value: null },
      });
      continue;
    }
    const input = op.kind === "put" ? ({ type: "put", value: op.value! } as const) : ({ type: "cas", expected: op.expected!, value: op.value! } as const);
    if (op.outcome === "ok") {
      const output: KvOutput =
        op.kind === "put" || op.applied
          ? { ok: true, revision: op.revision! }
          : { ok: false, current: op.currentFound ? { value: op.currentValue!, revision: op.currentRevision! } : null };
      history.push({ client: op.region, key: op.key, input, call: op.call, return: op.ret, output });
      continue;
    }
    const resolution = resolutions.get(op.writeId!);
    if (resolution?.status === "not_applied") continue;
    if (resolution?.status === "applied") history.push({ client: op.region, key: op.key, input, call: op.call, output: { ok: true, revision: resolution.revision } });
    else history.push({ client: op.region, key: op.key, input, call: op.call });
  }
  return history;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Checks every invariant; see the module comment. */
export function audit(input: AuditInput): AuditResult {
  const { ops, log, resolutions } = input;
  const byWriteId = new Map<string, LogWrite[]>();
  for (const w of log.writes) {
    const list = byWriteId.get(w.writeId) ?? [];
    list.push(w);
    byWriteId.set(w.writeId, list);
  }
  const writes = ops.filter((op) => op.kind !== "get");

  // Lost writes, and writes reported failed that were applied anyway.
  const lost: string[] = [];
  const falselyFailed: string[] = [];
  let acknowledged = 0;
  for (const op of writes) {
    const revision = appliedRevision(op, resolutions);
    const inLog = byWriteId.get(op.writeId!) ?? [];
    if (revision !== undefined) {
      if (op.outcome === "ok") acknowledged++;
      if (!inLog.some((w) => w.revision === revision && w.key === op.key)) lost.push(`${op.kind} ${op.key}=${op.value} (revision ${revision}) from ${op.region}`);
    } else if (op.outcome === "failed" && inLog.length > 0) {
      falselyFailed.push(`${op.kind} ${op.key}=${op.value} from ${op.region} failed with ${op.code} but is in the store at revision ${inLog[0]!.revision}`);
    }
  }
  const latest = log.latest();
  const unknown = writes.filter((op) => op.outcome === "unknown");
  const unknownApplied = unknown.filter((op) => resolutions.get(op.writeId!)?.status === "applied").length;

  // Doubled writes.
  const doubled = [...byWriteId.entries()].filter(([, list]) => list.length > 1).map(([id, list]) => `write ${id} applied at revisions ${list.map((w) => w.revision).join(", ")}`);
  const known = new Set(writes.map((op) => op.writeId!));
  const stray = log.writes.filter((w) => !known.has(w.writeId)).map((w) => `revision ${w.revision} of ${w.key} (write id "${w.writeId}") was written by no recorded call`);

  // Linearizability.
  const history = buildHistory(ops, resolutions);
  const verdict = checkHistory(history, { timeBudgetMs: input.checkBudgetMs });
  const keys = new Set(history.map((op) => op.key)).size;

  // Fencing.
  const epochRegion = new Map<number, string>();
  for (const p of log.primaries) epochRegion.set(p.epoch, p.region);
  const fencing: string[] = [];
  const acceptTimes = new Map<number, { min: number; max: number; n: number }>();
  for (const w of log.writes) {
    const region = epochRegion.get(w.stamp.e);
    if (region !== w.stamp.r) fencing.push(`revision ${w.revision} of ${w.key} was accepted by ${w.stamp.r || "?"} under epoch ${w.stamp.e}, whose primary is ${region ?? "unknown"}`);
    const t = acceptTimes.get(w.stamp.e) ?? { min: Infinity, max: -Infinity, n: 0 };
    acceptTimes.set(w.stamp.e, { min: Math.min(t.min, w.stamp.t), max: Math.max(t.max, w.stamp.t), n: t.n + 1 });
  }
  const epochs = [...acceptTimes.keys()].sort((a, b) => a - b);
  for (let i = 1; i < epochs.length; i++) {
    const before = acceptTimes.get(epochs[i - 1]!)!;
    const after = acceptTimes.get(epochs[i]!)!;
    if (before.max >= after.min) {
      fencing.push(`epoch ${epochs[i - 1]} accepted a write ${Math.round(before.max - after.min)} ms after epoch ${epochs[i]} had started accepting: two primaries at once`);
    }
  }
  const probes = ops.filter((op) => op.probe === true);
  for (const p of probes) {
    if (appliedRevision(p, resolutions) === undefined) continue;
    fencing.push(
      p.paused
        ? `the paused instance of ${p.region} wrote after the primary moved (${p.value})`
        : `${p.region} accepted a write sent with an old epoch (${p.value})`,
    );
  }
  const moves = log.primaries.filter((p) => p.epoch > 1).map((p) => `epoch ${p.epoch}: ${p.region}`);

  // Convergence.
  const lagging: string[] = [];
  for (const [region, revisions] of input.replicas) {
    for (const [key, w] of latest) {
      if ((revisions[key] ?? 0) !== w.revision) lagging.push(`${region} holds ${key} at revision ${revisions[key] ?? 0}, the store at ${w.revision}`);
    }
  }

  const first = (list: string[]) => (list.length === 0 ? "" : `: ${list.slice(0, 3).join("; ")}${list.length > 3 ? `; and ${list.length - 3} more` : ""}`);
  const refused = probes.filter((p) => !p.paused && appliedRevision(p, resolutions) === undefined);
  const pausedRefused = probes.filter((p) => p.paused && appliedRevision(p, resolutions) === undefined);
  const invariants: Invariant[] = [
    {
      id: "no-lost-writes",
      title: "no acknowledged write lost",
      ok: lost.length === 0 && falselyFailed.length === 0,
      detail:
        lost.length + falselyFailed.length === 0
          ? `${plural(acknowledged, "acknowledged write")} all in the store; ${plural(unknown.length, "unknown outcome")} resolved by write id ` +
            `(${unknownApplied} applied, ${unknown.length - unknownApplied} not applied); no write reported as failed was applied`
          : `${plural(lost.length, "lost write")}${first(lost)}${falselyFailed.length ? `; ${plural(falselyFailed.length, "write")} reported failed but applied${first(falselyFailed)}` : ""}`,
    },
    {
      id: "no-doubled-writes",
      title: "no write applied twice",
      ok: doubled.length === 0 && stray.length === 0,
      detail:
        doubled.length + stray.length === 0
          ? `${plural(log.writes.length, "store write")}, each from one call, each write id once`
          : `${plural(doubled.length, "doubled write")}${first(doubled)}${stray.length ? `; ${plural(stray.length, "stray write")}${first(stray)}` : ""}`,
    },
    {
      id: "linearizable",
      title: "linearizable history",
      ok: verdict.ok,
      detail: verdict.ok
        ? `${plural(verdict.operations, "operation")} on ${plural(verdict.keys, "key")} (writes with unknown outcomes included) checked in ${verdict.elapsedMs} ms`
        : verdict.verdict === "violation"
          ? `violation on key ${verdict.key}: ${verdict.reason}; witness: ${verdict.witness.map(formatOperation).join(" | ")}`
          : `the checker could not decide (${verdict.reason})`,
    },
    {
      id: "fencing",
      title: "one primary at a time (fencing)",
      ok: fencing.length === 0,
      detail:
        fencing.length === 0
          ? `${moves.length === 0 ? "the primary never moved" : `primary moved (${moves.join(", ")})`}; every stored write accepted by its epoch's primary, ` +
            `acceptance windows never overlap; ${plural(refused.length, "write")} sent to a fenced primary, all refused` +
            (refused.length ? ` (${[...new Set(refused.map((p) => p.code))].join(", ")})` : "") +
            (pausedRefused.length
              ? `; ${plural(pausedRefused.length, "write")} admitted by a primary frozen past a move, refused by the store's fence (${[...new Set(pausedRefused.map((p) => p.code))].join(", ")})`
              : "")
          : `${plural(fencing.length, "violation")}${first(fencing)}`,
    },
    {
      id: "converged",
      title: "replicas converged after healing",
      ok: lagging.length === 0,
      detail: lagging.length === 0 ? `every region holds the final revision of all ${plural(latest.size, "key")}` : `${plural(lagging.length, "stale key")}${first(lagging)}`,
    },
  ];
  return {
    invariants,
    linearizability: verdict,
    history: { operations: history.length, keys },
    writes: {
      acknowledged,
      failed: writes.filter((op) => op.outcome === "failed").length,
      unknown: unknown.length,
      unknownApplied,
      unknownNotApplied: unknown.length - unknownApplied,
    },
    epochs: log.primaries,
    probes: probes.map((p) => ({
      region: p.region,
      outcome: appliedRevision(p, resolutions) === undefined ? "refused" : "accepted",
      ...(p.code ? { code: p.code } : {}),
      ...(p.message ? { message: p.message } : {}),
      ...(p.paused ? { paused: true } : {}),
    })),
  };
}
