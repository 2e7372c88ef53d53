import { initialState, observedValue, stateKey, step, type KvInput, type KvOutput, type KvState } from "./model.js";

/**
 * One operation of a recorded history: a client's call on one key, when it was invoked and when
 * it returned (same clock, any unit), and what it returned. An operation whose outcome is unknown
 * (timed out, connection lost) has no `return` and no `output`: it may have taken effect at any
 * time after its call, or never. One with an `output` but no `return` (a timed-out write later
 * resolved as applied) did take effect, at some time after its call.
 */
export interface Operation {
  readonly client: string | number;
  readonly key: string;
  readonly input: KvInput;
  readonly call: number;
  /** Undefined (or Infinity) when the call never returned. */
  readonly return?: number;
  /** Undefined when the outcome is unknown (the operation may or may not have taken effect). */
  readonly output?: KvOutput;
}

/** Options of checkHistory. */
export interface CheckOptions {
  /** Time the whole check may take, ms; past it the verdict is "unknown". Default 10 000. */
  readonly timeBudgetMs?: number;
  /** Shrink a violation to a small witness (within the budget). Default true. */
  readonly shrink?: boolean;
  /** Visited (linearized set, state) pairs kept per key before giving up. Default 2 000 000. */
  readonly maxCacheEntries?: number;
}

/** The checker's verdict. `ok` is true only when the history was proven linearizable. */
export type CheckResult =
  | { readonly ok: true; readonly verdict: "linearizable"; readonly keys: number; readonly operations: number; readonly elapsedMs: number }
  | {
      readonly ok: false;
      readonly verdict: "violation";
      /** The key whose history is not linearizable ("*" for the cross-key revision order). */
      readonly key: string;
      readonly reason: string;
      /** A small sub-history of that key that is still not linearizable (every op needed). */
      readonly witness: readonly Operation[];
      /** The longest sequence of that key's operations that could be linearized. */
      readonly longestLinearization: readonly Operation[];
      readonly elapsedMs: number;
    }
  | { readonly ok: false; readonly verdict: "unknown"; readonly key?: string; readonly reason: string; readonly elapsedMs: number };

class Budget {
  private readonly deadline: number;
  constructor(ms: number) {
    this.deadline = performance.now() + ms;
  }
  get exhausted(): boolean {
    return performance.now() > this.deadline;
  }
  get leftMs(): number {
    return Math.max(0, this.deadline - performance.now());
  }
}

type PartitionVerdict =
  | { kind: "ok" }
  | { kind: "violation"; longest: number[] }
  | { kind: "unknown"; reason: string };

interface Entry {
  readonly id: number;
  readonly isCall: boolean;
  prev: Entry | undefined;
  next: Entry | undefined;
  match: Entry | undefined;
}

/** The operation may or may not have taken effect: it may stay out of the linearization. */
const unknownOutcome = (op: Operation): boolean => op.output === undefined;
/** When the operation returned; +infinity when it never did. */
const returnTime = (op: Operation): number => op.return ?? Infinity;

/**
 * Checks one key's operations (Wing & Gong's search with Lowe's just-in-time linearization as
 * Porcupine implements it): walk the calls in time order, linearize a call when the model
 * accepts its output, backtrack at a return whose call could not be linearized, and never
 * revisit a (linearized set, state) pair. Operations with unknown outcome return at +infinity
 * and may stay unlinearized (they never took effect).
 */
