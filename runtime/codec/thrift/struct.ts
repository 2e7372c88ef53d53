/**
 * The schema-driven Thrift struct codec: encodes and decodes plain values of structs, unions
 * and exceptions by their schema, over either protocol. Unknown fields and fields of an
 * unexpected wire type are skipped (as Apache Thrift does); a missing required field, a union
 * with other than one field set, and every kind of malformed input are typed errors.
 *
 * Values: bool boolean; byte, i16, i32, enums number; i64 bigint; double number; string string;
 * binary Uint8Array (a view into the input when decoded); uuid the 8-4-4-4-12 hex string; list
 * and set arrays; map Map; struct, union and exception plain objects keyed by field name, unset
 * fields absent.
 */
import { DEFAULT_DEPTH_LIMIT } from "../reader.js";
import { DecodeError, EncodeError } from "../errors.js";
import { TType, type FieldHeader, type ThriftReader, type ThriftWriter } from "./protocol.js";

/** A field's type as the codec needs it; struct types are thunks so that schemas may recurse. */
export type ThriftTypeSchema =
  | { readonly t: "bool" | "byte" | "i16" | "i32" | "i64" | "double" | "string" | "binary" | "uuid" }
  | { readonly t: "enum"; readonly name: string }
  | { readonly t: "list" | "set"; readonly elem: ThriftTypeSchema }
  | { readonly t: "map"; readonly key: ThriftTypeSchema; readonly value: ThriftTypeSchema }
  | { readonly t: "struct"; readonly struct: () => ThriftStructSchema };

/** One field of a struct schema. */
export interface ThriftFieldSchema {
  readonly id: number;
  readonly name: string;
  readonly type: ThriftTypeSchema;
  readonly requiredness: "required" | "optional" | "default";
}

/** A struct, union or exception. */
export interface ThriftStructSchema {
  /** The qualified name, for errors (`feed.Video`). */
  readonly name: string;
  readonly kind: "struct" | "union" | "exception";
  readonly fields: readonly ThriftFieldSchema[];
  /** Makes the empty value a decode fills in: an instance of an exception's class; a plain object when absent. */
  readonly make?: () => object;
}

/** A struct's value: field name to value, unset fields absent. */
export type ThriftStructValue = { [field: string]: unknown };

const WIRE: Readonly<Record<ThriftTypeSchema["t"], TType>> = {
  bool: TType.BOOL,
  byte: TType.BYTE,
  i16: TType.I16,
  i32: TType.I32,
  enum: TType.I32,
  i64: TType.I64,
  double: TType.DOUBLE,
  string: TType.STRING,
  binary: TType.STRING,
  uuid: TType.UUID,
  list: TType.LIST,
  set: TType.SET,
  map: TType.MAP,
  struct: TType.STRUCT,
};

/** The wire type of a schema type. */
export function wireType(t: ThriftTypeSchema): TType {
  return WIRE[t.t];
}

/**
 * Writes `value` as the struct `schema` (field headers, values, stop). Throws EncodeError. Like
 * decoding, encoding runs a function compiled from the schema on first use (compileEncoder).
 */
export function encodeStruct(tw: ThriftWriter, schema: ThriftStructSchema, value: ThriftStructValue, depth = 0): void {
  structEncoder(schema)(tw, value, depth);
}

/** A compiled struct encoder: writes `value` as the struct at nesting `depth`. */
type StructEncoder = (tw: ThriftWriter, value: unknown, depth: number) => void;

const encoders = new WeakMap<ThriftStructSchema, StructEncoder>();

function structEncoder(schema: ThriftStructSchema): StructEncoder {
  return compiledOnce(encoders, schema, compileEncoder);
}

/** `compile(schema)` the first time a schema is asked for; the same function every later time. */
function compiledOnce<F>(cache: WeakMap<ThriftStructSchema, F>, schema: ThriftStructSchema, compile: (schema: ThriftStructSchema) => F): F {
  let f = cache.get(schema);
  if (f === undefined) {
    f = compile(schema);
    cache.set(schema, f);
  }
  return f;
}

/** Field ids are printed into compiled code as numbers: a schema whose ids are not 16-bit integers is refused. */
function checkIds(schema: ThriftStructSchema): void {
  for (const f of schema.fields) {
    if (!Number.isInteger(f.id) || f.id < -32768 || f.id > 32767) throw new TypeError(`${schema.name}.${f.name}: field id ${String(f.id)} is not a 16-bit integer`);
  }
}

