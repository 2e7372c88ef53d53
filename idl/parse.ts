import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { IdlError } from "./errors.js";
import { link } from "./link.js";
import type {
  EnumModel,
  EnumValueModel,
  FieldModel,
  FieldType,
  FileModel,
  IdempotencyLevel,
  ImportModel,
  MessageModel,
  MethodModel,
  OneofModel,
  ReservedName,
  ReservedRange,
  ServiceModel,
  SourceLocation,
} from "./model.js";
import { isScalarType } from "./model.js";
import { assignNames, camelCase } from "./names.js";
import { SourceIndex, unescapeBytes, type IndexedMessage } from "./source-index.js";
import { WKT_FILES, WKT_MODULE } from "./wkt.js";

/** Where .proto files are read from. */
export interface LoadOptions {
  /** Import roots, searched in order (`-I`). Default: the current directory. */
  readonly includeDirs?: readonly string[];
  /**
   * In-memory files by import name, searched before the include directories (tests, tools that
   * hold sources in memory).
   */
  readonly sources?: Readonly<Record<string, string>>;
}

/**
 * Parses .proto files and everything they import, checks them and returns the models of the
 * named files (imports linked, names assigned). `files` are paths on disk (within an include
 * directory, which gives their import name) or import names of in-memory `sources`.
 * Raises IdlError (`file:line:column: message`) for anything wrong in the IDL.
 */
export function loadProtoFiles(files: readonly string[], options: LoadOptions = {}): FileModel[] {
  const loader = new Loader(options);
  const roots = files.map((f) => loader.load(loader.importNameOf(f), undefined, undefined));
  // Imports before importers, as protoc builds them (so a clash is reported in the later file).
  const all = loader.drain();
  link(all);
  assignNames(all);
  return roots;
}

/** The bundled well-known-type .proto files (idl/wkt), in the source or the built layout. */
function bundledWktDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, "wkt"), join(here, "..", "..", "idl", "wkt")]) {
    if (existsSync(join(candidate, "google", "protobuf", "timestamp.proto"))) return candidate;
  }
  throw new Error(`meridian: the bundled well-known types (idl/wkt) are missing next to ${here}`);
}

// protobufjs silently drops a field, enum value or type named `__proto__` (it would change an
// object's prototype); the parser sees this stand-in instead, and names are mapped back.
const PROTO_STANDIN = "__pr0t0__";
const unmangle = (name: string): string => name.split(PROTO_STANDIN).join("__proto__");

class Loader {
  readonly loaded = new Map<string, FileModel>();
  private readonly queue: FileModel[] = [];
  private readonly includeDirs: string[];
  private readonly sources: Readonly<Record<string, string>>;

  constructor(options: LoadOptions) {
    this.includeDirs = (options.includeDirs ?? ["."]).map((d) => resolve(d));
    this.sources = options.sources ?? {};
  }

  /** The import name of a file named on the command line. */
  importNameOf(file: string): string {
    if (this.sources[file] !== undefined) return file;
    const abs = resolve(file);
    if (!existsSync(abs)) throw new IdlError(file, 0, 0, `file not found: ${file}`);
    for (const dir of this.includeDirs) {
      const rel = relative(dir, abs);
      if (rel !== "" && !rel.startsWith("..") && !isAbsolute(rel)) return rel.split(sep).join("/");
    }
    throw new IdlError(
      file,
      0,
      0,
      `${file} is not inside any import directory (-I ${this.includeDirs.join(", ")}); add the directory that imports name it from`,
    );
  }

  private read(name: string): { path: string; source: string } | undefined {
    const mem = this.sources[name];
    if (mem !== undefined) return { path: name, source: mem };
    if (WKT_FILES.has(name)) {
      const path = join(bundledWktDir(), name);
      return { path, source: readFileSync(path, "utf8") };
    }
    for (const dir of this.includeDirs) {
      const path = join(dir, name);
      if (existsSync(path) && statSync(path).isFile()) return { path, source: readFileSync(path, "utf8") };
    }
    return undefined;
  }

