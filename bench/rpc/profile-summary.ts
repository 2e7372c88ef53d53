/**
 * Summarizes V8 CPU profiles (the .cpuprofile files `npm run bench:rpc -- --cpu-prof` writes to
 * .tmp/prof/): for each, the share of samples by area of the code (Meridian's folders, node's
 * internals, GC, idle) and the functions with the most self time, so a change to the hot path
 * starts from where the time goes (docs/profile.md).
 *
 *   node --import tsx bench/rpc/profile-summary.ts [--top <n>] <file.cpuprofile>...
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

/** Areas in the order they are tried: the first whose pattern matches a frame's url (or name) wins. */
const AREAS: readonly [string, RegExp][] = [
  ["idle", /^\(idle\)$/],
  ["gc", /^\(garbage collector\)$/],
  ["runtime/codec", /\/runtime\/codec\//],
  ["runtime/rpc", /\/runtime\/rpc\//],
  ["runtime (other)", /\/runtime\//],
  ["transports/tcp", /\/transports\/tcp\//],
  ["transports (other)", /\/transports\//],
  ["bench (load, service)", /\/bench\//],
  ["node_modules", /\/node_modules\//],
  ["node internals", /^node:|^internal\//],
  ["native / program", /^\(program\)$|^$/],
];

function areaOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  for (const [area, pattern] of AREAS) if (pattern.test(url) || (url === "" && pattern.test(functionName))) return area;
  return "other";
}

function shortUrl(url: string): string {
  const i = url.search(/\/(runtime|transports|bench|node_modules)\//);
  return i >= 0 ? url.slice(i + 1) : url;
}

function summarize(file: string, top: number): void {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const id of p.samples) self.set(id, (self.get(id) ?? 0) + 1);
  const total = p.samples.length;
  const busy = total - [...self].filter(([id]) => areaOf(byId.get(id)!) === "idle").reduce((s, [, n]) => s + n, 0);
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, n] of self) {
    const node = byId.get(id)!;
    const area = areaOf(node);
    areas.set(area, (areas.get(area) ?? 0) + n);
    if (area === "idle") continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || "(anonymous)"} ${shortUrl(url)}${url ? `:${lineNumber + 1}` : ""}`;
    fns.set(key, (fns.get(key) ?? 0) + n);
  }
  const seconds = (p.endTime - p.startTime) / 1e6;
  console.log(`\n== ${file}: ${seconds.toFixed(1)} s, ${total} samples, ${((100 * busy) / total).toFixed(0)}% busy`);
  console.log("share of busy samples by area:");
  for (const [area, n] of [...areas].filter(([a]) => a !== "idle").sort((a, b) => b[1] - a[1])) {
    console.log(`  ${area.padEnd(22)} ${((100 * n) / busy).toFixed(1).padStart(5)}%`);
  }
  console.log(`top ${top} functions by self time (share of busy samples):`);
  for (const [key, n] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`  ${((100 * n) / busy).toFixed(1).padStart(5)}%  ${key}`);
  }
}

const { values, positionals } = parseArgs({ options: { top: { type: "string" } }, allowPositionals: true });
if (positionals.length === 0) {
  console.error("usage: bench/rpc/profile-summary.ts [--top <n>] <file.cpuprofile>...");
  process.exit(2);
}
for (const file of positionals) summarize(file, Number(values.top ?? 25));
