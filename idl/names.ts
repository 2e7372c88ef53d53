import { allEnums, allMessages, type FileModel, type MessageModel } from "./model.js";

/**
 * Picks the TypeScript names of a file's declarations. The rules (also in codegen/README.md):
 *
 * - Types: nested names joined with `_` (`Outer.Inner` -> `Outer_Inner`). A type name that is a
 *   JavaScript/TypeScript reserved word, a JavaScript global (`Object`, `Array`, `Map`, ...), the
 *   `Partial` type generated code uses, or a local variable of the generated functions
 *   gets a `$` suffix (`Object$`). Names clashing within the file (`Foo.Bar` and `Foo_Bar`) get
 *   `$` suffixes in declaration order. Clashes with imported names (the runtime's `Reader`,
 *   another file's `User`) are resolved by the printer, which aliases the import instead.
 * - Fields: the protobuf JSON name (`duration_ms` -> `durationMs`); names that would break plain
 *   objects or classes (`__proto__`, `constructor`, `toString`, ..., `$unknown`) get a `$` suffix,
 *   as do names clashing within the message.
 * - Enum values keep their .proto names (with the same object-property escaping); method keys
 *   are lowerCamelCase (`GetFeed` -> `getFeed`).
 */
export function assignNames(files: readonly FileModel[]): void {
  for (const file of files) assignFileNames(file);
}

const RESERVED_WORDS = [
  // JavaScript
  "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do",
  "else", "enum", "export", "extends", "false", "finally", "for", "function", "if", "import", "in",
  "instanceof", "new", "null", "return", "super", "switch", "this", "throw", "true", "try",
  "typeof", "var", "void", "while", "with", "yield", "let", "static", "implements", "interface",
  "package", "private", "protected", "public", "await", "arguments", "eval", "async", "of",
  // TypeScript
  "any", "boolean", "never", "number", "object", "string", "symbol", "unknown", "undefined",
  "bigint", "type", "declare", "namespace", "module", "abstract", "as", "from", "get", "set", "is",
  "keyof", "readonly", "require", "global", "infer", "asserts", "satisfies", "accessor", "out",
  "override", "unique", "constructor",
];

const GLOBALS = [
  "Object", "Array", "String", "Number", "Boolean", "Error", "Date", "Map", "Set", "WeakMap",
  "WeakSet", "Promise", "Uint8Array", "Int8Array", "Uint16Array", "Int16Array", "Uint32Array",
  "Int32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array", "ArrayBuffer",
  "DataView", "BigInt", "Symbol", "JSON", "Math", "RegExp", "Function", "Infinity", "NaN",
  "globalThis", "Reflect", "Proxy", "Intl", "Buffer", "TextEncoder", "TextDecoder", "console",
  "process", "TypeError", "RangeError",
  // The TypeScript utility type generated code uses.
  "Partial",
];

// Identifiers the generated functions declare locally: a module-level name equal to one of them
// would be shadowed inside those functions.
const LOCALS = [
  "m", "w", "r", "k", "k2", "v", "u", "t", "s", "e", "n", "no", "p", "at", "tag", "key", "value",
  "saved", "depth", "into", "endTag", "out", "partial", "msg", "bytes", "buf", "start", "end",
  "has", "known", "prev",
];

const RESERVED_TYPE_NAMES: ReadonlySet<string> = new Set([...RESERVED_WORDS, ...GLOBALS, ...LOCALS]);

/**
 * Names a module-level declaration of generated code cannot take as they are: JavaScript and
 * TypeScript reserved words and the globals generated code uses or had better not shadow. The
 * Thrift emitter's list; .proto names also avoid the generated functions' locals.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([...RESERVED_WORDS, ...GLOBALS, "Pick"]);

/** Property names that break plain objects or classes when used as-is. */
const PROPERTY_ESCAPES: ReadonlySet<string> = new Set([
  "__proto__",
  "constructor",
  "toString",
  "toJSON",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "$unknown",
]);

