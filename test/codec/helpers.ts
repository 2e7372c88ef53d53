/**
 * Shared helpers of the codec tests: a reference wire builder (independent of the runtime's
 * Writer), the protobufjs reflection of test/protos, the registry of generated codecs, fast-check
 * arbitraries that produce the same message in Meridian's shape and in protobufjs's shape, and the
 * normalizers that make both comparable.
 */
import { existsSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import fc from "fast-check";
import protobuf from "protobufjs";
import { DecodeError, type AnyMessageCodec, type DecodeErrorCode } from "meridian-rpc/runtime";

// ---------------------------------------------------------------------------------------------
// Reference wire builder: the bytes a conformant encoder produces, built without the runtime.

/** Wire types by name. */
export const WT = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

/** A piece of wire data: bytes, an array of byte values, or nested pieces. */
export type Piece = Uint8Array | readonly number[] | readonly Piece[];

/** Concatenates pieces into one byte array. */
export function bytes(...pieces: Piece[]): Uint8Array {
  const out: number[] = [];
  const add = (p: Piece): void => {
    if (p instanceof Uint8Array) for (const b of p) out.push(b);
    else for (const x of p) typeof x === "number" ? out.push(x) : add(x);
  };
  pieces.forEach(add);
  return Uint8Array.from(out);
}

/** The varint of `v` taken as a 64-bit two's complement value (negative numbers: ten bytes). */
export function varint(v: bigint | number): number[] {
  let u = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  while (u > 127n) {
    out.push(Number(u & 127n) | 128);
    u >>= 7n;
  }
  out.push(Number(u));
  return out;
}

/** A varint padded to `size` bytes with continuation bits (non-canonical, still valid if <= 10). */
export function overlongVarint(v: bigint | number, size: number): number[] {
  const out = varint(v);
  while (out.length < size) {
    out[out.length - 1]! |= 128;
    out.push(0);
  }
  return out;
}

/** Zigzag encoding of a signed 64-bit value. */
export function zigzag(v: bigint | number): bigint {
  const b = BigInt(v);
  return BigInt.asUintN(64, (b << 1n) ^ (b >> 63n));
}

/** A tag: field number and wire type. */
export function tag(no: number, wireType: number): number[] {
  return varint(BigInt(no) * 8n + BigInt(wireType));
}

/** Little-endian 32 bits of `v` (signed or unsigned). */
export function fixed32(v: number): number[] {
  const u = v >>> 0;
  return [u & 255, (u >>> 8) & 255, (u >>> 16) & 255, u >>> 24];
}

/** Little-endian 64 bits of `v` (signed or unsigned). */
export function fixed64(v: bigint | number): number[] {
  let u = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  for (let i = 0; i < 8; i++, u >>= 8n) out.push(Number(u & 255n));
  return out;
}

/** IEEE 754 single precision, little-endian. */
export function float32(v: number): number[] {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, v, true);
  return [...b];
}

/** IEEE 754 double precision, little-endian. */
export function float64(v: number): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, v, true);
  return [...b];
}

/** UTF-8 of a string (lone surrogates become U+FFFD, as every encoder does). */
export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Whole fields: tag and value. */
export const field = {
  varint: (no: number, v: bigint | number | boolean): number[] => [...tag(no, WT.VARINT), ...varint(typeof v === "boolean" ? Number(v) : v)],
  sint: (no: number, v: bigint | number): number[] => [...tag(no, WT.VARINT), ...varint(zigzag(v))],
  fixed32: (no: number, v: number): number[] => [...tag(no, WT.I32), ...fixed32(v)],
  fixed64: (no: number, v: bigint | number): number[] => [...tag(no, WT.I64), ...fixed64(v)],
  float: (no: number, v: number): number[] => [...tag(no, WT.I32), ...float32(v)],
  double: (no: number, v: number): number[] => [...tag(no, WT.I64), ...float64(v)],
  /** A length-delimited field; a string body is written as UTF-8. */
  len: (no: number, ...body: (Piece | string)[]): number[] => {
    const b = bytes(...body.map((p) => (typeof p === "string" ? utf8(p) : p)));
    return [...tag(no, WT.LEN), ...varint(b.length), ...b];
  },
  group: (no: number, ...body: Piece[]): number[] => [...tag(no, WT.SGROUP), ...bytes(...body), ...tag(no, WT.EGROUP)],
};

/** Lower-case hex of bytes, for readable assertions. */
export function hex(b: Uint8Array | readonly number[]): string {
  return Buffer.from(b instanceof Uint8Array ? b : Uint8Array.from(b)).toString("hex");
}

