#!/usr/bin/env node
/**
 * Rewrites the import lines of tests, examples and benchmarks so they import Meridian the way
 * users do: `meridian-rpc`, `meridian-rpc/runtime`, `meridian-rpc/transports/tcp`, ... instead of
 * `../../runtime/index.js` or deep paths. Idempotent: run it again after a merge that adds or
 * moves files, and it changes only what is new.
 *
 *   node scripts/rewrite-imports.mjs [--check] [paths...]
 *   node scripts/rewrite-imports.mjs --package [--check] transports cli ...
 *
 * Default paths: test/, examples/, bench/, and the *.test.ts files inside the published folders.
 * `--check` changes nothing and exits 1 when a file would change.
 *
 * `--package` is for code inside the package: a file that imports another layer's modules
 * (transports/tcp importing runtime/rpc/transport.js) imports the entry files instead, by
 * relative path (`../../runtime/transport.js`), as the dependency rule wants
 * (scripts/check-layers.mjs). Imports within one layer are left alone.
 *
 * Each imported name goes to the entry that exports its declaration (package.json "exports"),
 * preferring the entry it was imported from, then `meridian-rpc`, `meridian-rpc/runtime`,
 * `meridian-rpc/transport`, then the other entries in package.json order. A name no entry
 * exports keeps its deep import: that file is a unit test of an internal module (listed at the
 * end). Relative imports inside the published folders (a test beside its module) are kept;
 * generated files (`// @generated`) are never touched. Imports of one entry are merged into one
 * statement (`import type` when every name in it is a type).
 */
import fs from "node:fs";
import path from "node:path";
import { REPO, exportTable, isGenerated, packageEntries, parseImports, resolveSpecifier, sourceFiles } from "./lib/imports.mjs";

/** Folders whose modules are the package: a test outside them reaches them through an entry. */
const PUBLISHED = ["runtime", "transports", "codegen", "idl", "emit", "cli"];
const WIDTH = 150;

const args = process.argv.slice(2);
const check = args.includes("--check");
const packageMode = args.includes("--package");
const paths = args.filter((a) => !a.startsWith("--"));
const pkg = packageEntries();
const { exportsOf } = exportTable(pkg);

const insidePublished = (file) => PUBLISHED.some((d) => file === d || file.startsWith(`${d}/`));
/** The unit a file belongs to for the dependency rule: `runtime`, `codegen`, ..., or `transports/<name>`. */
const unitOf = (file) => {
  const [top, second] = file.split(path.sep);
  return top === "transports" ? `${top}/${second}` : top;
};
/** How `file` writes an entry: its package specifier, or in --package mode the relative path of its source (.js). */
const specIn = (file, spec) => {
  if (!packageMode) return spec;
  const rel = path.relative(path.dirname(file), pkg.entries.get(spec)).replace(/\.ts$/, ".js").split(path.sep).join("/");
  return rel.startsWith(".") ? rel : `./${rel}`;
};
const defaultFiles = () => [
  ...sourceFiles(["test", "examples", "bench"]),
  ...sourceFiles(PUBLISHED).filter((f) => /\.test\.ts$/.test(f)),
];
const files = paths.length > 0 ? sourceFiles(paths) : packageMode ? [] : defaultFiles();

// Entry specifiers in preference order, and for each declaration the entries that export it.
const preference = [pkg.name, `${pkg.name}/runtime`, `${pkg.name}/transport`];
const entrySpecs = [...preference.filter((s) => pkg.entries.has(s)), ...[...pkg.entries.keys()].filter((s) => !preference.includes(s))];
const entryOfFile = new Map([...pkg.entries].map(([spec, file]) => [file, spec]));
/** declaration -> [{ spec, name }] in preference order. */
const exporters = new Map();
/** exported name -> declarations (for names imported from an entry that no longer exports them). */
const byName = new Map();
for (const spec of entrySpecs) {
  for (const [name, { decl, typeOnly }] of exportsOf(pkg.entries.get(spec))) {
    if (!exporters.has(decl)) exporters.set(decl, []);
    exporters.get(decl).push({ spec, name, typeOnly });
    if (!byName.has(name)) byName.set(name, new Set());
    byName.get(name).add(decl);
  }
}

/**
 * Where `name`, imported from `target` (a repo file), should come from: { spec, name } or
 * undefined (keep). A value import needs an entry that exports the name as a value.
 */
function entryFor(target, name, typeOnly) {
  const fromSpec = entryOfFile.get(target);
  let decl = exportsOf(target).get(name)?.decl;
  if (decl === undefined && fromSpec !== undefined) {
    // Imported from an entry that no longer exports it (moved to another entry): find it by name.
    const decls = byName.get(name);
    if (decls?.size === 1) decl = [...decls][0];
  }
  const found = decl === undefined ? undefined : exporters.get(decl)?.filter((e) => typeOnly || !e.typeOnly);
  if (found === undefined || found.length === 0) return undefined;
  return found.find((e) => e.spec === fromSpec) ?? found.find((e) => e.name === name) ?? found[0];
}

