/**
 * The import graph of the repository, read with TypeScript's parser: what every source file
 * imports, where each specifier resolves, and which names each module exports (following
 * re-exports to the declaration). Shared by scripts/check-layers.mjs and
 * scripts/rewrite-imports.mjs; dev only (TypeScript is a devDependency), never published.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** The repository root (this file is scripts/lib/imports.mjs). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The package's name and its entries: specifier (`meridian-rpc/runtime`) to source file, repo-relative. */
export function packageEntries(repo = REPO) {
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8"));
  const entries = new Map();
  for (const [key, target] of Object.entries(pkg.exports ?? {})) {
    const source = typeof target === "object" ? target["meridian-source"] : undefined;
    if (typeof source !== "string") continue;
    entries.set(key === "." ? pkg.name : `${pkg.name}/${key.slice(2)}`, path.normalize(source));
  }
  return { name: pkg.name, entries };
}

const SOURCE = /\.(ts|mts|mjs|js)$/;
const SKIP_DIRS = new Set(["node_modules", "dist", ".tmp", ".git"]);

/** Every source file (.ts, .mts, .mjs, .js) under `roots` (repo-relative), sorted, without .d.ts. */
export function sourceFiles(roots, repo = REPO) {
  const out = [];
  const walk = (rel) => {
    const abs = path.join(repo, rel);
    if (!fs.existsSync(abs)) return;
    if (fs.statSync(abs).isFile()) {
      if (SOURCE.test(rel) && !rel.endsWith(".d.ts")) out.push(path.normalize(rel));
      return;
    }
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      if (SKIP_DIRS.has(e.name)) continue;
      walk(path.join(rel, e.name));
    }
  };
  for (const r of roots) walk(r);
  return [...new Set(out)].sort();
}

/** Whether a file says it was generated (`// @generated` in its first lines): never edited by hand or by script. */
export function isGenerated(text) {
  return /^\s*\/\/ @generated\b/m.test(text.slice(0, 400));
}

/**
 * The imports of one file: static imports and re-exports (with their named bindings) and
 * dynamic `import("...")` calls with a literal specifier. `start`/`end` span the whole statement.
 */
export function parseImports(file, text) {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out = [];
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st) && ts.isStringLiteral(st.moduleSpecifier)) {
      const clause = st.importClause;
      const names = [];
      let namespace;
      if (clause?.namedBindings && ts.isNamedImports(clause.namedBindings)) {
        for (const el of clause.namedBindings.elements) {
          names.push({ name: (el.propertyName ?? el.name).text, alias: el.name.text, typeOnly: el.isTypeOnly || clause.isTypeOnly });
        }
      } else if (clause?.namedBindings) namespace = clause.namedBindings.name.text;
      out.push({
        kind: "import",
        specifier: st.moduleSpecifier.text,
        typeOnly: clause?.isTypeOnly ?? false,
        defaultName: clause?.name?.text,
        namespace,
        names,
        sideEffect: clause === undefined,
        start: st.getStart(sf),
        end: st.getEnd(),
        line: sf.getLineAndCharacterOfPosition(st.getStart(sf)).line + 1,
      });
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier)) {
      const names = [];
      let star = false;
      if (st.exportClause && ts.isNamedExports(st.exportClause)) {
        for (const el of st.exportClause.elements) names.push({ name: (el.propertyName ?? el.name).text, alias: el.name.text, typeOnly: el.isTypeOnly || st.isTypeOnly });
      } else star = true;
      out.push({
        kind: "export",
        specifier: st.moduleSpecifier.text,
        typeOnly: st.isTypeOnly,
        names,
        star,
        starAs: st.exportClause && ts.isNamespaceExport(st.exportClause) ? st.exportClause.name.text : undefined,
        start: st.getStart(sf),
        end: st.getEnd(),
        line: sf.getLineAndCharacterOfPosition(st.getStart(sf)).line + 1,
      });
    }
  }
  const visit = (node) => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments.length === 1 && ts.isStringLiteralLike(node.arguments[0])) {
      const arg = node.arguments[0];
      out.push({
        kind: "dynamic",
        specifier: arg.text,
        typeOnly: false,
        names: [],
        start: arg.getStart(sf),
        end: arg.getEnd(),
        line: sf.getLineAndCharacterOfPosition(arg.getStart(sf)).line + 1,
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return { sf, imports: out.sort((a, b) => a.start - b.start) };
}

/** The exported declarations of a file (top-level `export function/class/const/interface/type/enum X`). */
function localExports(sf) {
  const names = new Set();
  const localNames = new Set();
  for (const st of sf.statements) {
    const exported = ts.canHaveModifiers(st) && ts.getModifiers(st)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    const declared = [];
    if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) declared.push(d.name.text);
    } else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st) || ts.isEnumDeclaration(st) || ts.isModuleDeclaration(st)) && st.name && ts.isIdentifier(st.name)) {
      declared.push(st.name.text);
    }
    for (const n of declared) {
      localNames.add(n);
      if (exported) names.add(n);
    }
  }
  return { names, localNames };
}