/** Bytes from hex; spaces are ignored. */
export function unhex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Runs `f` and returns the DecodeError it raises; fails the test if it raises nothing else. */
export function decodeError(f: () => unknown): DecodeError {
  try {
    f();
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw new Error(`expected a DecodeError, got ${String(e)}`, { cause: e });
  }
  throw new Error("expected a DecodeError, but nothing was raised");
}

/** The fields of a DecodeError that tests assert on. */
export function errorFacts(e: DecodeError): { code: DecodeErrorCode; offset: number; path: string } {
  return { code: e.code, offset: e.offset, path: e.fieldPath() };
}

/** True when `e` is a DecodeError with a known code and a numeric, in-range offset. */
export function isWellFormedDecodeError(e: unknown, inputLength: number): e is DecodeError {
  return (
    e instanceof DecodeError &&
    DECODE_ERROR_CODES.includes(e.code) &&
    Number.isInteger(e.offset) &&
    e.offset >= 0 &&
    e.offset <= inputLength
  );
}

/** Every DecodeError code. */
export const DECODE_ERROR_CODES: readonly DecodeErrorCode[] = [
  "TRUNCATED",
  "VARINT_TOO_LONG",
  "INVALID_TAG",
  "INVALID_WIRE_TYPE",
  "WRONG_WIRE_TYPE",
  "LENGTH_OUT_OF_RANGE",
  "INVALID_GROUP",
  "DEPTH_EXCEEDED",
  "INVALID_UTF8",
  "MISSING_REQUIRED",
];

// ---------------------------------------------------------------------------------------------
// The schema: protobufjs reflection of test/protos, and the generated codecs.

const here = dirname(fileURLToPath(import.meta.url));

/** test/protos: the .proto files of the conformance tests. */
export const PROTO_DIR = join(here, "..", "protos");
/** Where the generated fixtures live: int64 as bigint, and `--int64 number`. */
export const GEN_DIRS = { bigint: join(here, "gen"), number: join(here, "gen-number") } as const;
/** The well-known types, generated once into the runtime (imported as "meridian-rpc/wkt"). */
export const WKT_DIR = join(here, "..", "..", "runtime", "wkt");

/** How a generated variant represents 64-bit integers (besides `[jstype = JS_NUMBER]` fields). */
export type Int64Mode = keyof typeof GEN_DIRS;

/** Every .proto file under `dir`, relative to it, sorted. */
export function listFiles(dir: string, ext: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(ext)) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

let schema: protobuf.Root | undefined;

/**
 * The protobufjs reflection of every file in test/protos, with field names as declared
 * (`keepCase`) and unknown fields kept by its decoder (so they can be compared).
 */
export function loadSchema(): protobuf.Root {
  if (schema !== undefined) return schema;
  protobuf.Reader.discardUnknown = false;
  const root = new protobuf.Root();
  root.loadSync(listFiles(PROTO_DIR, ".proto").map((f) => join(PROTO_DIR, f)), { keepCase: true });
  root.resolveAll();
  return (schema = root);
}

/** Every message type declared in `root` (nested ones included), by full name without the dot. */
export function allMessageTypes(root: protobuf.Root): protobuf.Type[] {
  const out: protobuf.Type[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const n of ns.nestedArray) {
      if (n instanceof protobuf.Type) out.push(n);
      if (n instanceof protobuf.Namespace || n instanceof protobuf.Type) walk(n);
    }
  };
  walk(root);
  return out.sort((a, b) => typeName(a).localeCompare(typeName(b)));
}

/** The fully qualified protobuf name without the leading dot: `conformance.Order.LineItem`. */
export function typeName(t: protobuf.ReflectionObject): string {
  return t.fullName.replace(/^\./, "");
}

/** protoc's JSON name of a field: underscores dropped, the letter after one upper-cased. */
export function jsonName(protoName: string): string {
  let out = "";
  let upper = false;
  for (const c of protoName) {
    if (c === "_") upper = true;
    else {
      out += upper ? c.toUpperCase() : c;
      upper = false;
    }
  }
  return out;
}