function checkPartition(ops: readonly Operation[], budget: Budget, maxCache: number): PartitionVerdict {
  const n = ops.length;
  const events: { time: number; id: number; isCall: boolean }[] = [];
  let remainingKnown = 0;
  ops.forEach((op, id) => {
    events.push({ time: op.call, id, isCall: true });
    if (!unknownOutcome(op)) remainingKnown++;
    events.push({ time: unknownOutcome(op) ? Infinity : returnTime(op), id, isCall: false });
  });
  // At equal times calls come first: touching operations count as concurrent.
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head: Entry = { id: -1, isCall: false, prev: undefined, next: undefined, match: undefined };
  const calls = new Array<Entry>(n);
  let last = head;
  for (const e of events) {
    const entry: Entry = { id: e.id, isCall: e.isCall, prev: last, next: undefined, match: undefined };
    last.next = entry;
    last = entry;
    if (e.isCall) calls[e.id] = entry;
    else calls[e.id]!.match = entry;
  }
  const lift = (entry: Entry) => {
    entry.prev!.next = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    const match = entry.match!;
    match.prev!.next = match.next;
    if (match.next) match.next.prev = match.prev;
  };
  const unlift = (entry: Entry) => {
    const match = entry.match!;
    match.prev!.next = match;
    if (match.next) match.next.prev = match;
    entry.prev!.next = entry;
    if (entry.next) entry.next.prev = entry;
  };

  const words = new Uint16Array(Math.ceil(n / 16));
  const flip = (id: number) => {
    words[id >> 4]! ^= 1 << (id & 15);
  };
  const cache = new Set<string>();
  const stack: { entry: Entry; state: KvState }[] = [];
  let longest: number[] = [];
  let state: KvState = initialState;
  let entry = head.next;
  let iterations = 0;

  for (;;) {
    if (remainingKnown === 0) return { kind: "ok" };
    if (++iterations % 1024 === 0 && budget.exhausted) return { kind: "unknown", reason: "time budget exhausted" };
    if (entry && entry.isCall) {
      const op = ops[entry.id]!;
      const next = step(state, op.input, op.output);
      if (next !== undefined) {
        flip(entry.id);
        const key = String.fromCharCode(...words) + stateKey(next);
        if (!cache.has(key)) {
          if (cache.size >= maxCache) return { kind: "unknown", reason: `more than ${maxCache} states visited` };
          cache.add(key);
          stack.push({ entry, state });
          state = next;
          if (!unknownOutcome(op)) remainingKnown--;
          lift(entry);
          if (stack.length > longest.length) longest = stack.map((s) => s.entry.id);
          entry = head.next;
          continue;
        }
        flip(entry.id);
      }
      entry = entry.next;
      continue;
    }
    // A return whose call is not linearized yet (or the end): undo the last choice.
    const top = stack.pop();
    if (!top) return { kind: "violation", longest };
    state = top.state;
    flip(top.entry.id);
    if (!unknownOutcome(ops[top.entry.id]!)) remainingKnown++;
    unlift(top.entry);
    entry = top.entry.next;
  }
}

/**
 * Whether a write's effect is still visible to some other operation of the set (its value read,
 * reported as current, or its revision compared on); such a write cannot be dropped from a
 * witness without making the witness lie ("read a value never written").
 */
function observed(op: Operation, others: readonly Operation[]): boolean {
  const written = op.input.type === "put" || op.input.type === "cas" ? op.input.value : op.input.type === "delete" ? null : undefined;
  if (written === undefined) return false;
  if (op.output && "ok" in op.output && !op.output.ok) return false;
  const revision = op.output && "ok" in op.output && op.output.ok ? op.output.revision : undefined;
  return others.some((o) => {
    if (o === op) return false;
    if (observedValue(o.output) === written) return true;
    if (written === null && o.input.type === "cas" && o.input.expected === 0 && o.output && "ok" in o.output && o.output.ok) return true;
    return revision !== undefined && "expected" in o.input && o.input.expected === revision;
  });
}

/** Greedy one-at-a-time shrinking: drop every operation whose removal keeps the violation. */
function shrink(ops: readonly Operation[], budget: Budget, maxCache: number): Operation[] {
  let current = [...ops];
  let changed = true;
  while (changed && !budget.exhausted) {
    changed = false;
    for (let i = current.length - 1; i >= 0 && !budget.exhausted; i--) {
      const candidate = current[i]!;
      if (observed(candidate, current)) continue;
      const without = current.filter((_, j) => j !== i);
      if (checkPartition(without, budget, maxCache).kind === "violation") {
        current = without;
        changed = true;
      }
    }
  }
  return current;
}

/**
 * Revisions are global and grow with real time: a write acknowledged before another was invoked
 * has the smaller revision. Per-key checking cannot see this across keys, so it is checked here.
 */
