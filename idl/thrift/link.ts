/**
 * Loading and linking Thrift IDL: reads the files and what they include, resolves every name
 * (local, or `<include>.Name` where `<include>` is the included file's base name), follows
 * typedefs, and checks what Apache Thrift's compiler checks: unique names, field ids and
 * enum value names; defaults and constants that fit their types; `throws` naming exceptions; oneway
 * functions returning void without exceptions; `extends` naming a service; no include or
 * typedef cycles. Every error is an IdlError at its location; nothing is returned on error.
 */
import { readFileSync, existsSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { IdlError } from "../errors.js";
import type { SourceLocation } from "../model.js";
import type {
  ConstValue,
  ThriftBaseType,
  ThriftDefinition,
  ThriftDocument,
  ThriftEnum,
  ThriftField,
  ThriftService,
  ThriftStruct,
  ThriftType,
} from "./ast.js";
import { parseThrift } from "./parse.js";

/** A type with every name resolved and every typedef followed. */
export type ResolvedType =
  | { readonly kind: "base"; readonly name: ThriftBaseType }
  | { readonly kind: "list" | "set"; readonly element: ResolvedType }
  | { readonly kind: "map"; readonly key: ResolvedType; readonly value: ResolvedType }
  | { readonly kind: "struct"; readonly def: ThriftStruct; readonly file: string }
  | { readonly kind: "enum"; readonly def: ThriftEnum; readonly file: string };

/** Linked Thrift files: the documents, and name resolution over them. */
export interface ThriftProgram {
  /** Every document loaded, the named files and what they include, by file name. */
  readonly documents: ReadonlyMap<string, ThriftDocument>;
  /** The files asked for, in order. */
  readonly roots: readonly string[];
  /** The type `t` as written in `file`, resolved. */
  resolve(t: ThriftType, file: string): ResolvedType;
  /** The service `name` (as written in `file`) extends, with its file. */
  service(name: string, file: string, loc: SourceLocation | undefined): { readonly def: ThriftService; readonly file: string };
}

/** Options of loadThriftFiles. */
export interface ThriftLoadOptions {
  /** Where included files are looked for after the including file's own folder. Default ["."]. */
  readonly includeDirs?: readonly string[];
  /** Reads a file's text (for tests). Default: from disk as UTF-8. */
  readonly readFile?: (path: string) => string;
}

/** Reads, parses and links `files` and everything they include. Throws IdlError. */
export function loadThriftFiles(files: readonly string[], options: ThriftLoadOptions = {}): ThriftProgram {
  const includeDirs = (options.includeDirs ?? ["."]).map((d) => resolve(d));
  const read = options.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  const exists = options.readFile === undefined ? existsSync : (p: string) => {
    try {
      read(p);
      return true;
    } catch {
      return false;
    }
  };
  /** The name of a file: relative to the first include dir that holds it, else as given. */
  const nameOf = (abs: string): string => {
    for (const d of includeDirs) {
      const rel = relative(d, abs);
      if (!rel.startsWith("..") && !isAbsolute(rel)) return rel.split(sep).join("/");
    }
    return abs.split(sep).join("/");
  };
  const documents = new Map<string, ThriftDocument>();
  const paths = new Map<string, string>();
  const loading = new Set<string>();
  const load = (abs: string, from: SourceLocation | undefined): string => {
    const name = nameOf(abs);
    if (documents.has(name)) return name;
    if (loading.has(name)) throw at(from, name, `include cycle: ${name} includes itself through ${[...loading].join(" -> ")}`);
    let text: string;
    try {
      text = read(abs);
    } catch (e) {
      throw at(from, name, `cannot read ${abs}: ${(e as Error).message}`);
    }
    loading.add(name);
    const doc = parseThrift(name, text);
    for (const inc of doc.includes) {
      const candidates = [join(dirname(abs), inc.path), ...includeDirs.map((d) => join(d, inc.path))];
      const found = candidates.find((c) => exists(c));
      if (found === undefined) throw at(inc.loc, name, `cannot find included file "${inc.path}" (looked in ${[...new Set([dirname(abs), ...includeDirs])].join(", ")})`);
      paths.set(`${name}\0${includeName(inc.path)}`, load(resolve(found), inc.loc));
    }
    loading.delete(name);
    documents.set(name, doc);
    return name;
  };
  const roots = files.map((f) => load(resolve(f), undefined));
  const program = new Linker(documents, paths, roots);
  program.check();
  return program;
}

/** The prefix an include gives the names of the file it includes: its base name without `.thrift`. */
function includeName(path: string): string {
  return basename(path).replace(/\.thrift$/, "");
}

function at(loc: SourceLocation | undefined, file: string, detail: string): IdlError {
  return IdlError.at(loc, file, detail);
}

type Named = { readonly def: ThriftDefinition; readonly file: string };

class Linker implements ThriftProgram {
  private readonly names = new Map<string, Map<string, ThriftDefinition>>();

  constructor(
    readonly documents: ReadonlyMap<string, ThriftDocument>,
    /** `<file>\0<include name>` to the included file's name. */
    private readonly includes: ReadonlyMap<string, string>,
    readonly roots: readonly string[],
  ) {
    for (const [file, doc] of documents) {
      const byName = new Map<string, ThriftDefinition>();
      for (const def of doc.definitions) {
        const before = byName.get(def.name);
        if (before !== undefined) throw at(def.loc, file, `${def.name} is already defined at line ${before.loc.line}`);
        byName.set(def.name, def);
      }
      this.names.set(file, byName);
    }
  }

  /** The definition `name` (as written in `file`) refers to. */
  private lookup(name: string, file: string, loc: SourceLocation | undefined): Named {
    const local = this.names.get(file)?.get(name);
    if (local !== undefined) return { def: local, file };
    const dot = name.indexOf(".");
    if (dot > 0) {
      const target = this.includes.get(`${file}\0${name.slice(0, dot)}`);
      const def = target === undefined ? undefined : this.names.get(target)?.get(name.slice(dot + 1));
      if (target !== undefined && def !== undefined) return { def, file: target };
      if (target === undefined) throw at(loc, file, `unknown name ${name}: ${file} includes no file named ${name.slice(0, dot)}.thrift`);
    }
    throw at(loc, file, `unknown name ${name}`);
  }

  resolve(t: ThriftType, file: string, seen: readonly string[] = []): ResolvedType {
    switch (t.kind) {
      case "base":
        return { kind: "base", name: t.name === "i8" ? "byte" : t.name };
      case "list":
      case "set":
        return { kind: t.kind, element: this.resolve(t.element, file, seen) };
      case "map":
        return { kind: "map", key: this.resolve(t.key, file, seen), value: this.resolve(t.value, file, seen) };
      case "named": {
        const { def, file: where } = this.lookup(t.name, file, t.loc);
        const key = `${where}:${def.name}`;
        if (def.kind === "typedef") {
          if (seen.includes(key)) throw at(t.loc, file, `typedef cycle: ${[...seen, key].join(" -> ")}`);
          return this.resolve(def.type, where, [...seen, key]);
        }
        if (def.kind === "struct" || def.kind === "union" || def.kind === "exception") return { kind: "struct", def, file: where };
        if (def.kind === "enum") return { kind: "enum", def, file: where };
        throw at(t.loc, file, `${t.name} is a ${def.kind}, not a type`);
      }
    }
  }

  service(name: string, file: string, loc: SourceLocation | undefined): { def: ThriftService; file: string } {
    const { def, file: where } = this.lookup(name, file, loc);
    if (def.kind !== "service") throw at(loc, file, `${name} is a ${def.kind}, not a service`);
    return { def, file: where };
  }

  /** Every check of the module comment, over every document. */
  check(): void {
    for (const [file, doc] of this.documents) {
      for (const def of doc.definitions) {
        switch (def.kind) {
          case "typedef":
            this.resolve(def.type, file);
            break;
          case "const":
            this.checkValue(def.value, this.resolve(def.type, file), file, `constant ${def.name}`);
            break;
          case "enum":
            checkEnum(def, file);
            break;
          case "struct":
          case "union":
          case "exception":
            this.checkFields(def.fields, file, `${def.kind} ${def.name}`);
            if (def.kind === "union") {
              const req = def.fields.find((f) => f.requiredness === "required");
              if (req !== undefined) throw at(req.loc, file, `union ${def.name}: field ${req.name} cannot be required (a union sets exactly one field)`);
            }
            break;
          case "service":
            this.checkService(def, file);
            break;
        }
      }
    }
  }

  private checkFields(fields: readonly ThriftField[], file: string, where: string): void {
    const ids = new Map<number, ThriftField>();
    const names = new Set<string>();
    for (const f of fields) {
      const other = ids.get(f.id);
      if (other !== undefined) throw at(f.loc, file, `${where}: field ${f.name} has id ${f.id}, already used by ${other.name}`);
      if (names.has(f.name)) throw at(f.loc, file, `${where}: field ${f.name} is declared twice`);
      ids.set(f.id, f);
      names.add(f.name);
      const type = this.resolve(f.type, file);
      if (f.defaultValue !== undefined) this.checkValue(f.defaultValue, type, file, `the default of ${where}.${f.name}`);
    }
  }

  private checkService(def: ThriftService, file: string): void {
    const chain: string[] = [`${file}:${def.name}`];
    for (let base = def.extends, baseFile = file, loc = def.extendsLoc; base !== undefined; ) {
      const found = this.service(base, baseFile, loc);
      const key = `${found.file}:${found.def.name}`;
      if (chain.includes(key)) throw at(def.extendsLoc, file, `service ${def.name} extends itself through ${chain.join(" -> ")}`);
      chain.push(key);
      ({ extends: base, extendsLoc: loc } = found.def);
      baseFile = found.file;
    }
    const names = new Set<string>();
    for (const fn of def.functions) {
      if (names.has(fn.name)) throw at(fn.loc, file, `service ${def.name}: function ${fn.name} is declared twice`);
      names.add(fn.name);
      const where = `${def.name}.${fn.name}`;
      this.checkFields(fn.params, file, where);
      this.checkFields(fn.throws, file, `${where} throws`);
      if (fn.returns !== undefined) this.resolve(fn.returns, file);
      for (const t of fn.throws) {
        const type = this.resolve(t.type, file);
        if (type.kind !== "struct" || type.def.kind !== "exception") throw at(t.loc, file, `${where} throws ${t.name}, whose type is not an exception`);
      }
      if (fn.oneway && (fn.returns !== undefined || fn.throws.length > 0)) {
        throw at(fn.loc, file, `${where} is oneway: it must return void and declare no exceptions (no reply is sent)`);
      }
    }
  }

  /** Checks that a constant value fits `type`; enum values may be named (`Color.RED`) or numbers. */
  private checkValue(v: ConstValue, type: ResolvedType, file: string, what: string): void {
    const fail = (detail: string): never => {
      throw at(v.loc, file, `${what}: ${detail}`);
    };
    if (v.kind === "identifier") {
      if (type.kind === "base" && type.name === "bool" && (v.name === "true" || v.name === "false")) return;
      const value = this.constantAt(v.name, file, v.loc, type);
      if (value === undefined) fail(`${v.name} is not a constant or an enum value of the field's type`);
      return;
    }
    switch (type.kind) {
      case "base":
        switch (type.name) {
          case "bool":
            if (v.kind !== "int" || (v.value !== 0n && v.value !== 1n)) fail("a bool is true, false, 0 or 1");
            return;
          case "byte":
          case "i8":
          case "i16":
          case "i32":
          case "i64": {
            if (v.kind !== "int") fail(`expected an integer for ${type.name}`);
            const bits = { byte: 8n, i8: 8n, i16: 16n, i32: 32n, i64: 64n }[type.name];
            const value = (v as { value: bigint }).value;
            if (value < -(2n ** (bits - 1n)) || value >= 2n ** (bits - 1n)) fail(`${value} does not fit in ${type.name}`);
            return;
          }
          case "double":
            if (v.kind !== "int" && v.kind !== "double") fail("expected a number for double");
            return;
          case "string":
          case "binary":
            if (v.kind !== "string") fail(`expected a string literal for ${type.name}`);
            return;
          case "uuid":
            if (v.kind !== "string" || !/^(\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/.test(v.value)) {
              fail("expected a UUID string (8-4-4-4-12 hex digits, braces allowed)");
            }
            return;
        }
        return;
      case "enum":
        if (v.kind !== "int" || !type.def.values.some((e) => BigInt(e.value) === v.value)) fail(`expected a value of enum ${type.def.name}`);
        return;
      case "list":
      case "set":
        if (v.kind === "map" && v.entries.length === 0) return; // `{}`: Apache Thrift takes it as empty
        if (v.kind !== "list") fail(`expected a list [...] for ${type.kind}`);
        for (const item of (v as { items: readonly ConstValue[] }).items) this.checkValue(item, type.element, file, what);
        return;
      case "map":
        if (v.kind !== "map") fail("expected a map {...}");
        for (const [k, val] of (v as { entries: readonly (readonly [ConstValue, ConstValue])[] }).entries) {
          this.checkValue(k, type.key, file, what);
          this.checkValue(val, type.value, file, what);
        }
        return;
      case "struct":
        if (v.kind !== "map") fail(`expected a map {...} of field names to values for ${type.def.name}`);
        for (const [k, val] of (v as { entries: readonly (readonly [ConstValue, ConstValue])[] }).entries) {
          if (k.kind !== "string") throw at(k.loc, file, `${what}: a field of ${type.def.name} is named by a string literal`);
          const field = type.def.fields.find((f) => f.name === k.value);
          if (field === undefined) throw at(k.loc, file, `${what}: ${type.def.name} has no field ${k.value}`);
          this.checkValue(val, this.resolve(field.type, type.file), file, what);
        }
        return;
    }
  }

  /**
   * What a name in a constant refers to: a value of the enum `type` (`Enum.VALUE`, and, as
   * Apache Thrift reads it, any `X.VALUE` whose last part names a value of that enum), or a
   * constant whose declared type resolves like `type`.
   */
  private constantAt(name: string, file: string, loc: SourceLocation, type: ResolvedType): true | undefined {
    const dot = name.lastIndexOf(".");
    if (type.kind === "enum" && dot > 0 && type.def.values.some((e) => e.name === name.slice(dot + 1))) return true;
    let named: Named;
    try {
      named = this.lookup(name, file, loc);
    } catch {
      return undefined;
    }
    if (named.def.kind !== "const") return undefined;
    return sameType(this.resolve(named.def.type, named.file), type) ? true : undefined;
  }
}

function sameType(a: ResolvedType, b: ResolvedType): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case "base":
      return a.name === (b as typeof a).name;
    case "list":
    case "set":
      return sameType(a.element, (b as typeof a).element);
    case "map":
      return sameType(a.key, (b as typeof a).key) && sameType(a.value, (b as typeof a).value);
    case "struct":
    case "enum":
      return a.def === (b as typeof a).def;
  }
}

/** Enum value names are unique; values may repeat (aliases), as Apache Thrift allows. */
function checkEnum(def: ThriftEnum, file: string): void {
  const names = new Set<string>();
  for (const v of def.values) {
    if (names.has(v.name)) throw at(v.loc, file, `enum ${def.name}: ${v.name} is declared twice`);
    names.add(v.name);
  }
}