/** Property names that would break plain objects: the generator appends `$` (idl/names.ts). */
const ESCAPED_PROPERTIES = new Set(["__proto__", "constructor", "toString", "toJSON", "valueOf", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable", "toLocaleString", "$unknown"]);

/** The TypeScript property of a field or oneof: its JSON name, `$`-suffixed if it would clash. */
export function propName(protoName: string): string {
  const n = jsonName(protoName);
  return ESCAPED_PROPERTIES.has(n) ? `${n}$` : n;
}

/** Registry of generated codecs by protobuf type name. */
export type CodecRegistry = ReadonlyMap<string, AnyMessageCodec>;

const registries = new Map<string, Promise<CodecRegistry>>();

/**
 * Imports every generated module under `dir`, and the well-known types of the runtime, and
 * indexes the codecs they export by typeName.
 */
export function loadCodecs(dir: string): Promise<CodecRegistry> {
  let p = registries.get(dir);
  if (p === undefined) {
    p = (async () => {
      const out = new Map<string, AnyMessageCodec>();
      const files = listFiles(dir, ".ts").map((f) => join(dir, f));
      if (existsSync(WKT_DIR)) files.push(...listFiles(WKT_DIR, ".ts").filter((f) => !f.endsWith(".test.ts")).map((f) => join(WKT_DIR, f)));
      for (const file of files) {
        const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
        for (const value of Object.values(mod)) {
          if (isCodec(value) && !out.has(value.typeName)) out.set(value.typeName, value);
        }
      }
      return out;
    })();
    registries.set(dir, p);
  }
  return p;
}

function isCodec(v: unknown): v is AnyMessageCodec {
  return typeof v === "object" && v !== null && typeof (v as AnyMessageCodec).typeName === "string" && typeof (v as AnyMessageCodec).decode === "function";
}

/** The codec of `type` in `registry`; fails loudly when the generator did not emit it. */
export function codecOf(registry: CodecRegistry, type: protobuf.Type | string): AnyMessageCodec {
  const name = typeof type === "string" ? type : typeName(type);
  const c = registry.get(name);
  if (c === undefined) throw new Error(`no generated codec for ${name}`);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Field facts, as the generated code sees them.

const INT64_TYPES = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);
const UNSIGNED_64 = new Set(["uint64", "fixed64"]);
/** The statics of long.js that protobufjs's typings leave out. */
interface LongStatics {
  fromValue(v: protobuf.Long | number | string): protobuf.Long;
  fromString(s: string, unsigned?: boolean): protobuf.Long;
  fromBits(low: number, high: number, unsigned?: boolean): protobuf.Long;
}
const Long = protobuf.util.Long as unknown as LongStatics;

/** Whether `f` is one of the int64 family. */
export function isInt64(type: string): boolean {
  return INT64_TYPES.has(type);
}

/**
 * Whether a 64-bit field is a number in the Meridian message: `--int64 number` or
 * `[jstype = JS_NUMBER]`. Well-known types are generated once, into runtime/wkt, with bigint.
 */
export function int64AsNumber(f: protobuf.Field, mode: Int64Mode): boolean {
  if (f.parent !== null && isWellKnown(f.parent)) return false;
  return mode === "number" || (f.options as Record<string, unknown> | undefined)?.jstype === "JS_NUMBER";
}

/** Whether a type is one of the well-known types Meridian ships in runtime/wkt. */
export function isWellKnown(t: protobuf.ReflectionObject): boolean {
  return typeName(t).startsWith("google.protobuf.");
}

/** The real oneof of a field (proto3 `optional` fields are synthetic oneofs, not real ones). */
export function realOneof(f: protobuf.Field): protobuf.OneOf | undefined {
  const o = f.partOf;
  if (o === null || o === undefined) return undefined;
  return isSyntheticOneof(o) ? undefined : o;
}

function isSyntheticOneof(o: protobuf.OneOf): boolean {
  const only = o.fieldsArray[0];
  return o.fieldsArray.length === 1 && (only?.options as Record<string, unknown> | undefined)?.proto3_optional === true;
}

/** The real oneofs of a type. */
export function realOneofs(t: protobuf.Type): protobuf.OneOf[] {
  return t.oneofsArray.filter((o) => !isSyntheticOneof(o));
}

/** Whether a field is written only when set (`x?: T`) rather than when non-default. */
export function hasExplicitPresence(f: protobuf.Field): boolean {
  return Boolean(f.hasPresence) && !f.required;
}

/** Whether a field's enum is closed (proto2). */
export function isClosedEnum(e: protobuf.Enum): boolean {
  return (e as unknown as { _features?: { enum_type?: string } })._features?.enum_type === "CLOSED";
}

/** Map field facts (protobufjs keeps them on the field). */
function mapKeyType(f: protobuf.Field): string | undefined {
  return f instanceof protobuf.MapField ? f.keyType : undefined;
}

/** Whether a proto2 field declares `[default = ...]`. */
export function hasDeclaredDefault(f: protobuf.Field): boolean {
  return (f.options as Record<string, unknown> | undefined)?.default !== undefined;
}

/**
 * The default of a singular scalar or enum field in the Meridian message representation: the
 * declared default of a proto2 field, otherwise the zero value.
 */
export function defaultOf(f: protobuf.Field, mode: Int64Mode): unknown {
  if (f.resolvedType instanceof protobuf.Enum) return typeof f.typeDefault === "number" ? f.typeDefault : 0;
  if (isInt64(f.type)) {
    const v = BigInt(Long.fromValue(f.typeDefault as protobuf.Long).toString());
    return int64AsNumber(f, mode) ? Number(v) : v;
  }
  if (f.type === "bytes") {
    // protobufjs stores a bytes default as the UTF-8 of its string form; protoc's is the string's
    // code units as bytes (`"\377"` is the byte 0xff).
    const declared = (f.options as Record<string, unknown> | undefined)?.default;
    if (typeof declared !== "string") return new Uint8Array(0);
    return Uint8Array.from(declared, (c) => {
      const code = c.charCodeAt(0);
      if (code > 255) throw new Error(`bytes default of ${f.fullName} has a non-byte character`);
      return code;
    });
  }
  return f.typeDefault;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries: one message in both representations.

/** The same message as a Meridian value and as a protobufjs value. */
export interface Sample {
  readonly meridian: Record<string, unknown>;
  readonly pbjs: Record<string, unknown>;
}

/** Options of the message arbitraries. */
export interface SampleOptions {
  readonly mode: Int64Mode;
  /** Message nesting below the top message; message fields deeper than this stay unset. */
  readonly maxDepth: number;
  /** Whether to add unknown fields of every wire type. */
  readonly unknownFields: boolean;
}

interface Pair {
  readonly m: unknown;
  readonly p: unknown;
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const SAFE = 2n ** 53n - 1n;

/** Edge values mixed into the integer arbitraries, beyond fast-check's own bias. */
function edgy<T>(arb: fc.Arbitrary<T>, edges: readonly T[]): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: arb, weight: 4 }, { arbitrary: fc.constantFrom(...edges), weight: 1 });
}

const doubleArb = edgy(fc.double(), [0, -0, Number.NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MIN_VALUE, 2.2250738585072014e-308, Number.MAX_VALUE]);
const floatArb = edgy(fc.float(), [0, -0, Number.NaN, Infinity, -Infinity, 1.401298464324817e-45, 1.1754942106924411e-38, 3.4028234663852886e38]);
const int32Arb = edgy(fc.integer(), [0, -1, 1, 127, 128, -(2 ** 31), 2 ** 31 - 1]);
const uint32Arb = edgy(fc.integer({ min: 0, max: 0xffffffff }), [0, 127, 128, 16383, 16384, 2 ** 31, 0xffffffff]);

/** Strings: well-formed UTF-16 over the full Unicode range, sometimes long. */
export const stringArb = fc.oneof(
  { arbitrary: fc.string({ unit: "binary", maxLength: 20 }), weight: 6 },
  { arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 20 }), weight: 2 },
  { arbitrary: fc.string({ unit: "binary", minLength: 40, maxLength: 300 }), weight: 1 },
  { arbitrary: fc.constantFrom("", "__proto__", "constructor", "\u0000", "\uFFFD", "😀".repeat(64), "é".repeat(70)), weight: 1 },
);

