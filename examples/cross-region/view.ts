/**
 * The demo's live view. On a terminal: a block redrawn in place (a progress bar over the phases,
 * then one line per region: calls/s, p50/p99, fallback reads, staleness, errors by code), with
 * events scrolling above it. Anywhere else (a pipe, a CI log): plain lines, events as they happen
 * and the region lines every few seconds, without colour or cursor movement.
 */
import type { TimedPhase } from "./scenario.js";
import { ms, type WindowStats } from "./stats.js";

/** One region's line. */
export interface RegionLive {
  readonly region: string;
  readonly primary: boolean;
  readonly cut: boolean;
  readonly stats: WindowStats;
  /** The region's replica: how stale a local read may be now, ms. */
  readonly replicaStaleMs: number;
  readonly registryReachable: boolean;
}

/** What the view shows at one moment. */
export interface LiveState {
  readonly elapsedMs: number;
  readonly totalMs: number;
  readonly phase: TimedPhase;
  readonly phaseCount: number;
  readonly primary: { readonly region: string; readonly epoch: number } | undefined;
  readonly regions: readonly RegionLive[];
  readonly writes: { readonly ok: number; readonly unknown: number; readonly failed: number };
}

/** Styles text on a colour terminal; identity otherwise. */
export interface Paint {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
}

const plainPaint: Paint = { bold: (s) => s, dim: (s) => s, red: (s) => s, green: (s) => s, yellow: (s) => s, cyan: (s) => s };
const ansi = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;
const colourPaint: Paint = { bold: ansi(1, 22), dim: ansi(2, 22), red: ansi(31, 39), green: ansi(32, 39), yellow: ansi(33, 39), cyan: ansi(36, 39) };

/** Colour only on a terminal, and never with NO_COLOR set. */
export function paintFor(out: NodeJS.WriteStream, colour: boolean | undefined): Paint {
  const on = colour ?? (out.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== "dumb");
  return on ? colourPaint : plainPaint;
}