/** What compiled encoders call. */
const ENCODE_HELPERS = {
  EncodeError,
  LIMIT: DEFAULT_DEPTH_LIMIT,
  describe,
  num,
  uuidBytes,
  structEncoder,
  /** An exception is an Error: its `message` is inherited ("") until set, and inherited means unset. */
  own: (v: object, key: string): unknown => (Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined),
  /** A field's error gets the struct and field in front of its message, once. */
  within: (e: unknown, type: string, field: string): unknown =>
    e instanceof EncodeError && !e.message.startsWith(type) ? new EncodeError(`${type}.${field}: ${e.message}`) : e,
};

/**
 * Compiles an encoder for `schema`: each field read by its fixed name (a load the engine keeps
 * monomorphic) and written with the protocol calls its type needs, with the checks and errors of
 * the schema (a value of the wrong JavaScript type, an integer out of range, a required field
 * unset, a union with other than one field set). Names reach the source only through JSON.stringify.
 */
function compileEncoder(schema: ThriftStructSchema): StructEncoder {
  checkIds(schema);
  const env: unknown[] = [];
  const ref = (v: unknown): string => `env[${env.push(v) - 1}]`;
  const fns: string[] = [];
  const name = JSON.stringify(schema.name);
  const fail = (what: string, e: string): string => `throw new h.EncodeError(${JSON.stringify(`expected ${what}, got `)} + h.describe(${e}));`;
  /** Statements that write the value `e` (a variable) of type `t` at nesting `d`. */
  const write = (t: ThriftTypeSchema, e: string, d: string): string => {
    switch (t.t) {
      case "bool":
        return `if (typeof ${e} !== "boolean") ${fail("a boolean", e)} tw.bool(${e});`;
      case "byte":
      case "i16":
      case "i32":
        return `tw.${t.t}(h.num(${e}));`;
      case "enum":
        return `tw.i32(h.num(${e}));`;
      case "i64":
        return `if (typeof ${e} !== "bigint") ${fail("a bigint for i64", e)} tw.i64(${e});`;
      case "double":
        return `if (typeof ${e} !== "number") ${fail("a number", e)} tw.double(${e});`;
      case "string":
        return `if (typeof ${e} !== "string") ${fail("a string", e)} tw.string(${e});`;
      case "binary":
        return `if (!(${e} instanceof Uint8Array)) ${fail("a Uint8Array", e)} tw.binary(${e});`;
      case "uuid":
        return `tw.uuid(h.uuidBytes(${e}));`;
      case "struct": {
        const thunk = ref(t.struct);
        const k = fns.push("") - 1;
        fns[k] = `let s${k};`;
        return `(s${k} ??= h.structEncoder(${thunk}()))(tw, ${e}, ${d} + 1);`;
      }
      case "list":
      case "set": {
        const k = fns.push("") - 1; // the slot first: the element's own functions come after it
        fns[k] = `function c${k}(tw, a, depth) {
  if (!Array.isArray(a)) ${fail(`an array for ${t.t}`, "a")}
  tw.listBegin(${WIRE[t.elem.t]}, a.length);
  for (let i = 0; i < a.length; i++) {
    const y = a[i];
    ${write(t.elem, "y", "depth + 1")}
  }
}`;
        return `c${k}(tw, ${e}, ${d});`;
      }
      case "map": {
        const k = fns.push("") - 1;
        fns[k] = `function c${k}(tw, m, depth) {
  if (!(m instanceof Map)) ${fail("a Map", "m")}
  tw.mapBegin(${WIRE[t.key.t]}, ${WIRE[t.value.t]}, m.size);
  for (const [mk, mv] of m) {
    ${write(t.key, "mk", "depth + 1")}
    ${write(t.value, "mv", "depth + 1")}
  }
}`;
        return `c${k}(tw, ${e}, ${d});`;
      }
    }
  };
  const own = schema.kind === "exception";
  const fields = schema.fields.map((f) => {
    const key = JSON.stringify(f.name);
    const body =
      f.type.t === "bool"
        ? `if (typeof x !== "boolean") ${fail("a boolean", "x")} tw.boolField(${f.id}, x);`
        : `tw.fieldBegin(${WIRE[f.type.t]}, ${f.id}); ${write(f.type, "x", "depth")}`;
    const unset = f.requiredness === "required" ? `throw new h.EncodeError(${JSON.stringify(`${schema.name}.${f.name} is required`)});` : "";
    return `  x = ${own ? `h.own(v, ${key})` : `v[${key}]`};
  if (x === undefined || x === null) {
    ${unset}
  } else {
    set++;
    try {
      ${body}
    } catch (e) {
      throw h.within(e, ${name}, ${key});
    }
  }`;
  });
  const source = `"use strict";
${fns.join("\n")}
return function encode(tw, v, depth) {
  if (depth > h.LIMIT) throw new h.EncodeError(${name} + ": nested deeper than " + h.LIMIT + " levels");
  if (typeof v !== "object" || v === null) throw new h.EncodeError(${name} + ": expected an object, got " + h.describe(v));
  tw.structBegin();
  let set = 0;
  let x;
${fields.join("\n")}
${schema.kind === "union" ? `  if (set !== 1) throw new h.EncodeError(${name} + " is a union: exactly one field must be set, not " + set);` : ""}
  tw.fieldStop();
  tw.structEnd();
};`;
  return new Function("env", "h", source)(env, ENCODE_HELPERS) as StructEncoder;
}