const bytesArb = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 16 }), weight: 6 },
  { arbitrary: fc.uint8Array({ minLength: 100, maxLength: 400 }), weight: 1 },
);

function int64Arb(type: string, asNumber: boolean): fc.Arbitrary<Pair> {
  const unsigned = UNSIGNED_64.has(type);
  const min = asNumber ? (unsigned ? 0n : -SAFE) : unsigned ? 0n : I64_MIN;
  const max = asNumber ? SAFE : unsigned ? U64_MAX : I64_MAX;
  const edges = [0n, 1n, min, max, 2n ** 32n - 1n, 2n ** 32n, unsigned ? 2n ** 31n : -1n].filter((v) => v >= min && v <= max);
  return edgy(fc.bigInt(min, max), edges).map((v) => ({
    m: asNumber ? Number(v) : v,
    p: Long.fromString(v.toString(), unsigned),
  }));
}

function scalarArb(type: string, asNumber: boolean): fc.Arbitrary<Pair> {
  const same = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<Pair> => a.map((v) => ({ m: v, p: v }));
  switch (type) {
    case "double":
      return same(doubleArb);
    case "float":
      return same(floatArb);
    case "int32":
    case "sint32":
    case "sfixed32":
      return same(int32Arb);
    case "uint32":
    case "fixed32":
      return same(uint32Arb);
    case "bool":
      return same(fc.boolean());
    case "string":
      return same(stringArb);
    case "bytes":
      return same(bytesArb);
    default:
      if (isInt64(type)) return int64Arb(type, asNumber);
      throw new Error(`unknown scalar type ${type}`);
  }
}

