/**
 * A hand-written SVG bar chart of the codec benchmark's ratios to the baseline library: one row
 * per library, grouped by size and operation, bars drawn from 1x on a log scale.
 */
import type { Result } from "./result.js";

/** Blues for Meridian's rows, other hues for the peers. */
const MERIDIAN_COLORS = ["#08519c", "#4292c6", "#6a51a3", "#9e9ac8"];
const PEER_COLORS = ["#d62728", "#ff7f0e", "#2ca02c", "#8c564b", "#e377c2", "#7f7f7f"];
const LEGEND_W = 200;
const FONT = `font-family="system-ui, -apple-system, Segoe UI, sans-serif"`;

const LABEL_W = 200;
const PANEL_W = 380;
const PANEL_GAP = 50;
const MARGIN = 20;
const ROW_H = 14;
const BAR_H = 10;
const GROUP_H = 22;
const TOP = 96;

/** One panel: which ratio it draws, and how to read it. */
interface Panel {
  title: string;
  value: (r: Result) => number | undefined;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function fmt(v: number): string {
  return v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toPrecision(2);
}

/** A tick label: 0.001x, 0.5x, 1x, 20x. */
function tick(v: number): string {
  return `${Number(v.toPrecision(1))}x`;
}

/** A log10 scale from the domain's power-of-ten bounds to [x0, x0 + width]. */
function logScale(values: number[], x0: number, width: number): { at: (v: number) => number; ticks: number[] } {
  const lo = Math.floor(Math.log10(Math.min(1, ...values)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(1, ...values))));
  const at = (v: number): number => x0 + ((Math.log10(v) - lo) / (hi - lo)) * width;
  const steps = hi - lo <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) for (const s of steps) if (e < hi || s === 1) ticks.push(s * 10 ** e);
  return { at, ticks };
}

/**
 * Renders the ratio chart: a left panel of ops/s ratios (right of 1x is faster than the
 * baseline) and a right panel of p99 ratios (left of 1x is a lower tail latency).
 */
export function ratioChart(results: Result[], baseline: string, subtitle: string): string {
  const rows = results.filter((r) => r.vsBaseline && r.label !== baseline);
  const labels = [...new Set(rows.map((r) => r.label))];
  const ours = labels.filter((l) => l.startsWith("meridian"));
  const theirs = labels.filter((l) => !l.startsWith("meridian"));
  const color = (label: string): string => {
    const i = ours.indexOf(label);
    return i >= 0 ? MERIDIAN_COLORS[i % MERIDIAN_COLORS.length]! : PEER_COLORS[theirs.indexOf(label) % PEER_COLORS.length]!;
  };
  const groups: { title: string; rows: Result[] }[] = [];
  for (const r of rows) {
    const title = `${r.size} · ${r.op}`;
    const g = groups.find((x) => x.title === title) ?? (groups.push({ title, rows: [] }), groups.at(-1)!);
    g.rows.push(r);
  }
  const panels: Panel[] = [
    { title: `ops/s ÷ ${baseline}: right of 1x is faster`, value: (r) => r.vsBaseline?.opsPerSec },
    { title: `p99 latency ÷ ${baseline}: left of 1x is a shorter tail`, value: (r) => r.vsBaseline?.p99 },
  ];
  const bodyH = groups.reduce((h, g) => h + GROUP_H + g.rows.length * ROW_H, 0);
  const width = MARGIN * 2 + LABEL_W + PANEL_W * 2 + PANEL_GAP;
  const perLine = Math.floor((width - 2 * MARGIN) / LEGEND_W);
  const top = TOP + Math.floor((labels.length - 1) / perLine) * 14;
  const height = top + bodyH + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"` +
      ` ${FONT} font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${MARGIN}" y="26" font-size="16" font-weight="600">` +
      `Meridian codec benchmark: ratios to ${esc(baseline)}</text>`,
    `<text x="${MARGIN}" y="44" fill="#555">${esc(subtitle)}</text>`,
  ];
  labels.forEach((l, i) => {
    const x = MARGIN + (i % perLine) * LEGEND_W;
    const y = 62 + Math.floor(i / perLine) * 14;
    out.push(`<rect x="${x}" y="${y - 9}" width="10" height="10" fill="${color(l)}"/>`);
    out.push(`<text x="${x + 14}" y="${y}">${esc(l)}</text>`);
  });

  panels.forEach((panel, p) => {
    const x0 = MARGIN + LABEL_W + p * (PANEL_W + PANEL_GAP);
    const values = rows.map(panel.value).filter((v): v is number => v !== undefined && v > 0);
    const scale = logScale(values, x0, PANEL_W);
    const one = scale.at(1);
    out.push(`<text x="${x0}" y="${top - 8}" font-weight="600">${esc(panel.title)}</text>`);
    for (const t of scale.ticks) {
      const x = scale.at(t).toFixed(1);
      out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + bodyH}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${x}" y="${top + bodyH + 14}" text-anchor="middle" fill="#555">${tick(t)}</text>`);
    }
    let y = top;
    for (const g of groups) {
      if (p === 0) out.push(`<text x="${MARGIN}" y="${y + 15}" font-weight="600">${esc(g.title)}</text>`);
      y += GROUP_H;
      for (const r of g.rows) {
        const v = panel.value(r);
        if (p === 0) out.push(`<text x="${MARGIN + 12}" y="${y + BAR_H}">${esc(r.label)}</text>`);
        if (v !== undefined && v > 0) {
          const x = scale.at(v);
          const [left, w] = x >= one ? [one, x - one] : [x, one - x];
          const width = Math.max(w, 1).toFixed(1);
          out.push(`<rect x="${left.toFixed(1)}" y="${y + 1}" width="${width}" height="${BAR_H}" fill="${color(r.label)}"/>`);
          const [tx, anchor] = x >= one ? [x + 3, "start"] : [x - 3, "end"];
          const at = `x="${tx.toFixed(1)}" y="${y + BAR_H}" text-anchor="${anchor}"`;
          out.push(`<text ${at} font-size="9" fill="#333">${fmt(v)}x</text>`);
        }
        y += ROW_H;
      }
    }
    out.push(`<line x1="${one.toFixed(1)}" y1="${top}" x2="${one.toFixed(1)}" y2="${top + bodyH}" stroke="#333"/>`);
  });
  out.push(`</svg>`);
  return `${out.join("\n")}\n`;
}
