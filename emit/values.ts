/**
 * How each scalar and enum value is written, read and defaulted, as pieces of code the message
 * emitter assembles for every target.
 */
import type { EmitContext } from "./context.js";
import {
  isInt64Type,
  resolved,
  type DefaultValue,
  type EnumModel,
  type FieldModel,
  type Int64Mode,
  type ResolvedType,
  type ScalarType,
} from "../idl/model.js";
import type { Printable } from "./printer.js";
import { WIRE_VARINT, isPackable, scalarWire } from "../idl/wire.js";

/**
 * How a scalar or enum value is written, read and defaulted: the pieces the message emitter
 * assembles. Expressions read through a variable `r` and write through `w`.
 */
export interface ValueCodec {
  /** The TypeScript type. */
  readonly ts: Printable;
  readonly wire: number;
  /** A statement writing `x` (without the tag and the semicolon). */
  write(x: Printable): Printable;
  /** An expression reading one value. */
  readonly read: Printable;
  /** The zero value (for a closed enum, its first value). */
  readonly zero: Printable;
  /** A condition true when `x` must be written under implicit presence. */
  nonZero(x: Printable): Printable;
  /** Whether repeated values of this type may be packed. */
  readonly packable: boolean;
  /** The enum, when the value is a closed enum (unknown numbers are not kept in the field). */
  readonly closed: EnumModel | undefined;
  /**
   * Statements that read a whole packed body (length prefix included) onto the array `out`, and
   * write the array `x` as one (length prefix included, tag not), each with one reader or writer
   * call; undefined where the value-by-value loop is as fast.
   */
  readonly packed?: {
    read(out: Printable): Printable;
    write(x: Printable): Printable;
  };
}

/** Scalar types whose packed bodies the reader and writer handle in one call (`packedDouble`, ...). */
const PACKED_METHODS: ReadonlySet<ScalarType> = new Set<ScalarType>([
  "double",
  "float",
  "fixed32",
  "sfixed32",
  "fixed64",
  "sfixed64",
  "int32",
  "uint32",
  "sint32",
  "bool",
  "int64",
  "uint64",
  "sint64",
]);

/** The packed reader and writer of scalar type `t` in int64 representation `mode`, if it has them. */
function packedMethods(t: ScalarType, mode: Int64Mode): ValueCodec["packed"] {
  if (!PACKED_METHODS.has(t) || (isInt64Type(t) && mode === "string")) return undefined;
  const name = `packed${t[0]!.toUpperCase()}${t.slice(1)}${isInt64Type(t) && mode === "number" ? "Number" : ""}`;
  return { read: (out) => [`r.${name}(`, out, ")"], write: (x) => [`w.${name}(`, x, ")"] };
}

/** The int64 representation of a field: its jstype, else the default of its message's output. */
export function int64ModeOf(ctx: EmitContext, f: FieldModel): Int64Mode {
  return f.jstype ?? ctx.int64Of(f.parent);
}

/** The codec of a scalar value. */
export function scalarCodec(ctx: EmitContext, t: ScalarType, mode: Int64Mode, utf8: "strict" | "lenient"): ValueCodec {
  // The reader's and writer's methods are named after the scalar types.
  const method = t;
  const base = { wire: scalarWire(t), packable: isPackable(t), closed: undefined, packed: packedMethods(t, mode) };
  if (isInt64Type(t)) {
    if (mode === "bigint") {
      return {
        ...base,
        ts: "bigint",
        write: (x) => [`w.${method}(`, x, ")"],
        read: `r.${method}()`,
        zero: "0n",
        nonZero: (x) => [x, " !== 0n"],
      };
    }
    if (mode === "number") {
      return {
        ...base,
        ts: "number",
        write: (x) => [`w.${method}Number(`, x, ")"],
        read: `r.${method}Number()`,
        zero: "0",
        nonZero: (x) => [x, " !== 0"],
      };
    }
    return {
      ...base,
      ts: "string",
      write: (x) => [`w.${method}(BigInt(`, x, "))"],
      read: `String(r.${method}())`,
      zero: '"0"',
      nonZero: (x) => [x, ' !== "0"'],
    };
  }
  switch (t) {
    case "double":
    case "float":
      return {
        ...base,
        ts: "number",
        write: (x) => [`w.${method}(`, x, ")"],
        read: `r.${method}()`,
        zero: "0",
        // -0 is not the default: it is written, as protobuf's C++ and Java runtimes do.
        nonZero: (x) => [x, " !== 0 || Object.is(", x, ", -0)"],
      };
    case "bool":
      return { ...base, ts: "boolean", write: (x) => ["w.bool(", x, ")"], read: "r.bool()", zero: "false", nonZero: (x) => [x, " !== false"] };
    case "string":
      return {
        ...base,
        ts: "string",
        write: (x) => ["w.string(", x, ")"],
        read: utf8 === "strict" ? "r.string()" : "r.stringLenient()",
        zero: '""',
        nonZero: (x) => [x, ' !== ""'],
      };
    case "bytes":
      return {
        ...base,
        ts: "Uint8Array",
        write: (x) => ["w.bytes(", x, ")"],
        read: "r.bytes()",
        get zero(): Printable {
          return ctx.emptyBytes;
        },
        nonZero: (x) => [x, ".length > 0"],
      };
    default:
      return {
        ...base,
        ts: "number",
        write: (x) => [`w.${method}(`, x, ")"],
        read: `r.${method}()`,
        zero: "0",
        nonZero: (x) => [x, " !== 0"],
      };
  }
}

