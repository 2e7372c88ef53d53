/**
 * What the codec benchmark reports: the result rows, their ratios to the baseline, the stdout
 * tables, and the files under bench/results/.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Size } from "./data.js";
import type { Result } from "./result.js";
import type { Allocation } from "./alloc.js";
import { ratioChart } from "./svg.js";

export type { Result } from "./result.js";

/** Allocation per call of one encode row. */
export interface AllocationResult extends Allocation {
  size: Size;
  label: string;
}

/** Everything a run wrote, as saved in bench/results/codec.json. */
export interface Report {
  meta: Record<string, unknown>;
  /** Encoded size of each fixture per library, bytes. */
  wireBytes: Record<string, Record<string, number>>;
  checks: { roundTrip: Record<string, string>; sameBytesAsBaseline: Record<string, string> };
  results: Result[];
  allocation: AllocationResult[];
}

/** The median of the finite values, NaN when there is none. */
function median(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length === 0 ? NaN : v.length % 2 ? v[v.length >> 1]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
}

/** Fills in each row's ratios to the `baseline` library's row of the same size and op. */
export function addRatios(rows: Result[], baseline: string): void {
  for (const r of rows) {
    const base = rows.find((b) => b.size === r.size && b.op === r.op && b.label === baseline);
    if (!base || base.error || r.error) continue;
    const opsPerSec = median(r.rounds.map((x, i) => base.rounds[i]!.meanUs / x.meanUs));
    const p99 = median(r.rounds.map((x, i) => x.p99Us / base.rounds[i]!.p99Us));
    if (Number.isFinite(opsPerSec) && Number.isFinite(p99)) r.vsBaseline = { opsPerSec, p99 };
  }
}

/** Formats a number with about three significant digits; integers and numbers above 1000 whole. */
function num(v: number): string {
  if (!Number.isFinite(v)) return "-";
  if (Math.abs(v) >= 1000 || Number.isInteger(v)) return Math.round(v).toLocaleString("en-US");
  return v.toPrecision(3);
}

function ratio(v: number | undefined): string {
  if (v === undefined) return "-";
  return `${v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toPrecision(2)}x`;
}

/** How far apart the rounds were: (slowest - fastest round mean) / reported mean. */
function spread(r: Result): string {
  const means = r.rounds.map((x) => x.meanUs).filter(Number.isFinite);
  if (means.length < 2) return "-";
  return `${(((Math.max(...means) - Math.min(...means)) / r.meanUs) * 100).toFixed(0)}%`;
}

/** A plain-text table: the first column left-aligned, the others right-aligned. */
function table(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

/** The results table for stdout, one block per size, rows grouped by operation. */
export function formatResults(rows: Result[], baseline: string, describe: (size: Size) => string): string {
  const head = ["op / library", "ops/s", "mean us", "p99 us", "spread", `ops/s vs ${baseline}`, `p99 vs ${baseline}`];
  const sizes = [...new Set(rows.map((r) => r.size))];
  return sizes
    .map((size) => {
      const body: string[][] = [];
      for (const op of [...new Set(rows.filter((r) => r.size === size).map((r) => r.op))]) {
        body.push([op, "", "", "", "", "", ""]);
        for (const r of rows.filter((x) => x.size === size && x.op === op)) {
          body.push(
            r.error
              ? [`  ${r.label}`, `error: ${r.error}`, "", "", "", "", ""]
              : [
                  `  ${r.label}`,
                  num(r.opsPerSec),
                  num(r.meanUs),
                  num(r.p99Us),
                  spread(r),
                  ratio(r.vsBaseline?.opsPerSec),
                  ratio(r.vsBaseline?.p99),
                ],
          );
        }
      }
      return `${describe(size)}\n${table(head, body)}`;
    })
    .join("\n\n");
}

/** The encoded size of each fixture per library, for stdout. */
export function formatWireBytes(wireBytes: Report["wireBytes"]): string {
  const sizes = Object.keys(wireBytes);
  const libraries = [...new Set(sizes.flatMap((s) => Object.keys(wireBytes[s]!)))];
  const body = libraries.map((l) => [l, ...sizes.map((s) => num(wireBytes[s]![l] ?? NaN))]);
  return table(["encoded bytes", ...sizes], body);
}

/** The allocation table for stdout. */
export function formatAllocation(rows: AllocationResult[]): string {
  const head = ["size / encode", "heap B/call", "ArrayBuffers/call", "ArrayBuffer B/call"];
  const body = rows.map((a) => [
    `${a.size.padEnd(5)} ${a.label}`,
    num(a.heapBytes),
    a.arrayBuffers.toFixed(3),
    num(a.arrayBufferBytes),
  ]);
  return table(head, body);
}

/** Writes the report as JSON and its ratio chart as SVG. */
export function writeReport(report: Report, jsonPath: string, svgPath: string, baseline: string): void {
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(svgPath, ratioChart(report.results, baseline, String(report.meta["title"] ?? "")));
}
