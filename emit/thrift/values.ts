/**
 * How Thrift types and values are printed: the TypeScript type of a Thrift type (the value
 * mapping of runtime/codec/thrift/struct.ts), its codec schema, and constant values (consts and
 * defaults) as JavaScript expressions.
 */
import type { ConstValue, ThriftBaseType, ThriftConst, ThriftEnum, ThriftStruct, ThriftType } from "../../idl/thrift/ast.js";
import type { ResolvedType } from "../../idl/thrift/link.js";
import { softObject, type Printable } from "../printer.js";
import { propertyKey, qualifiedName, type Located, type ThriftFileContext } from "./context.js";

const BASE_TS: Readonly<Record<ThriftBaseType, string>> = {
  bool: "boolean",
  byte: "number",
  i8: "number",
  i16: "number",
  i32: "number",
  i64: "bigint",
  double: "number",
  string: "string",
  binary: "Uint8Array",
  uuid: "string",
};

/**
 * The TypeScript type of `t` as written in `file`: base types by the value mapping, lists and
 * sets as arrays, maps as `Map`, and named types by their generated names (a typedef keeps its
 * own name, imported from its file when it is another's).
 */
export function tsType(ctx: ThriftFileContext, t: ThriftType, file: string): Printable {
  switch (t.kind) {
    case "base":
      return BASE_TS[t.name];
    case "list":
    case "set":
      return [tsType(ctx, t.element, file), "[]"];
    case "map":
      return ["Map<", tsType(ctx, t.key, file), ", ", tsType(ctx, t.value, file), ">"];
    case "named":
      return ctx.ref(ctx.lookup(t.name, file), "type");
  }
}

/** The codec schema of a resolved type: `{ t: "i32" }`, `{ t: "struct", struct: () => Point.schema }`, ... */
export function schemaType(ctx: ThriftFileContext, t: ResolvedType): Printable {
  switch (t.kind) {
    case "base":
      return `{ t: "${t.name}" }`;
    case "enum":
      return `{ t: "enum", name: "${qualifiedName(t.def.name, t.file)}" }`;
    case "list":
    case "set":
      return [`{ t: "${t.kind}", elem: `, schemaType(ctx, t.element), " }"];
    case "map":
      return ['{ t: "map", key: ', schemaType(ctx, t.key), ", value: ", schemaType(ctx, t.value), " }"];
    case "struct":
      // A thunk: the struct may be declared further down, in another file, or be this one.
      return ['{ t: "struct", struct: () => ', ctx.codecRef({ def: t.def, file: t.file }), ".schema }"];
  }
}

/** What a name in a constant value means: a value of an enum, or another constant. */
type NamedValue = { readonly kind: "enum"; readonly def: ThriftEnum; readonly file: string; readonly value: string } | ({ readonly kind: "const" } & Located<ThriftConst>);

/**
 * The enum value or constant an identifier in a value of type `type` names, as the linker reads
 * it: `Enum.VALUE` (or any `X.VALUE` whose last part is a value of the enum), else a constant.
 */
function namedValue(ctx: ThriftFileContext, name: string, type: ResolvedType, file: string): NamedValue {
  const dot = name.lastIndexOf(".");
  if (type.kind === "enum" && dot > 0) {
    const member = name.slice(dot + 1);
    if (type.def.values.some((v) => v.name === member)) return { kind: "enum", def: type.def, file: type.file, value: member };
  }
  const found = ctx.lookup(name, file);
  if (found.def.kind !== "const") throw new Error(`internal: ${name} in ${file} is a ${found.def.kind}, not a constant`);
  return { kind: "const", def: found.def, file: found.file };
}

/**
 * A constant value of type `type`, written in `file`, as an expression: i64 a bigint literal,
 * binary a `Uint8Array` of the string's UTF-8 bytes, a uuid its canonical text, lists and sets
 * arrays, maps `new Map([...])`, structs and unions object literals of the fields given
 * (exceptions `new Class({...})`), enum values `Color.GREEN` (a number at run time), and other
 * constants by name.
 */
