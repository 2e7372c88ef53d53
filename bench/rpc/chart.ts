/**
 * The SVG chart of the RPC benchmark, written by hand: one panel per case and metric
 * (requests/s, p99 latency), bars grouped by concurrency, one colour per peer.
 */

/** One bar's worth of data. */
export interface ChartPoint {
  peer: string;
  name: string;
  concurrency: number;
  rps: number;
  p99Us: number;
}

const COLORS = ["#1f6feb", "#54aeff", "#d1242f", "#6e7781", "#8250df", "#1a7f37"];
const PANEL_W = 440;
const PANEL_H = 230;
const MARGIN = { top: 34, right: 16, bottom: 40, left: 64 };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function fmt(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`;
  if (v >= 10) return v.toFixed(0);
  return v.toFixed(v >= 1 ? 1 : 2);
}

/** A "nice" upper bound for an axis. */
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** What the chart's texts say; by default the RPC benchmark's (groups are concurrency levels). */
export interface ChartLabels {
  title: string;
  /** The label under a group of bars. */
  group: (g: number) => string;
  /** Title and unit of the top panel (the `rps` value) and of the bottom one (`p99Us`, log scale). */
  top: (name: string) => [string, string];
  bottom: (name: string) => [string, string];
}

const RPC_LABELS: ChartLabels = {
  title: "Meridian RPC benchmark: unary calls over loopback",
  group: (c) => `c=${c}`,
  top: (name) => [`${name}: requests/s (higher is better)`, "requests/s"],
  bottom: (name) => [`${name}: p99 latency (lower is better, log)`, "µs"],
};

function panel(
  x0: number,
  y0: number,
  title: string,
  points: ChartPoint[],
  peers: string[],
  concurrencies: number[],
  value: (p: ChartPoint) => number,
  unit: string,
  log: boolean,
  group: (g: number) => string,
): string {
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const values = points.map(value).filter((v) => v > 0);
  const maxV = niceMax(Math.max(1, ...values));
  const minV = log ? 10 ** Math.floor(Math.log10(Math.max(1e-3, Math.min(...values, maxV)))) : 0;
  const y = (v: number): number => {
    if (!log) return h - (v / maxV) * h;
    const lv = Math.log10(Math.max(v, minV));
    return h - ((lv - Math.log10(minV)) / (Math.log10(maxV) - Math.log10(minV))) * h;
  };
  const out: string[] = [];
  out.push(`<g transform="translate(${x0 + MARGIN.left},${y0 + MARGIN.top})">`);
  out.push(`<text x="${w / 2}" y="-14" text-anchor="middle" font-size="13" font-weight="600">${esc(title)}</text>`);
  const ticks = log
    ? Array.from({ length: Math.round(Math.log10(maxV) - Math.log10(minV)) + 1 }, (_, i) => minV * 10 ** i)
    : [0, 0.25, 0.5, 0.75, 1].map((f) => f * maxV);
  for (const t of ticks) {
    out.push(`<line x1="0" x2="${w}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#d0d7de" stroke-width="0.5"/>`);
    out.push(`<text x="-6" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" font-size="10" fill="#57606a">${fmt(t)}</text>`);
  }
  out.push(`<text transform="translate(-48,${h / 2}) rotate(-90)" text-anchor="middle" font-size="10" fill="#57606a">${esc(unit)}</text>`);
  const groupW = w / concurrencies.length;
  const barW = Math.min(22, (groupW * 0.8) / peers.length);
  concurrencies.forEach((c, gi) => {
    const gx = gi * groupW + (groupW - barW * peers.length) / 2;
    peers.forEach((peer, pi) => {
      const pt = points.find((p) => p.peer === peer && p.concurrency === c);
      if (pt === undefined) return;
      const v = value(pt);
      const top = y(v);
      const bx = gx + pi * barW;
      out.push(
        `<rect x="${bx.toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${Math.max(0, h - top).toFixed(1)}" fill="${COLORS[pi % COLORS.length]}"><title>${esc(`${peer}, ${group(c)}: ${fmt(v)} ${unit}`)}</title></rect>`,
      );
      out.push(
        `<text x="${(bx + (barW - 2) / 2).toFixed(1)}" y="${(top - 3).toFixed(1)}" text-anchor="middle" font-size="8" fill="#24292f">${fmt(v)}</text>`,
      );
    });
    out.push(`<text x="${(gi * groupW + groupW / 2).toFixed(1)}" y="${h + 16}" text-anchor="middle" font-size="11">${esc(group(c))}</text>`);
  });
  out.push(`<line x1="0" x2="${w}" y1="${h}" y2="${h}" stroke="#57606a"/>`);
  out.push(`</g>`);
  return out.join("\n");
}

/** The whole chart as an SVG document: per name, a panel of `rps` over one of `p99Us`. */
export function renderChart(points: ChartPoint[], names: string[], subtitle: string, labels: ChartLabels = RPC_LABELS): string {
  const peers = [...new Set(points.map((p) => p.peer))];
  const concurrencies = [...new Set(points.map((p) => p.concurrency))].sort((a, b) => a - b);
  const width = PANEL_W * names.length;
  const height = PANEL_H * 2 + 70;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="-apple-system,Segoe UI,Helvetica,Arial,sans-serif">`,
  );
  parts.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  parts.push(`<text x="12" y="20" font-size="15" font-weight="700">${esc(labels.title)}</text>`);
  parts.push(`<text x="12" y="36" font-size="11" fill="#57606a">${esc(subtitle)}</text>`);
  names.forEach((name, i) => {
    const pts = points.filter((p) => p.name === name);
    const [topTitle, topUnit] = labels.top(name);
    const [bottomTitle, bottomUnit] = labels.bottom(name);
    parts.push(panel(i * PANEL_W, 40, topTitle, pts, peers, concurrencies, (p) => p.rps, topUnit, false, labels.group));
    parts.push(panel(i * PANEL_W, 40 + PANEL_H, bottomTitle, pts, peers, concurrencies, (p) => p.p99Us, bottomUnit, true, labels.group));
  });
  let lx = 12;
  const ly = height - 14;
  peers.forEach((peer, i) => {
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/>`);
    parts.push(`<text x="${lx + 14}" y="${ly}" font-size="11">${esc(peer)}</text>`);
    lx += 24 + peer.length * 7;
  });
  parts.push(`</svg>`);
  return parts.join("\n") + "\n";
}