  load(name: string, from: string | undefined, loc: SourceLocation | undefined): FileModel {
    const done = this.loaded.get(name);
    if (done !== undefined) return done;
    const found = this.read(name);
    if (found === undefined) {
      const where = this.includeDirs.length === 0 ? "" : ` in ${this.includeDirs.join(", ")}`;
      const hint = name.startsWith("google/protobuf/")
        ? " (add protoc's include directory, for example -I /usr/include)"
        : "";
      throw IdlError.at(loc, from ?? name, `import "${name}" was not found${where}${hint}`);
    }
    const file = parseFile(name, found.source);
    if (WKT_FILES.has(name)) file.moduleOverride = WKT_MODULE;
    this.loaded.set(name, file);
    this.queue.push(file);
    return file;
  }

  /**
   * Loads every import of every queued file, failing on cycles as protoc does. Returns all
   * files, each after the files it imports.
   */
  drain(): FileModel[] {
    const ordered: FileModel[] = [];
    while (this.queue.length > 0) {
      const file = this.queue.shift()!;
      for (const imp of file.imports) imp.file = this.load(imp.name, file.name, imp.loc);
    }
    const state = new Map<FileModel, "visiting" | "done">();
    const visit = (f: FileModel, stack: string[]): void => {
      const s = state.get(f);
      if (s === "done") return;
      if (s === "visiting") {
        const imp = f.imports[0];
        throw IdlError.at(imp?.loc, f.name, `import cycle: ${[...stack, f.name].join(" -> ")}`);
      }
      state.set(f, "visiting");
      for (const imp of f.imports) {
        if (state.get(imp.file!) === "visiting") {
          throw IdlError.at(imp.loc, f.name, `import cycle: ${[...stack, f.name, imp.file!.name].join(" -> ")}`);
        }
        visit(imp.file!, [...stack, f.name]);
      }
      state.set(f, "done");
      ordered.push(f);
    };
    for (const f of this.loaded.values()) visit(f, []);
    return ordered;
  }
}

/** Parses one .proto source into an unlinked FileModel. */
export function parseFile(name: string, source: string): FileModel {
  let parsed: protobuf.IParserResult;
  try {
    parsed = protobuf.parse(source.split("__proto__").join(PROTO_STANDIN), new protobuf.Root(), {
      keepCase: true,
      alternateCommentMode: true,
    });
  } catch (e) {
    throw locateParseError(name, source, e);
  }
  const index = SourceIndex.build(name, source);
  return new FileBuilder(name, index, parsed).build();
}

// ---------------------------------------------------------------------------------------------
// Errors raised by protobufjs carry a line at best; find the column (and, for its semantic
// errors, the line) from the source.

function locateParseError(file: string, source: string, e: unknown): IdlError {
  const message = e instanceof Error ? e.message : String(e);
  const lines = source.split("\n");
  // "illegal token 'x', ';' expected (line 3)", "illegal name 'x' (file, line 3)", "illegal string (line 3)"
  const m = /^(.*?)\s*\((?:[^()]*, )?line (\d+)\)$/.exec(message);
  if (m !== null) {
    const detail = unmangle(m[1]!);
    let line = Math.min(Number(m[2]), lines.length);
    const tok = /^illegal [a-z ]*'([^']*)'/.exec(detail)?.[1];
    if (tok === "null" && /end of input/.test(detail)) {
      return new IdlError(file, lines.length, (lines[lines.length - 1] ?? "").length + 1, "unexpected end of file");
    }
    let column = 1;
    if (/^illegal string$/.test(detail)) {
      const l = lines[line - 1] ?? "";
      const q = l.search(/["']/);
      return new IdlError(file, line, q < 0 ? firstNonSpace(l) : q + 1, "syntax error: unterminated string");
    }
    if (tok !== undefined && tok !== "") {
      // The token was read on this line or, when the parser had peeked ahead, an earlier one.
      for (let l = line; l >= 1; l--) {
        const c = findToken(lines[l - 1]!, unmangleSource(tok));
        if (c > 0) {
          line = l;
          column = c;
          break;
        }
      }
    } else {
      column = firstNonSpace(lines[line - 1] ?? "");
    }
    let text = describeIllegal(detail);
    if (/^illegal type '/.test(detail) && /map\s*</.test(lines[line - 1] ?? "")) {
      text = `invalid map key type '${tok}': keys are integer types, bool or string`;
    } else if (tok === "required" && /syntax\s*=\s*["']proto3["']/.test(source)) {
      text += " (proto3 has no required fields)";
    } else if (tok === "group" && /syntax\s*=\s*["']proto3["']/.test(source)) {
      text += " (proto3 has no groups)";
    }
    return new IdlError(file, line, column, text);
  }
  // Semantic errors raised while building the AST: locate them through the source index.
  let index: SourceIndex | undefined;
  try {
    index = SourceIndex.build(file, source);
  } catch {
    index = undefined;
  }
  const detail = unmangle(message);
  const loc = index === undefined ? undefined : locateSemantic(index, detail);
  return IdlError.at(loc, file, rephrase(detail));
}

function unmangleSource(tok: string): string {
  return tok === PROTO_STANDIN ? "__proto__" : tok;
}

function firstNonSpace(line: string): number {
  const i = line.search(/\S/);
  return i < 0 ? 1 : i + 1;
}

/** 1-based column of `tok` as a whole token on `line` outside comments, or 0. */
function findToken(line: string, tok: string): number {
  const code = line.replace(/\/\/.*$/, (c) => " ".repeat(c.length));
  const isWord = /^\w/.test(tok);
  let from = 0;
  for (;;) {
    const i = code.indexOf(tok, from);
    if (i < 0) return 0;
    const before = i === 0 ? "" : code[i - 1]!;
    const after = code[i + tok.length] ?? "";
    if (!isWord || (!/\w/.test(before) && !/\w/.test(after))) return i + 1;
    from = i + 1;
  }
}

function describeIllegal(detail: string): string {
  const expected = /^illegal token '([^']*)', '([^']*)' expected$/.exec(detail);
  if (expected !== null) return `syntax error: expected '${expected[2]}' but found '${expected[1]}'`;
  const m = /^illegal (.*?) '([^']*)'$/.exec(detail);
  if (m !== null) return `syntax error: unexpected ${m[1]} '${m[2]}'`;
  return `syntax error: ${detail}`;
}