function checkRevisionOrder(ops: readonly Operation[]): Operation[] | undefined {
  const writes = ops.filter(
    (op) => returnTime(op) !== Infinity && (op.input.type === "put" || op.input.type === "cas") && op.output && "ok" in op.output && op.output.ok && op.output.revision !== undefined,
  );
  const byReturn = [...writes].sort((a, b) => a.return! - b.return!);
  const byCall = [...writes].sort((a, b) => a.call - b.call);
  let i = 0;
  let best: Operation | undefined;
  for (const op of byCall) {
    while (i < byReturn.length && byReturn[i]!.return! < op.call) {
      const w = byReturn[i++]!;
      if (!best || revisionOf(w) > revisionOf(best)) best = w;
    }
    if (best && revisionOf(best) >= revisionOf(op)) return [best, op];
  }
  return undefined;
}

function revisionOf(op: Operation): number {
  return (op.output as { revision: number }).revision;
}

/**
 * Checks a recorded key/value history for linearizability, key by key (a history is
 * linearizable iff each key's is), plus the real-time order of write revisions across keys.
 * Never hangs: past `timeBudgetMs` it answers "unknown".
 */
export function checkHistory(history: readonly Operation[], options: CheckOptions = {}): CheckResult {
  const started = performance.now();
  const budget = new Budget(options.timeBudgetMs ?? 10_000);
  const maxCache = options.maxCacheEntries ?? 2_000_000;
  const elapsed = () => Math.round(performance.now() - started);
  for (const op of history) {
    if (op.return !== undefined && op.return !== Infinity && op.return < op.call) {
      return { ok: false, verdict: "unknown", key: op.key, reason: `operation returned before it was called: ${formatOperation(op)}`, elapsedMs: elapsed() };
    }
  }
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    let list = byKey.get(op.key);
    if (!list) byKey.set(op.key, (list = []));
    list.push(op);
  }
  for (const [key, ops] of byKey) {
    const verdict = checkPartition(ops, budget, maxCache);
    if (verdict.kind === "unknown") return { ok: false, verdict: "unknown", key, reason: verdict.reason, elapsedMs: elapsed() };
    if (verdict.kind === "violation") {
      const witness = options.shrink === false ? ops : shrink(ops, budget, maxCache);
      return {
        ok: false,
        verdict: "violation",
        key,
        reason: `no linearization of the ${ops.length} operations on "${key}" exists; the longest linearizable order has ${verdict.longest.length}`,
        witness,
        longestLinearization: verdict.longest.map((id) => ops[id]!),
        elapsedMs: elapsed(),
      };
    }
  }
  const disorder = checkRevisionOrder(history);
  if (disorder) {
    return {
      ok: false,
      verdict: "violation",
      key: "*",
      reason: "a write acknowledged before another began got a revision that is not smaller",
      witness: disorder,
      longestLinearization: [],
      elapsedMs: elapsed(),
    };
  }
  return { ok: true, verdict: "linearizable", keys: byKey.size, operations: history.length, elapsedMs: elapsed() };
}

/** One operation on one line, for reports: `c1 cas(k, expect 3, "v") -> ok@5 [10.0, 12.5]`. */
export function formatOperation(op: Operation): string {
  const i = op.input;
  const call =
    i.type === "get"
      ? `get(${op.key})`
      : i.type === "put"
        ? `put(${op.key}, ${JSON.stringify(i.value)})`
        : i.type === "cas"
          ? `cas(${op.key}, expect ${i.expected}, ${JSON.stringify(i.value)})`
          : `delete(${op.key}${i.expected === undefined ? "" : `, expect ${i.expected}`})`;
  const o = op.output;
  const out =
    o === undefined
      ? "unknown"
      : "value" in o
        ? `${JSON.stringify(o.value)}${o.revision === undefined ? "" : `@${o.revision}`}`
        : o.ok
          ? `ok${o.revision === undefined ? "" : `@${o.revision}`}`
          : `failed${o.current === undefined ? "" : o.current === null ? " (absent)" : ` (current ${JSON.stringify(o.current.value)}${o.current.revision === undefined ? "" : `@${o.current.revision}`})`}`;
  const ret = op.return === undefined || op.return === Infinity ? "∞" : op.return.toFixed(1);
  return `${op.client} ${call} -> ${out} [${op.call.toFixed(1)}, ${ret}]`;
}