export function constValue(ctx: ThriftFileContext, v: ConstValue, type: ResolvedType, file: string): Printable {
  if (v.kind === "identifier") {
    if (v.name === "true" || v.name === "false") return v.name;
    const named = namedValue(ctx, v.name, type, file);
    if (named.kind === "enum") return [ctx.ref({ def: named.def, file: named.file }, "value"), ".", named.value];
    return ctx.ref(named, "value");
  }
  switch (type.kind) {
    case "base":
      return baseValue(v, type.name);
    case "enum":
      return String((v as { value: bigint }).value);
    case "list":
    case "set": {
      const items = v.kind === "list" ? v.items : [];
      return ["[", ...join(items.map((item) => constValue(ctx, item, type.element, file))), "]"];
    }
    case "map": {
      const entries = v.kind === "map" ? v.entries : [];
      if (entries.length === 0) return "new Map()";
      const pairs = entries.map(([k, val]) => ["[", constValue(ctx, k, type.key, file), ", ", constValue(ctx, val, type.value, file), "]"]);
      return ["new Map([", ...join(pairs), "])"];
    }
    case "struct":
      return structValue(ctx, v, type.def, type.file, file);
  }
}

/**
 * A struct constant: an object literal of the fields the value names (no defaults filled in); an
 * exception's is an instance of its class made from them.
 */
function structValue(ctx: ThriftFileContext, v: ConstValue, def: ThriftStruct, defFile: string, file: string): Printable {
  const entries = v.kind === "map" ? v.entries : [];
  const fields = softObject(
    entries.map(([k, val]) => {
      const field = def.fields.find((f) => f.name === (k as { value: string }).value)!;
      return [propertyKey(field.name), ": ", constValue(ctx, val, ctx.program.resolve(field.type, defFile), file)];
    }),
  );
  return def.kind === "exception" ? ["new ", ctx.ref({ def, file: defFile }, "value"), "(", fields, ")"] : fields;
}

function baseValue(v: ConstValue, name: ThriftBaseType): string {
  const n = v.kind === "int" || v.kind === "double" ? v.value : undefined;
  switch (name) {
    case "bool":
      return n === 1n ? "true" : "false";
    case "byte":
    case "i8":
    case "i16":
    case "i32":
      return String(n);
    case "i64":
      return `${n}n`;
    case "double": {
      const d = Number(n);
      return Object.is(d, -0) ? "-0" : String(d);
    }
    case "string":
      return JSON.stringify((v as { value: string }).value);
    case "binary":
      return `new Uint8Array([${[...Buffer.from((v as { value: string }).value, "utf8")].join(", ")}])`;
    case "uuid": {
      const hex = (v as { value: string }).value.replace(/[{}-]/g, "").toLowerCase();
      return JSON.stringify(`${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`);
    }
  }
}

/**
 * The constants, enums and exception classes of `file` itself that a value refers to: they must
 * be declared before a constant holding the value (a module evaluates its declarations in order).
 */
export function valueDependencies(ctx: ThriftFileContext, v: ConstValue, type: ResolvedType, file: string): Located[] {
  const out: Located[] = [];
  const walk = (value: ConstValue, t: ResolvedType): void => {
    if (value.kind === "identifier") {
      if (value.name === "true" || value.name === "false") return;
      const named = namedValue(ctx, value.name, t, file);
      out.push({ def: named.def, file: named.file });
      return;
    }
    if ((t.kind === "list" || t.kind === "set") && value.kind === "list") for (const item of value.items) walk(item, t.element);
    if (t.kind === "map" && value.kind === "map") {
      for (const [k, val] of value.entries) {
        walk(k, t.key);
        walk(val, t.value);
      }
    }
    if (t.kind === "struct" && value.kind === "map") {
      if (t.def.kind === "exception") out.push({ def: t.def, file: t.file }); // `new Class(...)`
      for (const [k, val] of value.entries) {
        const field = t.def.fields.find((f) => f.name === (k as { value: string }).value)!;
        walk(val, ctx.program.resolve(field.type, t.file));
      }
    }
  };
  walk(v, type);
  return out.filter((d) => d.file === file);
}

/** Items separated by `, `. */
function join(items: readonly Printable[]): Printable[] {
  return items.flatMap((item, i) => (i === 0 ? [item] : [", ", item]));
}
