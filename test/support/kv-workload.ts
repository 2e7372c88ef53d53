/**
 * A Jepsen-style key/value workload over Stores: concurrent clients (in several regions) doing
 * gets, compare-and-sets, creates and deletes on a few keys, recorded into a history for the
 * linearizability checker, with unknown-outcome writes resolved afterwards by write id, and the
 * "no acknowledged write lost" check against final reads.
 */
import { OutcomeUnknownError, type Store } from "meridian-rpc/registry";
import { HistoryRecorder, formatOperation, type CheckResult, type Operation, type UnknownOperation } from "../../tools/linearizability/index.js";

/** One client of the workload. */
export interface WorkloadClient {
  readonly name: string;
  readonly store: Store;
}

/** Options of runKvWorkload. */
export interface WorkloadOptions {
  readonly keys: readonly string[];
  /** Operations per client at most. */
  readonly opsPerClient: number;
  /** Stop issuing new operations after this long, ms. */
  readonly durationMs: number;
  /** Timeout of each store call, ms. */
  readonly timeoutMs: number;
  /** Pause between a client's operations, up to this many ms (random). Default 10. */
  readonly maxPauseMs?: number;
}

/** What a workload recorded. */
export interface WorkloadRun {
  readonly recorder: HistoryRecorder;
  /** Writes whose outcome was unknown, to resolve once the store answers again. */
  readonly unknown: { readonly writeId: string; readonly key: string; readonly handle: UnknownOperation; readonly input: Operation["input"] }[];
  readonly counts: { ok: number; unknown: number; failed: number };
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the clients concurrently until each did its operations or the duration is over. */
export async function runKvWorkload(clients: readonly WorkloadClient[], options: WorkloadOptions): Promise<WorkloadRun> {
  const recorder = new HistoryRecorder();
  const run: WorkloadRun = { recorder, unknown: [], counts: { ok: 0, unknown: 0, failed: 0 } };
  const stopAt = Date.now() + options.durationMs;
  await Promise.all(
    clients.map(async (client) => {
      const seen = new Map<string, number>();
      let n = 0;
      for (let i = 0; i < options.opsPerClient && Date.now() < stopAt; i++) {
        const key = pick(options.keys);
        const r = Math.random();
        const value = `${client.name}:${n++}`;
        if (r < 0.4) {
          const p = recorder.invoke(client.name, key, { type: "get" });
          try {
            const { kv } = await client.store.get(key, { timeoutMs: options.timeoutMs });
            p.ok(kv ? { value: kv.value, revision: kv.modRevision } : { value: null });
            seen.set(key, kv?.modRevision ?? 0);
            run.counts.ok++;
          } catch {
            p.fail();
            run.counts.failed++;
          }
        } else {
          const expected = r < 0.85 ? (seen.get(key) ?? 0) : r < 0.92 ? 0 : seen.get(key);
          const isDelete = r >= 0.92 && expected !== undefined && expected !== 0;
          const input = isDelete ? ({ type: "delete", expected } as const) : ({ type: "cas", expected: expected ?? 0, value } as const);
          const p = recorder.invoke(client.name, key, input);
          try {
            const result = isDelete
              ? await client.store.delete(key, expected, { timeoutMs: options.timeoutMs })
              : await client.store.compareAndSet(key, value, expected ?? 0, { timeoutMs: options.timeoutMs });
            if (result.ok) {
              p.ok({ ok: true, revision: result.revision });
              seen.set(key, isDelete ? 0 : result.revision);
            } else {
              const cur = result.current;
              p.ok({ ok: false, current: cur ? { value: cur.value, revision: cur.modRevision } : null });
              seen.set(key, cur?.modRevision ?? 0);
            }
            run.counts.ok++;
          } catch (e) {
            if (e instanceof OutcomeUnknownError) {
              run.unknown.push({ writeId: e.writeId, key, handle: p.unknown(), input });
              run.counts.unknown++;
            } else {
              p.fail();
              run.counts.failed++;
            }
          }
        }
        await sleep(Math.random() * (options.maxPauseMs ?? 10));
      }
    }),
  );
  return run;
}

/** Resolves every unknown write through `store` (retrying while it cannot answer). */
export async function resolveUnknown(run: WorkloadRun, store: Store, timeoutMs = 20_000): Promise<{ applied: number; notApplied: number }> {
  const deadline = Date.now() + timeoutMs;
  let applied = 0;
  let notApplied = 0;
  for (const u of run.unknown) {
    for (;;) {
      try {
        const resolution = await store.resolveWrite(u.writeId);
        if (resolution.status === "applied") {
          u.handle.applied({ ok: true, revision: resolution.revision });
          applied++;
        } else {
          u.handle.notApplied();
          notApplied++;
        }
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await sleep(200);
      }
    }
  }
  return { applied, notApplied };
}

/** Reads every key once per client (linearizable), recording the reads into the history. */
export async function finalReads(run: WorkloadRun, clients: readonly WorkloadClient[], keys: readonly string[], timeoutMs = 5000): Promise<Map<string, { value: string | null; revision: number }>> {
  const finals = new Map<string, { value: string | null; revision: number }>();
  for (const client of clients) {
    for (const key of keys) {
      const p = run.recorder.invoke(`${client.name}/final`, key, { type: "get" });
      const { kv } = await client.store.get(key, { timeoutMs });
      p.ok(kv ? { value: kv.value, revision: kv.modRevision } : { value: null });
      finals.set(key, { value: kv?.value ?? null, revision: kv?.modRevision ?? 0 });
    }
  }
  return finals;
}

/**
 * Every write that was acknowledged (or resolved as applied) must still be visible in the final
 * state: the key's final mod revision is at least the write's (its value or a successor's), or
 * the key was deleted by a later delete. Returns the violations, one line each.
 */
export function lostWrites(history: readonly Operation[], finals: Map<string, { value: string | null; revision: number }>): string[] {
  const problems: string[] = [];
  for (const op of history) {
    if (op.input.type === "get" || !op.output || !("ok" in op.output) || !op.output.ok) continue;
    const revision = op.output.revision ?? 0;
    const final = finals.get(op.key);
    if (!final) continue;
    if (op.input.type === "delete") {
      if (final.value !== null && final.revision < revision) problems.push(`lost: ${formatOperation(op)} (key still at revision ${final.revision})`);
    } else if (final.value === null) {
      const deletedLater = history.some((d) => d.key === op.key && d.input.type === "delete" && d !== op && (d.output === undefined || ("ok" in d.output && d.output.ok)));
      if (!deletedLater) problems.push(`lost: ${formatOperation(op)} (key absent at the end, never deleted)`);
    } else if (final.revision < revision) {
      problems.push(`lost: ${formatOperation(op)} (final revision ${final.revision})`);
    }
  }
  return problems;
}

/** Describes a checker verdict for a test failure message. */
export function describeVerdict(result: CheckResult): string {
  if (result.ok) return `linearizable (${result.operations} operations on ${result.keys} keys, ${result.elapsedMs} ms)`;
  if (result.verdict === "unknown") return `unknown: ${result.reason}`;
  return `violation on ${result.key}: ${result.reason}\nwitness:\n  ${result.witness.map(formatOperation).join("\n  ")}`;
}