function rephrase(detail: string): string {
  const scope = (kind: string, name: string): string =>
    kind === "Root" ? "at file level" : `in ${name.replace(/^\./, "")}`;
  let m = /^duplicate id (-?\d+) in (Type|Enum) (\S+)$/.exec(detail);
  if (m !== null) {
    return m[2] === "Type"
      ? `field number ${m[1]} is already used ${scope(m[2], m[3]!)}`
      : `enum number ${m[1]} is already used ${scope(m[2]!, m[3]!)}; set "option allow_alias = true;" to allow aliases`;
  }
  m = /^id (-?\d+) is reserved in (Type|Enum) (\S+)$/.exec(detail);
  if (m !== null) return `number ${m[1]} is reserved ${scope(m[2]!, m[3]!)}`;
  m = /^name '([^']+)' is reserved in (Type|Enum) (\S+)$/.exec(detail);
  if (m !== null) return `name ${m[1]} is reserved ${scope(m[2]!, m[3]!)}`;
  m = /^duplicate name '([^']+)' in (Type|Enum|Service|Namespace|Root)\s*(\S*)$/.exec(detail);
  if (m !== null) return `${m[1]} is already defined ${scope(m[2]!, m[3]!)}`;
  return detail;
}

function locateSemantic(index: SourceIndex, detail: string): SourceLocation | undefined {
  const pkg = index.package?.name ?? "";
  const pathOf = (full: string): string => {
    let p = full.startsWith(".") ? full.slice(1) : full;
    if (pkg !== "" && p.startsWith(pkg + ".")) p = p.slice(pkg.length + 1);
    return p;
  };
  let m = /^duplicate id (-?\d+) in (Type|Enum) (\S+)$/.exec(detail) ?? /^id (-?\d+) is reserved in (Type|Enum) (\S+)$/.exec(detail);
  if (m !== null) {
    const id = Number(m[1]);
    const path = pathOf(m[3]!);
    const list = m[2] === "Type" ? index.messages.get(path)?.fields : index.enums.get(path)?.values;
    const hit = list?.filter((f) => f.number === id).pop();
    return hit?.numberLoc ?? hit?.loc;
  }
  m = /^(?:duplicate name|name) '([^']+)'(?: is reserved)? in (Type|Enum|Service|Namespace|Root)\s*(\S*)$/.exec(detail);
  if (m !== null) {
    const name = m[1]!;
    const kind = m[2]!;
    const path = kind === "Root" ? "" : pathOf(m[3]!);
    if (kind === "Type") {
      const msg = index.messages.get(path);
      return lastNamed(msg, name, index, path);
    }
    if (kind === "Enum") return index.enums.get(path)?.values.filter((v) => v.name === name).pop()?.loc;
    if (kind === "Service") return index.services.get(path)?.methods.filter((v) => v.name === name).pop()?.loc;
    if (path === "" || path === pkg) return index.topLevel.filter((d) => d.name === name).pop()?.loc;
    return undefined;
  }
  return undefined;
}