/**
 * Reads a struct `schema` (up to its stop). Throws DecodeError. The schema is compiled into a
 * decoder on first use (see compileDecoder) and the decoder is reused for every later value.
 */
export function decodeStruct(tr: ThriftReader, schema: ThriftStructSchema, depth = 0): ThriftStructValue {
  return structDecoder(schema)(tr, depth);
}

/** A compiled struct decoder: reads one struct at nesting `depth`. */
type StructDecoder = (tr: ThriftReader, depth: number) => ThriftStructValue;

const decoders = new WeakMap<ThriftStructSchema, StructDecoder>();

function structDecoder(schema: ThriftStructSchema): StructDecoder {
  return compiledOnce(decoders, schema, compileDecoder);
}

/** What compiled decoders call: errors and the parts not worth inlining. */
const DECODE_HELPERS = {
  DecodeError,
  LIMIT: DEFAULT_DEPTH_LIMIT,
  skipValue,
  uuidString,
  structDecoder,
  /** A field's error gets the struct and field in its path; other errors pass through. */
  within: (e: unknown, type: string, field: string | undefined): unknown => (e instanceof DecodeError ? e.within(type, field) : e),
};

/**
 * Compiles a decoder for `schema`: a function whose switch on the field id reads each known
 * field with the protocol call its type needs and stores it under a fixed property name, so the
 * engine sees the same object shape every time (an interpreter's `out[name] = value` with names
 * that change from field to field defeats that). Behaviour is the schema's exactly: unknown ids
 * and unexpected wire types skipped, the same DecodeErrors with the same paths, depth counted as
 * the nesting of values. Names and strings reach the source only through JSON.stringify.
 */
function compileDecoder(schema: ThriftStructSchema): StructDecoder {
  checkIds(schema);
  const env: unknown[] = [];
  const ref = (v: unknown): string => `env[${env.push(v) - 1}]`;
  const fns: string[] = [];
  const name = JSON.stringify(schema.name);
  /** The expression that reads a value of type `t` at nesting `d` (an expression). */
  const read = (t: ThriftTypeSchema, d: string, field: boolean): string => {
    switch (t.t) {
      case "bool":
        return field ? "tr.boolField()" : "tr.bool()";
      case "byte":
        return "tr.byte()";
      case "i16":
        return "tr.i16()";
      case "i32":
      case "enum":
        return "tr.i32()";
      case "i64":
        return "tr.i64()";
      case "double":
        return "tr.double()";
      case "string":
        return "tr.string()";
      case "binary":
        return "tr.binary()";
      case "uuid":
        return "h.uuidString(tr.uuid())";
      case "struct": {
        const thunk = ref(t.struct);
        const k = fns.push("") - 1;
        fns[k] = `let s${k};`;
        return `(s${k} ??= h.structDecoder(${thunk}()))(tr, ${d} + 1)`;
      }
      case "list":
      case "set": {
        const k = fns.push("") - 1; // the slot first: the element's own functions come after it
        const want = WIRE[t.elem.t];
        fns[k] = `function c${k}(tr, depth) {
  const at = tr.r.pos;
  const { elem, size } = tr.listBegin();
  if (size > 0 && elem !== ${want}) throw new h.DecodeError("WRONG_WIRE_TYPE", at, \`${t.t} of type \${elem}, expected ${want}\`);
  const a = new Array(size);
  let i = 0;
  try {
    for (; i < size; i++) a[i] = ${read(t.elem, "depth + 1", false)};
  } catch (e) {
    throw h.within(e, "", "[" + i + "]");
  }
  return a;
}`;
        return `c${k}(tr, ${d})`;
      }
      case "map": {
        const k = fns.push("") - 1;
        const wk = WIRE[t.key.t];
        const wv = WIRE[t.value.t];
        fns[k] = `function c${k}(tr, depth) {
  const at = tr.r.pos;
  const { key, value, size } = tr.mapBegin();
  if (size > 0 && (key !== ${wk} || value !== ${wv})) throw new h.DecodeError("WRONG_WIRE_TYPE", at, \`map<\${key},\${value}>, expected map<${wk},${wv}>\`);
  const m = new Map();
  for (let i = 0; i < size; i++) m.set(${read(t.key, "depth + 1", false)}, ${read(t.value, "depth + 1", false)});
  return m;
}`;
        return `c${k}(tr, ${d})`;
      }
    }
  };
  const cases = schema.fields.map((f) => {
    const key = JSON.stringify(f.name);
    return `      case ${f.id}:
        if (hd.type !== ${WIRE[f.type.t]}) break;
        try {
          out[${key}] = ${read(f.type, "depth", true)};
        } catch (e) {
          throw h.within(e, ${name}, ${key});
        }
        set++;
        continue;`;
  });
  const required = schema.fields
    .filter((f) => f.requiredness === "required")
    .map((f) => `  if (out[${JSON.stringify(f.name)}] === undefined) throw new h.DecodeError("MISSING_REQUIRED", tr.r.pos, ${JSON.stringify(`required field ${f.name} is missing`)}).within(${name}, undefined);`);
  const make = schema.make === undefined ? "{}" : `${ref(schema.make)}()`;
  const source = `"use strict";
${fns.join("\n")}
return function decode(tr, depth) {
  if (depth > h.LIMIT) throw new h.DecodeError("DEPTH_EXCEEDED", tr.r.pos, "nested deeper than " + h.LIMIT + " levels");
  const out = ${make};
  const hd = { type: 0, id: 0 };
  let set = 0;
  tr.structBegin();
  for (;;) {
    tr.fieldBegin(hd);
    if (hd.type === 0) break;
    switch (hd.id) {
${cases.join("\n")}
    }
    h.skipValue(tr, hd.type, depth + 1, true);
  }
  tr.structEnd();
${required.join("\n")}
${schema.kind === "union" ? `  if (set > 1) throw new h.DecodeError("INVALID_TAG", tr.r.pos, "a union has " + set + " fields set").within(${name}, undefined);` : ""}
  return out;
};`;
  return new Function("env", "h", source)(env, DECODE_HELPERS) as StructDecoder;
}