/** Hands out names unique within one scope, appending `$` to a taken name until it is free. */
export class NameRegistry {
  private readonly taken = new Set<string>();

  constructor(reserved: Iterable<string> = []) {
    for (const n of reserved) this.taken.add(n);
  }

  /** Whether `name` is already taken. */
  has(name: string): boolean {
    return this.taken.has(name);
  }

  /** Takes `name`, or `name$`, `name$$`, ... when taken. */
  take(name: string): string {
    let n = name;
    while (this.taken.has(n)) n += "$";
    this.taken.add(n);
    return n;
  }
}

/** `name` with its first letter lower-cased. */
export function lowerFirst(name: string): string {
  return name.length === 0 ? name : name[0]!.toLowerCase() + name.slice(1);
}

/** The JSON-style camel case of a .proto name (`duration_ms` -> `durationMs`). */
export function camelCase(name: string): string {
  let out = "";
  let upper = false;
  for (const c of name) {
    if (c === "_") upper = true;
    else if (upper) {
      out += c.toUpperCase();
      upper = false;
    } else out += c;
  }
  return out;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A property name for `proto` (camel-cased, kept as declared if that is not an identifier). */
function propertyName(camel: string, proto: string): string {
  const n = IDENTIFIER.test(camel) ? camel : proto;
  return PROPERTY_ESCAPES.has(n) ? `${n}$` : n;
}

function typeName(m: { name: string; parent: MessageModel | undefined }): string {
  const parts: string[] = [m.name];
  for (let p = m.parent; p !== undefined; p = p.parent) parts.unshift(p.name);
  const joined = parts.join("_");
  return RESERVED_TYPE_NAMES.has(joined) ? `${joined}$` : joined;
}

function assignFileNames(file: FileModel): void {
  const registry = new NameRegistry();
  const messages = allMessages(file);
  // Types first, in declaration order (enums of a scope before its messages, as emitted).
  const order: ({ kind: "message"; m: MessageModel } | { kind: "enum"; e: ReturnType<typeof allEnums>[number] })[] = [];
  const walk = (enums: ReturnType<typeof allEnums>, msgs: readonly MessageModel[]): void => {
    for (const e of enums) order.push({ kind: "enum", e });
    for (const m of msgs) {
      order.push({ kind: "message", m });
      walk(m.enums, m.messages);
    }
  };
  walk(file.enums, file.messages);
  for (const item of order) {
    if (item.kind === "enum") item.e.tsName = registry.take(typeName(item.e));
    else item.m.tsName = registry.take(typeName(item.m));
  }
  for (const s of file.services) s.tsName = registry.take(RESERVED_TYPE_NAMES.has(s.name) ? `${s.name}$` : s.name);
  for (const m of messages) m.viewName = registry.take(`${m.tsName}View`);

  for (const m of messages) {
    const props = new NameRegistry();
    for (const f of m.fields) {
      if (f.oneof !== undefined) {
        const o = f.oneof;
        if (o.localName === "") {
          o.localName = props.take(propertyName(camelCase(o.name), o.name));
          const cases = new NameRegistry();
          // Members are `case` strings, not properties: camel case without escaping.
          for (const member of o.fields) {
            const camel = camelCase(member.name);
            member.localName = cases.take(IDENTIFIER.test(camel) ? camel : member.name);
          }
        }
        continue;
      }
      f.localName = props.take(propertyName(camelCase(f.name), f.name));
    }
  }
  for (const e of allEnums(file)) {
    const members = new NameRegistry();
    for (const v of e.values) v.localName = members.take(PROPERTY_ESCAPES.has(v.name) ? `${v.name}$` : v.name);
  }
  for (const s of file.services) {
    const keys = new NameRegistry();
    for (const m of s.methods) m.localName = keys.take(propertyName(lowerFirst(camelCase(m.name)), m.name));
  }
}
