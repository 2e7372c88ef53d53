import { IdlError } from "./errors.js";
import {
  allEnums,
  allMessages,
  isInt64Type,
  type DefaultValue,
  type EnumModel,
  type FieldModel,
  type FieldType,
  type FileModel,
  type MessageModel,
  type ResolvedType,
  type ScalarType,
  type SourceLocation,
} from "./model.js";
import { parseBigIntLiteral, parseIntegerLiteral, unescapeBytes } from "./source-index.js";

type Sym =
  | { readonly kind: "message"; readonly decl: MessageModel; readonly file: FileModel }
  | { readonly kind: "enum"; readonly decl: EnumModel; readonly file: FileModel }
  | { readonly kind: "service" | "package"; readonly file: FileModel };

const MAX_FIELD_NUMBER = 536870911;

/**
 * Resolves every type reference of `files` (protobuf scoping: innermost scope outwards, a
 * leading dot for fully qualified names; only the file itself and what it imports, directly or
 * through `import public`, are visible), resolves defaults, and checks the rules protobufjs's
 * parser leaves to the compiler. Raises IdlError at the offending declaration.
 */
export function link(files: readonly FileModel[]): void {
  const table = new Map<string, Sym>();
  for (const file of files) define(table, file);
  for (const file of files) {
    const visible = visibleFiles(file);
    for (const msg of allMessages(file)) {
      for (const f of msg.fields) {
        f.type = resolveRef(table, f.type, msg.fullName, file, visible, "field");
        checkField(f);
      }
      checkMessage(msg);
    }
    for (const e of allEnums(file)) checkEnum(e);
    for (const s of file.services) {
      for (const m of s.methods) {
        m.input = resolveRef(table, m.input, s.fullName, file, visible, "method");
        m.output = resolveRef(table, m.output, s.fullName, file, visible, "method");
      }
    }
  }
}

function define(table: Map<string, Sym>, file: FileModel): void {
  const add = (name: string, sym: Sym, loc: SourceLocation | undefined): void => {
    const prev = table.get(name);
    if (prev !== undefined) {
      if (prev.kind === "package" && sym.kind === "package") return;
      const where = prev.file === file ? "" : ` in ${prev.file.name}`;
      throw IdlError.at(loc, file.name, `"${name}" is already defined${where}`);
    }
    table.set(name, sym);
  };
  if (file.package !== "") {
    const parts = file.package.split(".");
    for (let i = 1; i <= parts.length; i++) add(parts.slice(0, i).join("."), { kind: "package", file }, undefined);
  }
  for (const m of allMessages(file)) add(m.fullName, { kind: "message", decl: m, file }, m.loc);
  for (const e of allEnums(file)) add(e.fullName, { kind: "enum", decl: e, file }, e.loc);
  for (const s of file.services) add(s.fullName, { kind: "service", file }, s.loc);
}

/** The files whose symbols `file` may use: itself, its imports, and their public imports. */
function visibleFiles(file: FileModel): Set<FileModel> {
  const out = new Set<FileModel>([file]);
  const addPublic = (f: FileModel): void => {
    for (const imp of f.imports) {
      if (imp.kind === "public" && imp.file !== undefined && !out.has(imp.file)) {
        out.add(imp.file);
        addPublic(imp.file);
      }
    }
  };
  for (const imp of file.imports) {
    if (imp.file === undefined) continue;
    out.add(imp.file);
    addPublic(imp.file);
  }
  return out;
}

function resolveRef(
  table: Map<string, Sym>,
  t: FieldType,
  scope: string,
  file: FileModel,
  visible: Set<FileModel>,
  what: "field" | "method",
): FieldType {
  if (t.kind !== "unresolved") return t;
  const sym = lookup(table, t.name, scope);
  if (sym === undefined) throw IdlError.at(t.loc, file.name, `unknown type "${t.name}"`);
  if (sym.kind !== "message" && sym.kind !== "enum") {
    throw IdlError.at(t.loc, file.name, `"${t.name}" is a ${sym.kind}, not a message or enum type`);
  }
  if (!visible.has(sym.file)) {
    throw IdlError.at(
      t.loc,
      file.name,
      `"${t.name}" is defined in ${sym.file.name}, which is not imported by ${file.name}; add the import`,
    );
  }
  if (what === "method" && sym.kind !== "message") {
    throw IdlError.at(t.loc, file.name, `"${t.name}" is not a message type; methods take and return messages`);
  }
  return sym.kind === "message" ? { kind: "message", message: sym.decl } : { kind: "enum", enum: sym.decl };
}