/**
 * Resolves a specifier written in `fromFile` (repo-relative) to a repo-relative source file, or
 * undefined for a package outside the repository (node:*, npm packages). Relative `.js` paths
 * map to the `.ts` beside them; `meridian-rpc/...` maps through package.json's entries.
 */
export function resolveSpecifier(fromFile, specifier, pkg, repo = REPO) {
  if (specifier.startsWith(".")) {
    const base = path.normalize(path.join(path.dirname(fromFile), specifier));
    const candidates = [base.replace(/\.js$/, ".ts"), base.replace(/\.mjs$/, ".mts"), base, `${base}.ts`, path.join(base, "index.ts")];
    for (const c of candidates) if (fs.existsSync(path.join(repo, c)) && fs.statSync(path.join(repo, c)).isFile()) return c;
    return base.replace(/\.js$/, ".ts");
  }
  return pkg.entries.get(specifier);
}

/**
 * The export table of the repository: for a module, every exported name mapped to its
 * declaration (`decl`: `file#name`) and whether it is exported as a type only (`export type`),
 * following `export ... from`, `export *` and `import` + `export { }`.
 */
export function exportTable(pkg, repo = REPO) {
  const cache = new Map();
  const parsed = new Map();
  const parse = (file) => {
    if (!parsed.has(file)) {
      const abs = path.join(repo, file);
      parsed.set(file, fs.existsSync(abs) ? parseImports(file, fs.readFileSync(abs, "utf8")) : undefined);
    }
    return parsed.get(file);
  };
  const exportsOf = (file, seen = new Set()) => {
    if (cache.has(file)) return cache.get(file);
    const table = new Map();
    if (seen.has(file)) return table;
    seen.add(file);
    const p = parse(file);
    if (p === undefined) return table;
    const { names, localNames } = localExports(p.sf);
    for (const n of names) table.set(n, { decl: `${file}#${n}`, typeOnly: false });
    // Imported bindings, for `export { x }` of something imported.
    const imported = new Map();
    for (const imp of p.imports) {
      if (imp.kind !== "import") continue;
      const target = resolveSpecifier(file, imp.specifier, pkg, repo);
      for (const n of imp.names) imported.set(n.alias, { target, specifier: imp.specifier, name: n.name, typeOnly: n.typeOnly });
    }
    const lookup = (target, name) => (target === undefined ? undefined : exportsOf(target, seen).get(name));
    for (const st of p.sf.statements) {
      if (!ts.isExportDeclaration(st) || st.moduleSpecifier) continue;
      if (!st.exportClause || !ts.isNamedExports(st.exportClause)) continue;
      for (const el of st.exportClause.elements) {
        const local = (el.propertyName ?? el.name).text;
        const via = imported.get(local);
        const typeOnly = st.isTypeOnly || el.isTypeOnly;
        if (via !== undefined) {
          const found = lookup(via.target, via.name);
          table.set(el.name.text, { decl: found?.decl ?? `${via.target ?? via.specifier}#${via.name}`, typeOnly: typeOnly || via.typeOnly || (found?.typeOnly ?? false) });
        } else if (localNames.has(local)) table.set(el.name.text, { decl: `${file}#${local}`, typeOnly });
      }
    }
    for (const imp of p.imports) {
      if (imp.kind !== "export") continue;
      const target = resolveSpecifier(file, imp.specifier, pkg, repo);
      if (imp.star && imp.starAs) table.set(imp.starAs, { decl: `${target ?? imp.specifier}#*`, typeOnly: imp.typeOnly });
      else if (imp.star) {
        for (const [n, e] of target === undefined ? [] : exportsOf(target, seen)) {
          if (n !== "default" && !table.has(n)) table.set(n, { decl: e.decl, typeOnly: e.typeOnly || imp.typeOnly });
        }
      } else {
        for (const n of imp.names) {
          const found = lookup(target, n.name);
          table.set(n.alias, { decl: found?.decl ?? `${target ?? imp.specifier}#${n.name}`, typeOnly: n.typeOnly || (found?.typeOnly ?? false) });
        }
      }
    }
    cache.set(file, table);
    return table;
  };
  return { exportsOf, parse };
}