/** The codec of an enum value (int32 on the wire). */
export function enumCodec(ctx: EmitContext, e: EnumModel): ValueCodec {
  const zeroValue = e.closed ? e.values[0]! : (e.values.find((v) => v.number === 0) ?? e.values[0]!);
  return {
    ts: ctx.enumRef(e, "type"),
    wire: WIRE_VARINT,
    write: (x) => ["w.int32(", x, ")"],
    read: "r.int32()",
    zero: ctx.enumValue(e, zeroValue),
    nonZero: (x) => [x, " !== 0"],
    packable: true,
    closed: e.closed ? e : undefined,
    // Open enums only: a closed one keeps unknown numbers out of the field, value by value.
    packed: e.closed ? undefined : packedMethods("int32", "number"),
  };
}

/** The codec of a field's (or map value's) scalar/enum type; undefined for messages. */
export function valueCodecOf(ctx: EmitContext, f: FieldModel): ValueCodec | undefined {
  const t = resolved(f.type);
  if (t.kind === "scalar") return scalarCodec(ctx, t.scalar, f.cardinality === "map" ? ctx.int64Of(f.parent) : int64ModeOf(ctx, f), f.utf8);
  if (t.kind === "enum") return enumCodec(ctx, t.enum);
  return undefined;
}

/**
 * A condition on variable `v` true when `v` is a declared number of closed enum `e`, as
 * comparisons over the declared numbers grouped into ranges.
 */
export function enumKnown(e: EnumModel, v: string): string {
  const nums = [...new Set(e.values.map((x) => x.number))].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < nums.length; ) {
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j]! + 1) j++;
    if (j === i) parts.push(`${v} === ${nums[i]}`);
    else if (j === i + 1) parts.push(`${v} === ${nums[i]}`, `${v} === ${nums[j]}`);
    else parts.push(`(${v} >= ${nums[i]} && ${v} <= ${nums[j]})`);
    i = j + 1;
  }
  if (parts.length === 1) return parts[0]!.replace(/^\((.*)\)$/, "$1");
  return parts.join(" || ");
}

/** A JavaScript number literal (NaN, infinities and -0 included). */
export function numberLiteral(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

/** A field default as a TypeScript expression of the field's type. */
export function defaultLiteral(ctx: EmitContext, f: FieldModel, d: DefaultValue): Printable {
  const t = resolved(f.type);
  if (t.kind === "enum") return ctx.enumValue(t.enum, d as (typeof t.enum.values)[number]);
  if (typeof d === "bigint") {
    const mode = int64ModeOf(ctx, f);
    if (mode === "bigint") return `${d}n`;
    if (mode === "string") return JSON.stringify(String(d));
    return numberLiteral(Number(d));
  }
  if (typeof d === "number") return numberLiteral(d);
  if (typeof d === "boolean") return String(d);
  if (typeof d === "string") return JSON.stringify(d);
  if (d instanceof Uint8Array) return d.length === 0 ? ctx.emptyBytes : `new Uint8Array([${[...d].join(", ")}])`;
  throw new Error("internal: unexpected default value");
}

/** A default as it reads in JSDoc (`@defaultValue`). */
export function defaultDoc(ctx: EmitContext, f: FieldModel, d: DefaultValue): string {
  const t: ResolvedType = resolved(f.type);
  if (t.kind === "enum") return `${t.enum.tsName}.${(d as { localName: string }).localName}`;
  if (d instanceof Uint8Array) return `new Uint8Array([${[...d].join(", ")}])`;
  const lit = defaultLiteral(ctx, f, d);
  return typeof lit === "string" ? lit : String(d);
}

/** The statement that keeps the unknown field read from `at` to `r.pos`. */
export const PUSH_UNKNOWN = "(m.$unknown ??= []).push(r.buf.subarray(at, r.pos));";

/** The statement writing a map entry's key (held as a string in `key`) as type `k`. */
export function mapKeyWrite(k: ScalarType): string {
  switch (k) {
    case "string":
      return "w.string(key)";
    case "bool":
      return 'w.bool(key === "true")';
    case "int64":
    case "uint64":
    case "sint64":
    case "fixed64":
    case "sfixed64":
      return `w.${k}Key(key)`;
    default:
      return `w.${k}(Number(key))`;
  }
}

/**
 * A map entry's key: its initial (absent) value and the expression reading it, as strings.
 * `numeric`: an integer key stays a number (a 64-bit one past 2^53 is its decimal string), which
 * the object stores as it would its string (`m[-1]` is `m["-1"]`) without making that string, and
 * which is never `__proto__`.
 */
export function mapKeyRead(
  k: ScalarType,
  utf8: "strict" | "lenient",
): { init: string; read: string; numeric: boolean; type?: string } {
  switch (k) {
    case "string":
      return { init: '""', read: utf8 === "strict" ? "r.string()" : "r.stringLenient()", numeric: false };
    case "bool":
      return { init: '"false"', read: "String(r.bool())", numeric: false };
    case "int32":
    case "uint32":
    case "sint32":
    case "fixed32":
    case "sfixed32":
      return { init: "0", read: `r.${k}()`, numeric: true };
    case "int64":
    case "uint64":
    case "sint64":
    case "fixed64":
    case "sfixed64":
      // A number within 2^53, else the exact decimal string: either is a key as its string is.
      return { init: "0", read: `r.${k}Key()`, numeric: true, type: "number | string" };
    default:
      return { init: '"0"', read: `String(r.${k}())`, numeric: false };
  }
}