/** Skips a value of wire type `type` (an unknown field), checking it is well formed. */
export function skipValue(tr: ThriftReader, type: TType, depth: number, isField = false): void {
  if (depth > DEFAULT_DEPTH_LIMIT) throw new DecodeError("DEPTH_EXCEEDED", tr.r.pos, `nested deeper than ${DEFAULT_DEPTH_LIMIT} levels`);
  switch (type) {
    case TType.BOOL:
      if (isField) tr.boolField();
      else tr.bool();
      return;
    case TType.BYTE:
      tr.byte();
      return;
    case TType.I16:
      tr.i16();
      return;
    case TType.I32:
      tr.i32();
      return;
    case TType.I64:
      tr.i64();
      return;
    case TType.DOUBLE:
      tr.double();
      return;
    case TType.STRING:
      tr.binary();
      return;
    case TType.UUID:
      tr.uuid();
      return;
    case TType.STRUCT: {
      const h: FieldHeader = { type: TType.STOP, id: 0 };
      tr.structBegin();
      for (;;) {
        tr.fieldBegin(h);
        if (h.type === TType.STOP) break;
        skipValue(tr, h.type, depth + 1, true);
      }
      tr.structEnd();
      return;
    }
    case TType.LIST:
    case TType.SET: {
      const { elem, size } = tr.listBegin();
      for (let i = 0; i < size; i++) skipValue(tr, elem, depth + 1);
      return;
    }
    case TType.MAP: {
      const { key, value, size } = tr.mapBegin();
      for (let i = 0; i < size; i++) {
        skipValue(tr, key, depth + 1);
        skipValue(tr, value, depth + 1);
      }
      return;
    }
    default:
      throw new DecodeError("INVALID_WIRE_TYPE", tr.r.pos, `unknown Thrift type ${type}`);
  }
}

function num(v: unknown): number {
  if (typeof v !== "number") throw new EncodeError(`expected a number, got ${describe(v)}`);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "a Uint8Array";
  return typeof v === "object" ? `an object (${v.constructor?.name ?? "no prototype"})` : `${typeof v} ${String(v)}`;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** The canonical text of 16 uuid bytes: 8-4-4-4-12 lower-case hex digits. */
export function uuidString(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
    s += HEX[b[i]!];
  }
  return s;
}

/** The 16 bytes of a uuid given as text (dashes and braces optional) or as bytes. */
export function uuidBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v !== "string") throw new EncodeError(`expected a uuid string, got ${describe(v)}`);
  const hex = v.replace(/^\{(.*)\}$/, "$1").replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new EncodeError(`"${v}" is not a uuid (32 hex digits, dashes optional)`);
  return Uint8Array.from(Buffer.from(hex, "hex"));
}