function enumArb(e: protobuf.Enum): fc.Arbitrary<Pair> {
  const declared = fc.constantFrom(...Object.values(e.values));
  // An open enum keeps numbers it does not declare; a closed one would move them to unknown
  // fields, which the targeted tests cover.
  const arb = isClosedEnum(e) ? declared : fc.oneof({ arbitrary: declared, weight: 3 }, { arbitrary: int32Arb, weight: 1 });
  return arb.map((v) => ({ m: v, p: v }));
}

/** Whether a value is the zero value of an implicit-presence field (and so not written). */
function isZero(v: unknown): boolean {
  if (typeof v === "number") return Object.is(v, 0);
  if (typeof v === "bigint") return v === 0n;
  if (typeof v === "string") return v === "";
  if (typeof v === "boolean") return !v;
  if (v instanceof Uint8Array) return v.length === 0;
  return false;
}

/** Map keys: the decimal (or "true"/"false") string both representations use. */
function mapKeyArb(keyType: string, f: protobuf.Field, mode: Int64Mode): fc.Arbitrary<string> {
  if (keyType === "bool") return fc.boolean().map(String);
  if (keyType === "string") return stringArb;
  return scalarArb(keyType, int64AsNumber(f, mode) && isInt64(keyType)).map((pair) => String(pair.m));
}