function lastNamed(msg: IndexedMessage | undefined, name: string, index: SourceIndex, path: string): SourceLocation | undefined {
  if (msg === undefined) return undefined;
  const candidates: { loc: SourceLocation }[] = [
    ...msg.fields.filter((f) => f.name === name),
    ...msg.oneofs.filter((o) => o.name === name),
  ];
  const nested = index.messages.get(`${path}.${name}`) ?? index.enums.get(`${path}.${name}`);
  if (nested !== undefined) candidates.push(nested);
  candidates.sort((a, b) => a.loc.line - b.loc.line || a.loc.column - b.loc.column);
  return candidates.pop()?.loc;
}

// ---------------------------------------------------------------------------------------------
// protobufjs AST -> model.

type PbOptions = Record<string, unknown> | undefined;

class FileBuilder {
  private readonly file: FileModel;
  private readonly syntax: FileModel["syntax"];

  constructor(
    private readonly name: string,
    private readonly index: SourceIndex,
    private readonly parsed: protobuf.IParserResult,
  ) {
    const edition = index.edition;
    if (edition !== undefined) {
      throw IdlError.at(
        edition.loc,
        name,
        `editions (edition = "${edition.value}") are not supported yet; use syntax = "proto2" or "proto3"`,
      );
    }
    const syntax = index.syntax?.value ?? "proto2";
    if (syntax !== "proto2" && syntax !== "proto3") {
      throw IdlError.at(index.syntax?.loc, name, `unknown syntax "${syntax}"; expected "proto2" or "proto3"`);
    }
    this.syntax = syntax;
    const imports: ImportModel[] = index.imports.map((i) => ({ name: i.name, kind: i.kind, loc: i.loc, file: undefined }));
    this.file = {
      name,
      package: parsed.package ?? "",
      syntax,
      edition: undefined,
      imports,
      messages: [],
      enums: [],
      services: [],
      comments: index.fileComments,
      moduleOverride: undefined,
    };
  }