const binding = (n) => `${n.typeOnly ? "type " : ""}${n.name === n.alias ? n.name : `${n.name} as ${n.alias}`}`;
function printImport(names, spec, typeOnly) {
  const list = names.map((n) => binding({ ...n, typeOnly: n.typeOnly && !typeOnly }));
  const head = `import ${typeOnly ? "type " : ""}{ `;
  const one = `${head}${list.join(", ")} } from "${spec}";`;
  if (one.length <= WIDTH) return one;
  return `import ${typeOnly ? "type " : ""}{\n${list.map((b) => `  ${b},`).join("\n")}\n} from "${spec}";`;
}

let changed = 0;
const kept = new Map();
for (const file of files) {
  const abs = path.join(REPO, file);
  const text = fs.readFileSync(abs, "utf8");
  if (isGenerated(text)) continue;
  const { imports } = parseImports(file, text);
  const local = insidePublished(file) && !packageMode;
  /** Statement edits: [start, end, replacement]. */
  const edits = [];
  /** Named imports per (entry specifier, import type) in order of first appearance: merged into the first statement. */
  const groups = new Map();
  for (const imp of imports) {
    const isPackageSpec = pkg.entries.has(imp.specifier);
    if (!isPackageSpec && (!imp.specifier.startsWith(".") || local)) continue;
    const target = resolveSpecifier(file, imp.specifier, pkg);
    if (target === undefined || (!isPackageSpec && !insidePublished(target))) continue;
    if (packageMode && (isPackageSpec || unitOf(target) === unitOf(file))) continue;
    if (imp.kind === "dynamic" || imp.kind === "export" || imp.namespace !== undefined || imp.defaultName !== undefined || imp.sideEffect) {
      // Only the specifier can change, and only when the module is an entry itself.
      const spec = entryOfFile.get(target);
      if (spec !== undefined && specIn(file, spec) !== imp.specifier) {
        // The specifier's string literal, quotes included (a dynamic import's span is the literal).
        const at = imp.kind === "dynamic" ? imp.start : Math.max(text.indexOf(`"${imp.specifier}"`, imp.start), text.indexOf(`'${imp.specifier}'`, imp.start));
        edits.push([at, at + imp.specifier.length + 2, `"${specIn(file, spec)}"`]);
      } else if (spec === undefined && imp.kind !== "dynamic") kept.set(`${file}: ${imp.specifier}`, "(namespace, default or re-export)");
      continue;
    }
    const stay = [];
    for (const n of imp.names) {
      const e = entryFor(target, n.name, n.typeOnly);
      if (e === undefined) {
        stay.push(n);
        continue;
      }
      if (!groups.has(e.spec)) groups.set(e.spec, { spec: e.spec, names: [], at: undefined });
      const g = groups.get(e.spec);
      const renamed = { name: e.name, alias: n.alias, typeOnly: n.typeOnly };
      if (!g.names.some((m) => m.alias === renamed.alias)) g.names.push(renamed);
      if (g.at === undefined) g.at = imp;
    }
    if (stay.length > 0) kept.set(`${file}: ${imp.specifier}`, stay.map((n) => n.name).join(" "));
    imp.stay = stay;
    edits.push(imp);
  }
  // Each rewritten statement becomes: the group statements first placed at it, then what stays.
  const out = [];
  for (const imp of edits) {
    if (Array.isArray(imp)) {
      out.push(imp);
      continue;
    }
    const parts = [];
    for (const g of groups.values()) if (g.at === imp) parts.push(printImport(g.names, specIn(file, g.spec), g.names.every((n) => n.typeOnly)));
    if (imp.stay.length > 0) parts.push(printImport(imp.stay, imp.specifier, imp.stay.every((n) => n.typeOnly)));
    out.push([imp.start, imp.end, parts.join("\n")]);
  }
  let next = text;
  for (const [start, end, replacement] of out.sort((a, b) => b[0] - a[0])) {
    let stop = end;
    // A statement that vanishes takes its line break with it.
    if (replacement === "" && next[stop] === "\n") stop++;
    next = next.slice(0, start) + replacement + next.slice(stop);
  }
  if (next !== text) {
    changed++;
    if (check) console.log(`would rewrite ${file}`);
    else fs.writeFileSync(abs, next);
  }
}

if (kept.size > 0) {
  console.log(`deep imports kept (names no entry exports: unit tests of internal modules):`);
  for (const [where, names] of [...kept].sort()) console.log(`  ${where}  ${names}`);
}
console.log(`${check ? "would rewrite" : "rewrote"} ${changed} of ${files.length} files`);
if (check && changed > 0) process.exitCode = 1;