/** `mm:ss`. */
export function clock(msValue: number): string {
  const s = Math.max(0, Math.floor(msValue / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

/** Cuts a line with ANSI styles to `width` visible characters (so a redrawn block never wraps). */
export function fit(line: string, width: number): string {
  let visible = 0;
  let out = "";
  for (let i = 0; i < line.length; i++) {
    if (line[i] === "\x1b") {
      const end = line.indexOf("m", i);
      if (end > 0) {
        out += line.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    if (visible >= width) return `${out}\x1b[0m`;
    out += line[i];
    visible++;
  }
  return out;
}

function errorsText(errors: Readonly<Record<string, number>>): string {
  const parts = Object.entries(errors)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ${n}`);
  return parts.length === 0 ? "-" : parts.join(", ");
}

function staleText(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "-";
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`;
}

/** Options of LiveView. */
export interface LiveViewOptions {
  /** Redraw in place (a terminal) or print plain lines. Default: whether `out` is a terminal. */
  readonly tty?: boolean;
  /** Force colour on or off. Default: on a terminal without NO_COLOR. */
  readonly colour?: boolean;
  /** Plain mode: how often the region lines are printed, ms. */
  readonly plainEveryMs?: number;
}

/** The live view; see the module comment. */
export class LiveView {
  readonly paint: Paint;
  private readonly tty: boolean;
  private drawn = 0;
  private lastPlain = -Infinity;
  private readonly plainEveryMs: number;

  constructor(
    private readonly out: NodeJS.WriteStream,
    options: LiveViewOptions = {},
  ) {
    this.tty = options.tty ?? out.isTTY === true;
    this.paint = paintFor(out, options.colour ?? (this.tty ? undefined : false));
    this.plainEveryMs = options.plainEveryMs ?? 3000;
  }

  /** A line that stays (an event, a phase change). */
  event(elapsedMs: number, text: string): void {
    const line = `${this.paint.dim(`[${clock(elapsedMs)}]`)} ${text}\n`;
    if (this.tty) {
      this.clear();
      this.out.write(line);
    } else this.out.write(line);
  }

  /** Shows the state: redrawn on a terminal, printed every few seconds otherwise. */
  update(state: LiveState): void {
    if (this.tty) {
      this.clear();
      const width = Math.max(40, (this.out.columns ?? 120) - 1);
      const lines = this.block(state).map((l) => fit(l, width));
      this.out.write(lines.join("\n") + "\n");
      this.drawn = lines.length;
      return;
    }
    if (state.elapsedMs - this.lastPlain < this.plainEveryMs) return;
    this.lastPlain = state.elapsedMs;
    this.out.write(this.plainLines(state).join("\n") + "\n");
  }

  /** Removes the live block (before the summary). */
  done(): void {
    if (this.tty) this.clear();
  }

  private clear(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}F\x1b[J`);
    this.drawn = 0;
  }

  private bar(state: LiveState, width = 30): string {
    const done = Math.min(width, Math.round((state.elapsedMs / state.totalMs) * width));
    return `${"█".repeat(done)}${"░".repeat(width - done)}`;
  }

  private block(state: LiveState): string[] {
    const p = this.paint;
    const percent = Math.min(100, Math.floor((100 * state.elapsedMs) / state.totalMs));
    const primary = state.primary ? `primary ${p.bold(state.primary.region)}, epoch ${state.primary.epoch}` : "primary unknown";
    const lines = [
      ` ${p.cyan(this.bar(state))} ${String(percent).padStart(3)}%  ${clock(state.elapsedMs)} / ${clock(state.totalMs)}  ` +
        `phase ${state.phase.index + 1}/${state.phaseCount}: ${p.bold(state.phase.title)}`,
      ` ${primary} · writes ${state.writes.ok} ok, ${state.writes.failed} failed fast, ${state.writes.unknown} unknown (resolved at the end)`,
      p.dim(` ${"region".padEnd(18)}${"calls/s".padStart(8)}${"p50 ms".padStart(8)}${"p99 ms".padStart(8)}${"fallback".padStart(10)}${"stale ≤".padStart(10)}   errors`),
    ];
    for (const r of state.regions) {
      const tag = r.cut ? p.red(" ✂ cut off") : r.primary ? p.green(" ★ primary") : "";
      const name = `${r.region}${r.cut ? " ✂ cut off" : r.primary ? " ★ primary" : ""}`;
      const pad = " ".repeat(Math.max(1, 18 - name.length));
      const errors = errorsText(r.stats.errors);
      lines.push(
        ` ${r.region}${tag}${pad}${r.stats.callsPerSec.toFixed(1).padStart(8)}${ms(r.stats.p50).padStart(8)}${ms(r.stats.p99).padStart(8)}` +
          `${String(r.stats.fallback).padStart(10)}${staleText(r.replicaStaleMs).padStart(10)}   ${errors === "-" ? p.dim(errors) : p.yellow(errors)}`,
      );
    }
    return lines;
  }

  private plainLines(state: LiveState): string[] {
    const percent = Math.min(100, Math.floor((100 * state.elapsedMs) / state.totalMs));
    const primary = state.primary ? `primary ${state.primary.region} (epoch ${state.primary.epoch})` : "primary unknown";
    const lines = [
      `[${clock(state.elapsedMs)}] ${percent}% phase ${state.phase.index + 1}/${state.phaseCount} ${state.phase.title} | ${primary} | ` +
        `writes ${state.writes.ok} ok, ${state.writes.failed} failed fast, ${state.writes.unknown} unknown`,
    ];
    for (const r of state.regions) {
      const role = r.cut ? " (cut off)" : r.primary ? " (primary)" : "";
      lines.push(
        `    ${(r.region + role).padEnd(20)} ${r.stats.callsPerSec.toFixed(1)} calls/s  p50 ${ms(r.stats.p50)} ms  p99 ${ms(r.stats.p99)} ms  ` +
          `fallback ${r.stats.fallback}  stale <= ${staleText(r.replicaStaleMs)}  errors ${errorsText(r.stats.errors)}`,
      );
    }
    return lines;
  }
}