  build(): FileModel {
    let ns: protobuf.NamespaceBase = this.parsed.root;
    for (const part of this.file.package === "" ? [] : this.file.package.split(".")) {
      const next = ns.nested?.[part];
      if (!(next instanceof protobuf.Namespace)) return this.file;
      ns = next;
    }
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type) this.file.messages.push(this.message(obj, undefined, ""));
      else if (obj instanceof protobuf.Enum) this.file.enums.push(this.enumOf(obj, undefined, ""));
      else if (obj instanceof protobuf.Service) this.file.services.push(this.service(obj));
    }
    return this.file;
  }

  private message(t: protobuf.Type, parent: MessageModel | undefined, scope: string): MessageModel {
    const name = unmangle(t.name);
    const path = scope === "" ? name : `${scope}.${name}`;
    const info = this.index.messages.get(path);
    const opts = t.options as PbOptions;
    const msg: MessageModel = {
      kind: "message",
      file: this.file,
      name,
      fullName: this.fullName(path),
      comment: info?.comment,
      deprecated: opts?.["deprecated"] === true,
      loc: info?.loc,
      parent,
      fields: [],
      oneofs: [],
      messages: [],
      enums: [],
      reservedRanges: [],
      reservedNames: [],
      isGroup: (t as { group?: boolean }).group === true,
      tsName: "",
      viewName: "",
    };
    this.reserved(t.reserved, info?.reserved, msg.reservedRanges, msg.reservedNames);
    const oneofs = new Map<protobuf.OneOf, OneofModel>();
    for (const o of t.oneofsArray) {
      const members = o.fieldsArray;
      const synthetic = members.length === 1 && (members[0]!.options as PbOptions)?.["proto3_optional"] === true;
      if (synthetic) continue;
      const oname = unmangle(o.name);
      const oinfo = info?.oneofs.find((x) => x.name === oname);
      const model: OneofModel = { name: oname, localName: "", fields: [], comment: oinfo?.comment, loc: oinfo?.loc };
      oneofs.set(o, model);
      msg.oneofs.push(model);
    }
    for (const f of t.fieldsArray) {
      if (f.extend !== undefined || (f as { declaringField?: unknown }).declaringField != null) continue;
      const field = this.field(f, msg, info);
      if (f.partOf !== null && oneofs.has(f.partOf)) {
        const o = oneofs.get(f.partOf)!;
        field.oneof = o;
        o.fields.push(field);
      }
      msg.fields.push(field);
    }
    for (const n of t.nestedArray) {
      if (n instanceof protobuf.Type) msg.messages.push(this.message(n, msg, path));
      else if (n instanceof protobuf.Enum) msg.enums.push(this.enumOf(n, msg, path));
    }
    return msg;
  }

  private fullName(path: string): string {
    return this.file.package === "" ? path : `${this.file.package}.${path}`;
  }

  private field(f: protobuf.Field, parent: MessageModel, info: IndexedMessage | undefined): FieldModel {
    const opts = f.options as PbOptions;
    const group = isGroupField(f);
    const name = group ? unmangle(f.type).toLowerCase() : unmangle(f.name);
    const finfo = info?.fields.filter((x) => x.name === name).pop();
    const isMap = f instanceof protobuf.MapField;
    const repeated = f.rule === "repeated";
    const typeName = unmangle(f.type);
    const type: FieldType = isScalarType(typeName)
      ? { kind: "scalar", scalar: typeName }
      : { kind: "unresolved", name: typeName, loc: finfo?.typeLoc };
    const proto3Optional = opts?.["proto3_optional"] === true;
    const inOneof = f.partOf !== null && !proto3Optional;
    let presence: FieldModel["presence"];
    if (f.rule === "required") presence = "required";
    else if (this.syntax === "proto2" || proto3Optional || inOneof) presence = "explicit";
    else presence = "implicit"; // message-typed fields become explicit in link.ts
    const packedOpt = opts?.["packed"];
    const jstype = opts?.["jstype"];
    const jsonName = typeof opts?.["json_name"] === "string" ? unmangle(opts["json_name"]) : undefined;
    const defaultTokens = finfo?.defaultTokens;
    const hasDefault = opts !== undefined && "default" in opts;
    return {
      parent,
      name,
      jsonName: jsonName ?? camelCase(name),
      localName: "",
      number: f.id,
      cardinality: isMap ? "map" : repeated ? "repeated" : "singular",
      presence: isMap || repeated ? "explicit" : presence,
      type,
      mapKey: isMap ? ((f as protobuf.MapField).keyType as FieldModel["mapKey"]) : undefined,
      delimited: group,
      // proto3: packed unless [packed = false]; proto2: only with [packed = true]. link.ts keeps
      // it only for packable types.
      packed: repeated && (this.syntax === "proto3" ? packedOpt !== false : packedOpt === true),
      jstype: jstype === "JS_NUMBER" ? "number" : jstype === "JS_STRING" ? "string" : undefined,
      defaultText: hasDefault ? defaultText(defaultTokens ?? [String(opts["default"])], typeName) : undefined,
      default: undefined,
      utf8: this.syntax === "proto3" ? "strict" : "lenient",
      oneof: undefined,
      comment: finfo?.comment,
      deprecated: opts?.["deprecated"] === true,
      loc: finfo?.loc,
      typeLoc: finfo?.typeLoc,
      numberLoc: finfo?.numberLoc,
    };
  }

  private enumOf(e: protobuf.Enum, parent: MessageModel | undefined, scope: string): EnumModel {
    const name = unmangle(e.name);
    const path = scope === "" ? name : `${scope}.${name}`;
    const info = this.index.enums.get(path);
    const opts = e.options as PbOptions;
    const valuesOptions = (e as { valuesOptions?: Record<string, PbOptions> }).valuesOptions ?? {};
    const values: EnumValueModel[] = Object.entries(e.values).map(([vname, num]) => {
      const n = unmangle(vname);
      const vinfo = info?.values.filter((v) => v.name === n).pop();
      return {
        name: n,
        localName: "",
        number: num,
        comment: vinfo?.comment,
        deprecated: valuesOptions[vname]?.["deprecated"] === true,
        loc: vinfo?.loc,
      };
    });
    const model: EnumModel = {
      kind: "enum",
      file: this.file,
      name,
      fullName: this.fullName(path),
      comment: info?.comment,
      deprecated: opts?.["deprecated"] === true,
      loc: info?.loc,
      parent,
      values,
      closed: this.syntax === "proto2",
      allowAlias: opts?.["allow_alias"] === true,
      reservedRanges: [],
      reservedNames: [],
      tsName: "",
    };
    this.reserved(e.reserved, info?.reserved, model.reservedRanges, model.reservedNames);
    return model;
  }

  private reserved(
    pb: (number[] | string)[] | undefined,
    indexed: { loc: SourceLocation; from?: number; to?: number; name?: string }[] | undefined,
    ranges: ReservedRange[],
    names: ReservedName[],
  ): void {
    for (const r of pb ?? []) {
      if (typeof r === "string") {
        const n = unmangle(r);
        names.push({ name: n, loc: indexed?.find((x) => x.name === n)?.loc });
      } else {
        ranges.push({ from: r[0]!, to: r[1]!, loc: indexed?.find((x) => x.from === r[0])?.loc });
      }
    }
  }

  private service(s: protobuf.Service): ServiceModel {
    const name = unmangle(s.name);
    const info = this.index.services.get(name);
    const opts = s.options as PbOptions;
    const methods: MethodModel[] = s.methodsArray.map((m) => {
      const mname = unmangle(m.name);
      const minfo = info?.methods.filter((x) => x.name === mname).pop();
      const mopts = m.options as PbOptions;
      const level = mopts?.["idempotency_level"];
      const kind = m.requestStream
        ? m.responseStream
          ? "bidi_streaming"
          : "client_streaming"
        : m.responseStream
          ? "server_streaming"
          : "unary";
      return {
        name: mname,
        localName: "",
        input: { kind: "unresolved", name: unmangle(m.requestType), loc: minfo?.inputLoc },
        output: { kind: "unresolved", name: unmangle(m.responseType), loc: minfo?.outputLoc },
        kind,
        idempotency: idempotencyOf(level, minfo?.loc, this.name),
        comment: minfo?.comment,
        deprecated: mopts?.["deprecated"] === true,
        loc: minfo?.loc,
        inputLoc: minfo?.inputLoc,
        outputLoc: minfo?.outputLoc,
      };
    });
    return {
      kind: "service",
      file: this.file,
      name,
      fullName: this.fullName(name),
      comment: info?.comment,
      deprecated: opts?.["deprecated"] === true,
      loc: info?.loc,
      methods,
      tsName: "",
    };
  }
}

