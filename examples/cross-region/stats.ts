/**
 * Numbers for the live view and the summary: percentiles, and what a window of calls of one
 * region looks like (rate, latency, errors by code, fallback reads).
 */
import type { OpRecord } from "./protocol.js";

/** The q-quantile (0..1) of ascending `sorted` values (nearest rank), undefined when empty. */
export function percentile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

/** p50 and p99 of some values. */
export function quantiles(values: readonly number[]): { p50: number | undefined; p99: number | undefined; count: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), count: sorted.length };
}

/** What one region's calls in a time window look like. */
export interface WindowStats {
  /** Calls answered (ok) per second. */
  readonly callsPerSec: number;
  /** Latency of every call that returned in the window, ms. */
  readonly p50: number | undefined;
  readonly p99: number | undefined;
  /** Failed or unknown calls by code name. */
  readonly errors: Readonly<Record<string, number>>;
  /** Linearizable reads served from the local replica because the primary was unreachable. */
  readonly fallback: number;
  /** The largest staleness bound a read in the window reported, ms. */
  readonly maxStaleMs: number | undefined;
}

/** Summarizes calls that returned within `windowMs`. */
export function windowStats(ops: readonly OpRecord[], windowMs: number): WindowStats {
  const errors: Record<string, number> = {};
  let ok = 0;
  let fallback = 0;
  let maxStaleMs: number | undefined;
  const latencies: number[] = [];
  for (const op of ops) {
    latencies.push(op.ret - op.call);
    if (op.outcome === "ok") ok++;
    else errors[op.code ?? "UNKNOWN"] = (errors[op.code ?? "UNKNOWN"] ?? 0) + 1;
    if (op.fallback) fallback++;
    if (typeof op.staleMs === "number" && (op.fallback || op.consistency === "eventual")) maxStaleMs = Math.max(maxStaleMs ?? 0, op.staleMs);
  }
  const q = quantiles(latencies);
  return { callsPerSec: ok / (windowMs / 1000), p50: q.p50, p99: q.p99, errors, fallback, maxStaleMs };
}

/** A millisecond figure for tables: one decimal under 10, whole above, "-" when missing. */
export function ms(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "-";
  return v < 10 ? v.toFixed(1) : String(Math.round(v));
}

/** A share as a percentage ("-" when nothing was tried). */
export function pct(ok: number, total: number): string {
  if (total === 0) return "-";
  const p = (100 * ok) / total;
  return `${p === 100 ? "100" : p.toFixed(1)}%`;
}