/** protoc's lookup: the first component innermost-scope-first, then the rest inside it. */
function lookup(table: Map<string, Sym>, name: string, scope: string): Sym | undefined {
  if (name.startsWith(".")) return table.get(name.slice(1));
  const dot = name.indexOf(".");
  const first = dot < 0 ? name : name.slice(0, dot);
  let s = scope;
  for (;;) {
    const candidate = s === "" ? first : `${s}.${first}`;
    const sym = table.get(candidate);
    if (sym !== undefined) {
      if (dot < 0) {
        if (sym.kind === "message" || sym.kind === "enum") return sym;
      } else if (sym.kind === "message" || sym.kind === "package") {
        return table.get(s === "" ? name : `${s}.${name}`);
      }
    }
    if (s === "") return undefined;
    const cut = s.lastIndexOf(".");
    s = cut < 0 ? "" : s.slice(0, cut);
  }
}

function fail(loc: SourceLocation | undefined, file: FileModel, detail: string): never {
  throw IdlError.at(loc, file.name, detail);
}

const PACKABLE_NOT: ReadonlySet<ScalarType> = new Set(["string", "bytes"]);

function checkField(f: FieldModel): void {
  const msg = f.parent;
  const file = msg.file;
  const t = f.type as ResolvedType;
  if (f.number < 1 || f.number > MAX_FIELD_NUMBER) {
    fail(f.numberLoc ?? f.loc, file, `field number ${f.number} of ${f.name} is out of range (1 to ${MAX_FIELD_NUMBER})`);
  }
  if (f.number >= 19000 && f.number <= 19999) {
    fail(f.numberLoc ?? f.loc, file, `field numbers 19000 to 19999 are reserved for the protobuf implementation (${f.name} = ${f.number})`);
  }
  if (t.kind === "message" && f.presence === "implicit") f.presence = "explicit";
  if (f.packed && !(t.kind === "enum" || (t.kind === "scalar" && !PACKABLE_NOT.has(t.scalar)))) f.packed = false;
  if (f.delimited && t.kind !== "message") fail(f.loc, file, `group field ${f.name} must have a message type`);
  if (f.cardinality === "map" && f.mapKey !== undefined) {
    const k = f.mapKey;
    if (k === "float" || k === "double" || k === "bytes") fail(f.typeLoc ?? f.loc, file, `map key type ${k} is not allowed; keys are integers, bool or string`);
  }
  if (f.cardinality === "map" && t.kind === "enum" && t.enum.values[0]?.number !== 0) {
    fail(f.typeLoc ?? f.loc, file, `enum ${t.enum.fullName} is a map value type, so its first value must be zero`);
  }
  if (t.kind === "enum" && file.syntax === "proto3" && t.enum.closed) {
    fail(
      f.typeLoc ?? f.loc,
      file,
      `enum ${t.enum.fullName} is a proto2 (closed) enum and cannot be used in the proto3 message ${msg.fullName}`,
    );
  }
  if (f.defaultText !== undefined) {
    if (file.syntax === "proto3") fail(f.loc, file, `explicit default values are not allowed in proto3 (field ${f.name})`);
    if (f.cardinality !== "singular") fail(f.loc, file, `repeated field ${f.name} cannot have a default value`);
    if (t.kind === "message") fail(f.loc, file, `message field ${f.name} cannot have a default value`);
    f.default = parseDefault(f, t, f.defaultText);
  }
}

function checkMessage(msg: MessageModel): void {
  const file = msg.file;
  const byNumber = new Map<number, FieldModel>();
  const byName = new Map<string, FieldModel>();
  for (const f of msg.fields) {
    const dup = byNumber.get(f.number);
    if (dup !== undefined) fail(f.numberLoc ?? f.loc, file, `field number ${f.number} of ${f.name} is already used by ${dup.name} in ${msg.fullName}`);
    byNumber.set(f.number, f);
    if (byName.has(f.name)) fail(f.loc, file, `field ${f.name} is already defined in ${msg.fullName}`);
    byName.set(f.name, f);
    for (const r of msg.reservedRanges) {
      if (f.number >= r.from && f.number <= r.to) fail(f.numberLoc ?? f.loc, file, `field ${f.name} uses reserved number ${f.number} in ${msg.fullName}`);
    }
    for (const r of msg.reservedNames) {
      if (r.name === f.name) fail(f.loc, file, `field name ${f.name} is reserved in ${msg.fullName}`);
    }
  }
}