function idempotencyOf(level: unknown, loc: SourceLocation | undefined, file: string): IdempotencyLevel {
  if (level === undefined) return "IDEMPOTENCY_UNKNOWN";
  if (level === "IDEMPOTENCY_UNKNOWN" || level === "NO_SIDE_EFFECTS" || level === "IDEMPOTENT") return level;
  throw IdlError.at(
    loc,
    file,
    `invalid idempotency_level ${String(level)}; expected IDEMPOTENCY_UNKNOWN, NO_SIDE_EFFECTS or IDEMPOTENT`,
  );
}

/** Whether `f` is a proto2 group field (its type is a nested type protobufjs marked as a group). */
function isGroupField(f: protobuf.Field): boolean {
  const nested = (f.parent as protobuf.Type | null)?.nested?.[f.type];
  return nested instanceof protobuf.Type && (nested as { group?: boolean }).group === true;
}

/**
 * A default's raw tokens in the form protoc's descriptors use (so both front ends feed link.ts
 * the same text): string literals concatenated and unescaped (UTF-8 text for `string`,
 * C-escaped for `bytes`), anything else joined (`-` and `5` -> `-5`).
 */
function defaultText(tokens: readonly string[], type: string): string {
  if (tokens.length === 0 || (tokens[0]![0] !== '"' && tokens[0]![0] !== "'")) return tokens.join("");
  const parts = tokens.map((t) => unescapeBytes(t.slice(1, -1)));
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return type === "bytes" ? cEscape(bytes) : new TextDecoder().decode(bytes);
}

/** C-escapes bytes as protoc does for bytes defaults (printable ASCII kept, octal otherwise). */
export function cEscape(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    if (b === 0x5c) out += "\\\\";
    else if (b === 0x22) out += '\\"';
    else if (b === 0x27) out += "\\'";
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += "\\" + b.toString(8).padStart(3, "0");
  }
  return out;
}