/** Defines `key` as an own property even when it is `__proto__`. */
function put(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** An arbitrary producing one message of `type` in both representations. */
export function sampleArb(type: protobuf.Type, opts: SampleOptions): fc.Arbitrary<Sample> {
  const cache = new Map<string, fc.Arbitrary<Pair>>();
  return messageArb(type, 0, opts, cache).map((p) => ({ meridian: p.m as Record<string, unknown>, pbjs: p.p as Record<string, unknown> }));
}

function messageArb(type: protobuf.Type, depth: number, opts: SampleOptions, cache: Map<string, fc.Arbitrary<Pair>>): fc.Arbitrary<Pair> {
  const key = `${type.fullName}@${depth}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of type.fieldsArray) {
    if (realOneof(f) !== undefined) continue;
    parts[f.name] = fieldArb(f, depth, opts, cache);
  }
  for (const o of realOneofs(type)) {
    const members = o.fieldsArray.map((f) => valueArb(f, depth, opts, cache).map((v) => ({ f, v })));
    const usable = members.filter((_, i) => canGenerate(o.fieldsArray[i]!, depth, opts));
    parts[`oneof:${o.name}`] = usable.length === 0 ? fc.constant(undefined) : fc.option(fc.oneof(...usable), { freq: 3 });
  }
  if (opts.unknownFields) parts["$unknown"] = fc.option(unknownFieldsArb(type), { freq: 4 });

  const arb = fc.record(parts).map((r) => {
    const m: Record<string, unknown> = {};
    const p: Record<string, unknown> = {};
    for (const f of type.fieldsArray) {
      if (realOneof(f) !== undefined) continue;
      const v = r[f.name] as Pair | undefined | "default";
      if (v === undefined) continue;
      const jn = propName(f.name);
      if (v === "default") {
        m[jn] = defaultOfShape(f, opts.mode);
        continue;
      }
      m[jn] = v.m;
      if (!(hasImplicitPresence(f) && isZero(v.m)) && !isEmptyCollection(v.p)) p[f.name] = v.p;
    }
    for (const o of realOneofs(type)) {
      const c = r[`oneof:${o.name}`] as { f: protobuf.Field; v: Pair } | undefined | null;
      if (c === undefined || c === null) continue;
      m[propName(o.name)] = { case: jsonName(c.f.name), value: c.v.m };
      p[c.f.name] = c.v.p;
    }
    const unknown = r["$unknown"] as Uint8Array[] | null | undefined;
    if (unknown !== undefined && unknown !== null && unknown.length > 0) {
      m["$unknown"] = unknown;
      p["$unknowns"] = unknown;
    }
    return { m, p };
  });
  cache.set(key, arb);
  return arb;
}

function hasImplicitPresence(f: protobuf.Field): boolean {
  return !f.repeated && !f.map && !f.hasPresence && !(f.resolvedType instanceof protobuf.Type);
}

function isEmptyCollection(v: unknown): boolean {
  if (Array.isArray(v)) return v.length === 0;
  return false;
}

/** What an unset field holds in a Meridian message made by `create()`. */
function defaultOfShape(f: protobuf.Field, mode: Int64Mode): unknown {
  if (f.map) return {};
  if (f.repeated) return [];
  return defaultOf(f, mode);
}

/** Whether a message-typed field can get a value at this depth (it must, if required). */
function canGenerate(f: protobuf.Field, depth: number, opts: SampleOptions): boolean {
  return !(f.resolvedType instanceof protobuf.Type) || depth < opts.maxDepth;
}

/**
 * A field outside a oneof: `undefined` (absent: explicit presence, or an unset message),
 * "default" (implicit presence at its zero value, or an empty repeated field or map), or a value.
 */
function fieldArb(f: protobuf.Field, depth: number, opts: SampleOptions, cache: Map<string, fc.Arbitrary<Pair>>): fc.Arbitrary<Pair | undefined | "default"> {
  const isMessage = f.resolvedType instanceof protobuf.Type;
  if (f.map) {
    if (isMessage && depth >= opts.maxDepth) return fc.constant("default");
    const keyType = mapKeyType(f)!;
    const entries = fc.array(fc.tuple(mapKeyArb(keyType, f, opts.mode), valueArb(f, depth, opts, cache)), { maxLength: isMessage ? 3 : 6 });
    return fc.option(
      entries.map((list) => {
        const m: Record<string, unknown> = {};
        const p: Record<string, unknown> = {};
        for (const [k, v] of list) {
          put(m, k, v.m);
          put(p, k, v.p);
        }
        return { m, p };
      }),
      { nil: "default" as const, freq: 3 },
    );
  }
  if (f.repeated) {
    if (isMessage && depth >= opts.maxDepth) return fc.constant("default");
    const elem = valueArb(f, depth, opts, cache);
    const list = isMessage
      ? fc.array(elem, { maxLength: 3 })
      : fc.oneof({ arbitrary: fc.array(elem, { maxLength: 8 }), weight: 9 }, { arbitrary: fc.array(elem, { minLength: 100, maxLength: 400 }), weight: 1 });
    return fc.option(
      list.map((xs) => ({ m: xs.map((x) => x.m), p: xs.map((x) => x.p) })),
      { nil: "default" as const, freq: 3 },
    );
  }
  if (f.required) return valueArb(f, depth, opts, cache);
  if (isMessage) {
    if (depth >= opts.maxDepth) return fc.constant(undefined);
    return fc.option(valueArb(f, depth, opts, cache), { nil: undefined, freq: 2 });
  }
  if (hasExplicitPresence(f)) return fc.option(valueArb(f, depth, opts, cache), { nil: undefined, freq: 3 });
  return fc.option(valueArb(f, depth, opts, cache), { nil: "default" as const, freq: 3 });
}

/** One value of the field's type (for a map, of its value type). */
function valueArb(f: protobuf.Field, depth: number, opts: SampleOptions, cache: Map<string, fc.Arbitrary<Pair>>): fc.Arbitrary<Pair> {
  const t = f.resolvedType;
  if (t instanceof protobuf.Enum) return enumArb(t);
  if (t instanceof protobuf.Type) {
    // Lazily: recursive types refer to themselves one level deeper.
    return fc.constant(null).chain(() => messageArb(t, depth + 1, opts, cache));
  }
  return scalarArb(f.type, isInt64(f.type) && int64AsNumber(f, opts.mode));
}

/** Unknown fields of every wire type, at numbers `type` does not declare. */
function unknownFieldsArb(type: protobuf.Type): fc.Arbitrary<Uint8Array[]> {
  const declared = new Set(type.fieldsArray.map((f) => f.id));
  const numbers = [999, 1000, 4095, 65535, 100000, 536870000].filter((n) => !declared.has(n));
  const no = fc.constantFrom(...numbers);
  const kinds = [
    fc.tuple(no, fc.bigInt(0n, U64_MAX)).map(([n, v]) => bytes(field.varint(n, v))),
    fc.tuple(no, fc.bigInt(0n, U64_MAX)).map(([n, v]) => bytes(field.fixed64(n, v))),
    fc.tuple(no, fc.uint8Array({ maxLength: 12 })).map(([n, v]) => bytes(field.len(n, v))),
    fc.tuple(no, fc.integer({ min: 0, max: 0xffffffff })).map(([n, v]) => bytes(field.fixed32(n, v))),
  ];
  // protobufjs 8 cannot skip a group in a message without fields (it compares the end tag with
  // the whole start tag, not with its field number), so those messages get no unknown groups.
  if (type.fieldsArray.length > 0) {
    kinds.push(fc.tuple(no, fc.integer({ min: 0, max: 1000 })).map(([n, v]) => bytes(field.group(n, field.varint(1, v), field.group(2, field.len(3, "x"))))));
  }
  return fc.array(fc.oneof(...kinds), { minLength: 1, maxLength: 4 });
}

// ---------------------------------------------------------------------------------------------
// Normalizers: comparable forms of both representations.

/** Bytes in normalized values: a tagged hex string, so Buffer and Uint8Array compare equal. */
function normBytes(b: Uint8Array): { bytes: string } {
  return { bytes: hex(b) };
}

/**
 * A comparable form of a Meridian value: bytes as `{ bytes: hex }`, undefined properties dropped,
 * `$unknown` kept unless `dropUnknown`.
 */
export function normMeridian(v: unknown, dropUnknown = false): unknown {
  if (v instanceof Uint8Array) return normBytes(v);
  if (Array.isArray(v)) return v.map((x) => normMeridian(x, dropUnknown));
  if (typeof v === "object" && v !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined || (dropUnknown && k === "$unknown")) continue;
      put(out, k, normMeridian(x, dropUnknown));
    }
    return out;
  }
  return v;
}

function normLong(v: unknown, unsigned: boolean): bigint {
  if (typeof v === "number" || typeof v === "string") return BigInt(Long.fromValue(v).toString()) & (unsigned ? U64_MAX : -1n);
  const l = v as protobuf.Long;
  return BigInt(Long.fromBits(l.low, l.high, unsigned).toString());
}

function normPbjsValue(f: protobuf.Field, v: unknown): unknown {
  const t = f.resolvedType;
  if (t instanceof protobuf.Type) return normPbjs(t, v as Record<string, unknown>);
  if (isInt64(f.type)) return normLong(v, UNSIGNED_64.has(f.type));
  if (v instanceof Uint8Array) return normBytes(v);
  return v;
}

function normPbjsKey(keyType: string, k: string): string {
  if (!isInt64(keyType)) return k;
  const v = protobuf.util.longFromKey(k, UNSIGNED_64.has(keyType));
  return String(normLong(v, UNSIGNED_64.has(keyType)));
}

/**
 * A comparable form of a protobufjs message, decoded or built by `sampleArb`: present fields only
 * (empty repeated fields and maps count as absent), by proto field name; 64-bit values as bigint;
 * 64-bit map keys as decimal strings; bytes as `{ bytes: hex }`; unknown fields as bytes.
 */
export function normPbjs(type: protobuf.Type, msg: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fieldsArray) {
    if (!Object.prototype.hasOwnProperty.call(msg, f.name)) continue;
    const v = msg[f.name];
    if (v === undefined || v === null) continue;
    if (f.map) {
      const keys = Object.keys(v as object);
      if (keys.length === 0) continue;
      const m: Record<string, unknown> = {};
      for (const k of keys) put(m, normPbjsKey(mapKeyType(f)!, k), normPbjsValue(f, (v as Record<string, unknown>)[k]));
      out[f.name] = m;
    } else if (f.repeated) {
      const xs = v as unknown[];
      if (xs.length === 0) continue;
      out[f.name] = xs.map((x) => normPbjsValue(f, x));
    } else {
      out[f.name] = normPbjsValue(f, v);
    }
  }
  const unknown = (msg as { $unknowns?: Uint8Array[] }).$unknowns;
  if (unknown !== undefined && unknown.length > 0) out["$unknowns"] = unknown.map(normBytes);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Views

/** How `mapMessage` turns one message into another, field by field. */
interface FieldMapper {
  /** The new value of a present value (an element of a repeated field, a map value). */
  value(f: protobuf.Field, v: unknown): unknown;
  /** The value of an absent singular field (undefined: leave it absent). */
  absent?(f: protobuf.Field): unknown;
  /** Whether to carry `$unknown` over. */
  keepUnknown?: boolean;
}

/**
 * A Meridian-shaped message built from another by the reflection of `type`: every field by its
 * property name (repeated fields and maps element by element, absent ones as [] and {}), oneofs
 * as `{ case, value }`. Reads `msg` through its properties only, so a view works as well as a
 * message.
 */
function mapMessage(type: protobuf.Type, msg: Record<string, unknown>, mapper: FieldMapper): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fieldsArray) {
    if (realOneof(f) !== undefined) continue;
    const prop = propName(f.name);
    const v = msg[prop];
    if (f.map) {
      const m: Record<string, unknown> = {};
      for (const [k, x] of Object.entries((v ?? {}) as Record<string, unknown>)) put(m, k, mapper.value(f, x));
      out[prop] = m;
    } else if (f.repeated) {
      out[prop] = ((v ?? []) as unknown[]).map((x) => mapper.value(f, x));
    } else {
      const x = v === undefined ? mapper.absent?.(f) : mapper.value(f, v);
      if (x !== undefined) out[prop] = x;
    }
  }
  for (const o of realOneofs(type)) {
    const v = msg[propName(o.name)] as { case: string; value: unknown } | undefined;
    if (v === undefined) continue;
    const member = o.fieldsArray.find((f) => jsonName(f.name) === v.case);
    if (member === undefined) throw new Error(`${typeName(type)}.${o.name} has no member ${v.case}`);
    out[propName(o.name)] = { case: v.case, value: mapper.value(member, v.value) };
  }
  if (mapper.keepUnknown === true && msg["$unknown"] !== undefined) out["$unknown"] = msg["$unknown"];
  return out;
}

/** The message type of a field, if it is one. */
function messageType(f: protobuf.Field): protobuf.Type | undefined {
  return f.resolvedType instanceof protobuf.Type ? f.resolvedType : undefined;
}

/** Reads every getter of a view, recursively, into a Meridian-shaped object (no `$unknown`). */
export function materializeView(type: protobuf.Type, view: Record<string, unknown>): Record<string, unknown> {
  return mapMessage(type, view, {
    value: (f, v) => {
      const t = messageType(f);
      return t !== undefined && v !== undefined ? materializeView(t, v as Record<string, unknown>) : v;
    },
  });
}

/**
 * What the view of a decoded message should read: the eager message (compare without
 * `$unknown`), with absent scalars that declare a default (proto2 `[default = ...]`) reading that
 * default. Group fields are read eagerly by views (their type is the message, not its view): no
 * defaults there.
 */
export function expectedView(type: protobuf.Type, msg: Record<string, unknown>, mode: Int64Mode, eager = false): Record<string, unknown> {
  return mapMessage(type, msg, {
    value: (f, v) => {
      const t = messageType(f);
      return t !== undefined ? expectedView(t, v as Record<string, unknown>, mode, eager || f.delimited) : v;
    },
    absent: (f) => (!eager && hasDeclaredDefault(f) ? defaultOf(f, mode) : undefined),
  });
}

// ---------------------------------------------------------------------------------------------
// Expected values

/**
 * A full Meridian message of `type` from the fields given: implicit-presence fields default to
 * zero, repeated fields to [], maps to {}; explicit-presence fields stay absent. Nested messages
 * given are completed the same way. Built from the reflection, independently of generated code.
 */
export function fullMessage(type: protobuf.Type, given: Record<string, unknown>, mode: Int64Mode = "bigint"): Record<string, unknown> {
  const known = new Set(["$unknown", ...type.fieldsArray.map((f) => propName(realOneof(f)?.name ?? f.name))]);
  for (const k of Object.keys(given)) if (!known.has(k)) throw new Error(`${typeName(type)} has no field ${k}`);
  return mapMessage(type, given, {
    value: (f, v) => {
      const t = messageType(f);
      return t !== undefined ? fullMessage(t, v as Record<string, unknown>, mode) : v;
    },
    absent: (f) => (hasImplicitPresence(f) ? defaultOf(f, mode) : undefined),
    keepUnknown: true,
  });
}

/** The same message with its 64-bit integers as numbers, as `--int64 number` decodes them. */
export function toNumberMode(type: protobuf.Type, msg: Record<string, unknown>): Record<string, unknown> {
  if (isWellKnown(type)) return msg;
  // Map keys stay exact decimal strings whatever the mode.
  return mapMessage(type, msg, {
    value: (f, v) => {
      const t = messageType(f);
      return t !== undefined ? toNumberMode(t, v as Record<string, unknown>) : typeof v === "bigint" ? Number(v) : v;
    },
    keepUnknown: true,
  });
}

/** Whether every 64-bit integer in a (normalized or not) value is exactly a double. */
export function int64sAreSafe(v: unknown): boolean {
  if (typeof v === "bigint") return v >= -SAFE && v <= SAFE;
  if (Array.isArray(v)) return v.every(int64sAreSafe);
  if (typeof v === "object" && v !== null && !(v instanceof Uint8Array)) return Object.values(v).every(int64sAreSafe);
  return true;
}
