/**
 * The demo's summary: per phase and region, throughput, latency, availability of reads and
 * writes, fallback and stale reads and the propagation window, as a Markdown table (the
 * before/after tables of an article, readable in a terminal and pasteable anywhere), then the
 * invariants.
 */
import type { AuditResult } from "./audit.js";
import { REGIONS, type OpRecord, type Region } from "./protocol.js";
import type { TimedPhase } from "./scenario.js";
import { ms, pct, quantiles } from "./stats.js";
import type { Paint } from "./view.js";

/** One row of the summary. */
export interface PhaseRegionRow {
  readonly phase: string;
  readonly region: Region;
  /** Calls answered per second. */
  readonly callsPerSec: number;
  /** Latency of every call, ms. */
  readonly p50: number | undefined;
  readonly p99: number | undefined;
  readonly reads: { readonly ok: number; readonly total: number };
  readonly writes: { readonly ok: number; readonly total: number; readonly unknown: number };
  /** Linearizable reads served by the local replica (fallback). */
  readonly fallbackReads: number;
  /** Local reads (eventual or fallback) that missed a write acknowledged before they started. */
  readonly staleReads: number;
  readonly localReads: number;
  /** Time from a write's commit until this region's replica had it, ms. */
  readonly propagation: { readonly p50: number | undefined; readonly p99: number | undefined; readonly count: number; readonly missing: number };
}

/** What the table is computed from. */
export interface ReportInput {
  readonly phases: readonly TimedPhase[];
  /** Demo clock time of the scenario's start. */
  readonly origin: number;
  readonly ops: readonly OpRecord[];
  /** Revision -> when the primary's store acknowledged it. */
  readonly commits: ReadonlyMap<number, number>;
  /** Region -> revision -> when its replica applied it. */
  readonly seen: ReadonlyMap<Region, ReadonlyMap<number, number>>;
}

/** Newest acknowledged revision per key as of a time: the writes of a key sorted by return time. */
class AckIndex {
  private readonly byKey = new Map<string, { ret: number; maxRevision: number }[]>();

  constructor(ops: readonly OpRecord[]) {
    const raw = new Map<string, { ret: number; revision: number }[]>();
    for (const op of ops) {
      if (op.outcome !== "ok" || op.kind === "get" || (op.kind === "cas" && !op.applied)) continue;
      const list = raw.get(op.key) ?? [];
      list.push({ ret: op.ret, revision: op.revision! });
      raw.set(op.key, list);
    }
    for (const [key, list] of raw) {
      list.sort((a, b) => a.ret - b.ret);
      let max = 0;
      this.byKey.set(
        key,
        list.map((w) => ({ ret: w.ret, maxRevision: (max = Math.max(max, w.revision)) })),
      );
    }
  }

  /** The newest revision of `key` acknowledged to anyone before `at` (0: none). */
  newestBefore(key: string, at: number): number {
    const list = this.byKey.get(key);
    if (!list) return 0;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.ret < at) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : list[lo - 1]!.maxRevision;
  }
}

/** Computes the summary rows. */
export function phaseRows(input: ReportInput): PhaseRegionRow[] {
  const acks = new AckIndex(input.ops);
  const rows: PhaseRegionRow[] = [];
  for (const phase of input.phases) {
    const from = input.origin + phase.startMs;
    const to = input.origin + phase.endMs;
    const seconds = (to - from) / 1000;
    const commits = [...input.commits].filter(([, at]) => at >= from && at < to);
    for (const region of REGIONS) {
      const ops = input.ops.filter((op) => op.region === region && !op.probe && op.call >= from && op.call < to);
      const reads = ops.filter((op) => op.kind === "get");
      const writes = ops.filter((op) => op.kind !== "get");
      const local = reads.filter((op) => op.outcome === "ok" && (op.consistency === "eventual" || op.fallback));
      const stale = local.filter((op) => (op.revision ?? 0) < acks.newestBefore(op.key, op.call)).length;
      const seen = input.seen.get(region);
      const windows: number[] = [];
      let missing = 0;
      for (const [revision, at] of commits) {
        const s = seen?.get(revision);
        if (s === undefined) missing++;
        else windows.push(Math.max(0, s - at));
      }
      const latency = quantiles(ops.map((op) => op.ret - op.call));
      const prop = quantiles(windows);
      rows.push({
        phase: phase.title,
        region,
        callsPerSec: ops.filter((op) => op.outcome === "ok").length / seconds,
        p50: latency.p50,
        p99: latency.p99,
        reads: { ok: reads.filter((op) => op.outcome === "ok").length, total: reads.length },
        writes: {
          ok: writes.filter((op) => op.outcome === "ok").length,
          total: writes.length,
          unknown: writes.filter((op) => op.outcome === "unknown").length,
        },
        fallbackReads: reads.filter((op) => op.fallback).length,
        staleReads: stale,
        localReads: local.length,
        propagation: { p50: prop.p50, p99: prop.p99, count: prop.count, missing },
      });
    }
  }
  return rows;
}

/** Lays out a Markdown table with aligned columns. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const cell = (text: string, i: number) => (rightAligned.has(i) ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
  return [
    `| ${header.map(cell).join(" | ")} |`,
    `|${widths.map((w, i) => (rightAligned.has(i) ? `${"-".repeat(w + 1)}:` : `${"-".repeat(w + 2)}`)).join("|")}|`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ];
}

/** The summary table as lines. */
export function summaryTable(rows: readonly PhaseRegionRow[]): string[] {
  const header = ["phase", "region", "calls/s", "p50 ms", "p99 ms", "reads ok", "writes ok", "fallback", "stale reads", "propagation ms"];
  const body = rows.map((r) => [
    r.phase,
    r.region,
    r.callsPerSec.toFixed(1),
    ms(r.p50),
    ms(r.p99),
    pct(r.reads.ok, r.reads.total),
    pct(r.writes.ok, r.writes.total),
    String(r.fallbackReads),
    r.localReads === 0 ? "-" : `${r.staleReads} (${pct(r.staleReads, r.localReads)})`,
    r.propagation.count === 0 && r.propagation.missing === 0
      ? "-"
      : `${ms(r.propagation.p50)} / ${ms(r.propagation.p99)}${r.propagation.missing ? ` (${r.propagation.missing} not seen)` : ""}`,
  ]);
  return markdownTable(header, body, new Set([2, 3, 4, 5, 6, 7, 8, 9]));
}

/** The invariants as lines, and whether all held. */
export function verdictLines(result: AuditResult, paint: Paint): string[] {
  return result.invariants.map((i) => `  ${i.ok ? paint.green("[ok]  ") : paint.red("[FAIL]")} ${paint.bold(i.title)}: ${i.detail}`);
}