function checkEnum(e: EnumModel): void {
  const file = e.file;
  if (e.values.length === 0) fail(e.loc, file, `enum ${e.fullName} must have at least one value`);
  if (!e.closed && e.values[0]!.number !== 0) {
    fail(e.values[0]!.loc ?? e.loc, file, `the first value of the open (proto3) enum ${e.fullName} must be zero`);
  }
  const seen = new Map<number, string>();
  for (const v of e.values) {
    if (!Number.isInteger(v.number) || v.number < -2147483648 || v.number > 2147483647) {
      fail(v.loc, file, `enum value ${v.name} = ${v.number} is not an int32`);
    }
    const prev = seen.get(v.number);
    if (prev !== undefined && !e.allowAlias) {
      fail(v.loc, file, `${v.name} uses the same number ${v.number} as ${prev}; set "option allow_alias = true;" if intended`);
    }
    seen.set(v.number, v.name);
    for (const r of e.reservedRanges) {
      if (v.number >= r.from && v.number <= r.to) fail(v.loc, file, `enum value ${v.name} uses reserved number ${v.number}`);
    }
    for (const r of e.reservedNames) {
      if (r.name === v.name) fail(v.loc, file, `enum value name ${v.name} is reserved`);
    }
  }
}

const INT_RANGES: Partial<Record<ScalarType, [number, number]>> = {
  int32: [-2147483648, 2147483647],
  sint32: [-2147483648, 2147483647],
  sfixed32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  fixed32: [0, 4294967295],
};

/**
 * Parses a default as protoc's FieldDescriptorProto.default_value spells it (strings as text,
 * bytes C-escaped, numbers as literals, enum values by name), for the field's type.
 */
function parseDefault(f: FieldModel, t: ResolvedType, text: string): DefaultValue {
  const file = f.parent.file;
  const bad = (why: string): never => fail(f.loc, file, `invalid default value for ${f.name}: ${why}`);
  if (t.kind === "enum") {
    const v = t.enum.values.find((x) => x.name === text);
    if (v === undefined) bad(`${text} is not a value of enum ${t.enum.fullName}`);
    return v!;
  }
  if (t.kind !== "scalar") return bad("message fields have no default");
  const s = t.scalar;
  switch (s) {
    case "string":
      return text;
    case "bytes":
      return unescapeBytes(text);
    case "bool":
      if (text === "true") return true;
      if (text === "false") return false;
      return bad(`expected true or false, got ${text}`);
    case "float":
    case "double": {
      const v = parseFloatLiteral(text);
      if (v === undefined) return bad(`${text} is not a number`);
      return s === "float" ? Math.fround(v) : v;
    }
    default: {
      const neg = text.startsWith("-");
      const body = neg ? text.slice(1) : text;
      if (isInt64Type(s)) {
        const b = parseBigIntLiteral(body);
        if (b === undefined) return bad(`${text} is not an integer`);
        const v = neg ? -b! : b!;
        const unsigned = s === "uint64" || s === "fixed64";
        const [lo, hi] = unsigned ? [0n, 0xffffffffffffffffn] : [-0x8000000000000000n, 0x7fffffffffffffffn];
        if (v < lo || v > hi) bad(`${text} is out of range for ${s}`);
        return v;
      }
      const n = parseIntegerLiteral(body);
      if (n === undefined) return bad(`${text} is not an integer`);
      const v = neg ? -n! : n!;
      const [lo, hi] = INT_RANGES[s]!;
      if (v < lo || v > hi) bad(`${text} is out of range for ${s}`);
      return v === 0 ? 0 : v;
    }
  }
}

function parseFloatLiteral(text: string): number | undefined {
  const neg = text.startsWith("-");
  const body = (neg ? text.slice(1) : text).toLowerCase();
  let v: number | undefined;
  if (body === "inf" || body === "infinity") v = Infinity;
  else if (body === "nan") return NaN;
  else if (/^0x[0-9a-f]+$/.test(body) || /^0[0-7]+$/.test(body)) v = parseIntegerLiteral(body);
  else if (/^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?f?$/.test(body)) v = Number(body.replace(/f$/, ""));
  if (v === undefined) return undefined;
  return neg ? -v : v;
}
