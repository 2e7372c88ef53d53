/**
 * The canonical protobuf JSON mapping (proto3 JSON) over Meridian's in-memory messages: field
 * names as lowerCamelCase JSON names (declared names accepted on input), 64-bit integers as
 * decimal strings, bytes as base64 (URL-safe accepted), enums by name (numbers accepted), NaN and
 * the infinities as strings, and the well-known types in their JSON forms (Timestamp as RFC 3339,
 * Duration as "1.5s", wrappers as plain values, Struct / Value / ListValue as JSON, FieldMask as
 * "a.b,c", Any with "@type", Empty as {}).
 *
 * It walks the schema model (idl/), so it works for generated and compiled codecs alike (the two build
 * the same objects). Errors are JsonErrors: RpcErrors INVALID_ARGUMENT whose message names the
 * message type and the field path (`feed.FeedRequest.items[2].author.id: ...`).
 */
import {
  isInt64Type,
  resolved,
  type EnumModel,
  type FieldModel,
  type Int64Mode,
  type MessageModel,
  type OneofModel,
  type ScalarType,
} from "../../idl/model.js";
import { DecodeError } from "../codec/errors.js";
import type { AnyMessageCodec } from "../codec/types.js";
import { setEntry } from "../codec/view.js";
import { Code, RpcError } from "../rpc/errors.js";
import { int64Of } from "../../emit/compile.js";

/** A JSON value, as JSON.parse returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Options of toJson. */
export interface JsonWriteOptions {
  /**
   * Also print fields without presence that hold their default (0, "", false, the zero enum)
   * and empty repeated fields and maps. Default false: they are left out, as proto3 JSON does.
   */
  emitDefaults?: boolean;
  /** Print the field names as declared in the .proto (`user_id`) instead of the JSON names (`userId`). */
  useProtoNames?: boolean;
  /** Print enum values as numbers instead of names. */
  enumsAsNumbers?: boolean;
}

/** Options of fromJson. */
export interface JsonReadOptions {
  /**
   * Skip fields the message does not declare, and enum names the enum does not declare (the
   * field is then left unset), instead of failing. Default false.
   */
  ignoreUnknownFields?: boolean;
}

/**
 * JSON that does not fit a message, or a message that JSON cannot represent: an RpcError
 * INVALID_ARGUMENT whose message starts with the message type and the path of the field
 * (`feed.FeedRequest.items[2].author.id: expected an integer, got "x"`).
 */
export class JsonError extends RpcError {
  override readonly name = "JsonError";

  constructor(
    /** The outermost message type. */
    readonly typeName: string,
    /** The field path below it, as `.items[2].author.id` ("" for the message itself). */
    readonly path: string,
    /** What is wrong. */
    readonly detail: string,
    cause?: unknown,
  ) {
    super(Code.INVALID_ARGUMENT, `${typeName}${path}: ${detail}`, cause === undefined ? {} : { cause });
  }
}

/** What the mapper needs from a schema: types by name (for Any) and their codecs. */
export interface TypeResolver {
  readonly int64: Int64Mode;
  message(name: string): MessageModel | undefined;
  codec(message: MessageModel): AnyMessageCodec;
}

/**
 * The error context of one conversion: the root type and the path walked so far. Segments are
 * kept raw (a field name, an index, a map key) and formatted only when an error is raised.
 */
class Path {
  private readonly parts: (string | number | MapKey)[] = [];
  constructor(private readonly typeName: string) {}

  /** Enters a field (by name), a list element (by index) or a map entry (by key). */
  push(part: string | number | MapKey): void {
    this.parts.push(part);
  }

  pop(): void {
    this.parts.pop();
  }

  error(detail: string, cause?: unknown): JsonError {
    return new JsonError(this.typeName, this.parts.map(formatPart).join(""), detail, cause);
  }
}

/** A map key on the path (a string would read as a field name). */
class MapKey {
  constructor(readonly key: string) {}
}

function formatPart(p: string | number | MapKey): string {
  if (typeof p === "number") return `[${p}]`;
  if (p instanceof MapKey) return `[${JSON.stringify(p.key)}]`;
  return /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;
}

/** A JSON value described for an error message: `"abc"`, `12`, `an object`. */
function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (Array.isArray(v)) return "an array";
  switch (typeof v) {
    case "string":
      return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
    case "number":
    case "boolean":
      return String(v);
    case "bigint":
      return `${v}n`;
    case "object":
      return v instanceof Uint8Array ? "a Uint8Array" : "an object";
    default:
      return `a ${typeof v}`;
  }
}

/** A JSON number, as the grammar spells it (no whitespace, no leading +, no hex). */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const DECIMAL_INTEGER = /^-?\d+$/;
const FLOAT_MAX = 3.4028234663852886e38;

const INT32: Partial<Record<ScalarType, [number, number]>> = {
  int32: [-2147483648, 2147483647],
  sint32: [-2147483648, 2147483647],
  sfixed32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  fixed32: [0, 4294967295],
};

const INT64_MIN = -0x8000000000000000n;
const INT64_MAX = 0x7fffffffffffffffn;
const UINT64_MAX = 0xffffffffffffffffn;

function isUnsigned64(t: ScalarType): boolean {
  return t === "uint64" || t === "fixed64";
}

/**
 * The int64 representation of a field's values, as generated code has it: its jstype, else its
 * file's (map values: the file's), where well-known types are always bigint.
 */
function modeOf(f: FieldModel, int64: Int64Mode): Int64Mode {
  const mode = int64Of(f.parent.file, int64);
  return f.cardinality === "map" ? mode : (f.jstype ?? mode);
}

/** A 64-bit value of any representation as a bigint; undefined when it is not an integer. */
function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") return Number.isInteger(v) ? BigInt(v) : undefined;
  if (typeof v === "string" && DECIMAL_INTEGER.test(v)) return BigInt(v);
  return undefined;
}

/** A bigint in the representation `mode`. */
function fromBigInt(b: bigint, mode: Int64Mode): bigint | number | string {
  return mode === "bigint" ? b : mode === "number" ? Number(b) : b.toString();
}

/** Standard base64 with padding. */
function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;

/** Decodes standard or URL-safe base64, padded or not; undefined when it is not base64. */
function fromBase64(s: string): Uint8Array | undefined {
  if (!BASE64.test(s)) return undefined;
  const body = s.replace(/=+$/, "");
  if (body.length % 4 === 1) return undefined;
  if (s.length !== body.length && s.length % 4 !== 0) return undefined;
  if (/[+/]/.test(body) && /[-_]/.test(body)) return undefined;
  return new Uint8Array(Buffer.from(body.replace(/-/g, "+").replace(/_/g, "/"), "base64"));
}

/** The shortest decimal that reads back as the float32 `v` (0.1, not 0.10000000149011612). */
function shortestFloat(v: number): number {
  if (v === 0 || !Number.isFinite(v)) return v; // keeps -0
  for (let p = 1; p <= 9; p++) {
    const n = Number(v.toPrecision(p));
    // Past FLT_MAX a reader refuses the value as out of range, though it rounds back to it.
    if (Math.fround(n) === v && Math.abs(n) <= FLOAT_MAX) return n;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Per-message tables.

interface MessageInfo {
  /** Fields by JSON name and by declared name. */
  readonly byName: Map<string, FieldModel>;
  /** JSON names, for error messages. */
  readonly names: string;
}

const infos = new WeakMap<MessageModel, MessageInfo>();

function infoOf(m: MessageModel): MessageInfo {
  let info = infos.get(m);
  if (info === undefined) {
    const byName = new Map<string, FieldModel>();
    for (const f of m.fields) {
      byName.set(f.jsonName, f);
      if (!byName.has(f.name)) byName.set(f.name, f);
    }
    const names = m.fields.map((f) => f.jsonName).join(", ");
    info = { byName, names: names === "" ? "no fields" : names };
    infos.set(m, info);
  }
  return info;
}

function messageOf(f: FieldModel): MessageModel | undefined {
  const t = resolved(f.type);
  return t.kind === "message" ? t.message : undefined;
}

function enumOf(f: FieldModel): EnumModel | undefined {
  const t = resolved(f.type);
  return t.kind === "enum" ? t.enum : undefined;
}

const VALUE = "google.protobuf.Value";
const NULL_VALUE = "google.protobuf.NullValue";

/** Well-known types with their own JSON form (Empty is an ordinary `{}`). */
const SPECIAL_WKT: ReadonlySet<string> = new Set([
  "google.protobuf.Any",
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.Struct",
  VALUE,
  "google.protobuf.ListValue",
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);

/** Whether JSON null is a value of `f`'s type (Value's null, NullValue) rather than "absent". */
function takesNull(f: FieldModel): boolean {
  return messageOf(f)?.fullName === VALUE || enumOf(f)?.fullName === NULL_VALUE;
}

type Msg = Record<string, unknown>;

/** Marks an enum name skipped under `ignoreUnknownFields`. */
const SKIP = Symbol("skip");

// ---------------------------------------------------------------------------------------------
// Timestamps and durations.

const TIMESTAMP_MIN = -62135596800n; // 0001-01-01T00:00:00Z
const TIMESTAMP_MAX = 253402300799n; // 9999-12-31T23:59:59Z
const DURATION_MAX = 315576000000n; // 10,000 years

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]!;
}

/** 0, 3, 6 or 9 fraction digits, the fewest that hold `nanos` exactly (protobuf's rule). */
function fraction(nanos: number): string {
  if (nanos === 0) return "";
  const s = String(nanos).padStart(9, "0");
  if (nanos % 1_000_000 === 0) return `.${s.slice(0, 3)}`;
  if (nanos % 1_000 === 0) return `.${s.slice(0, 6)}`;
  return `.${s}`;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

// ---------------------------------------------------------------------------------------------

/** Converts messages of one schema to and from canonical protobuf JSON. */
export class JsonMapper {
  constructor(private readonly types: TypeResolver) {}

  /** `msg` (a message of type `m`) as JSON. */
  toJson(m: MessageModel, msg: object, options: JsonWriteOptions = {}): JsonValue {
    return new Printer(this.types, options, new Path(m.fullName)).message(m, msg as Msg);
  }

  /** A message of type `m` from `json`. */
  fromJson(m: MessageModel, json: unknown, options: JsonReadOptions = {}): object {
    return new Parser(this.types, options, new Path(m.fullName)).message(m, json);
  }
}

// ---------------------------------------------------------------------------------------------
// Message -> JSON.

class Printer {
  constructor(
    private readonly types: TypeResolver,
    private readonly opts: JsonWriteOptions,
    private readonly path: Path,
  ) {}

  message(m: MessageModel, msg: Msg): JsonValue {
    if (msg === null || typeof msg !== "object") throw this.path.error(`expected a ${m.fullName} message, got ${describe(msg)}`);
    if (SPECIAL_WKT.has(m.fullName)) return this.wellKnown(m, msg);
    const out: { [key: string]: JsonValue } = {};
    let defaults: Msg | undefined;
    for (const f of m.fields) {
      const key = this.opts.useProtoNames ? f.name : f.jsonName;
      this.path.push(f.localName);
      if (f.oneof !== undefined) {
        const o = msg[f.oneof.localName] as { case: string; value: unknown } | undefined;
        if (o !== undefined && o !== null && o.case === f.localName) out[key] = this.singular(f, o.value);
      } else if (f.cardinality === "map") {
        const v = msg[f.localName] as Msg | undefined;
        const keys = v === undefined || v === null ? [] : Object.keys(v);
        if (keys.length > 0 || this.opts.emitDefaults) {
          const obj: { [key: string]: JsonValue } = {};
          for (const k of keys) {
            this.path.push(new MapKey(k));
            setEntry(obj, k, this.singular(f, v![k]));
            this.path.pop();
          }
          out[key] = obj;
        }
      } else if (f.cardinality === "repeated") {
        const v = msg[f.localName] as unknown[] | undefined;
        if (v !== undefined && v !== null && !Array.isArray(v)) throw this.path.error(`expected an array, got ${describe(v)}`);
        if ((v !== undefined && v !== null && v.length > 0) || this.opts.emitDefaults) {
          out[key] = (v ?? []).map((x, i) => {
            this.path.push(i);
            const j = this.singular(f, x);
            this.path.pop();
            return j;
          });
        }
      } else {
        let v = msg[f.localName];
        if (f.presence === "implicit") {
          if (v === undefined) v = (defaults ??= this.types.codec(m).create() as Msg)[f.localName];
          if (this.opts.emitDefaults || !isZero(f, v)) out[key] = this.singular(f, v);
        } else if (v !== undefined && v !== null) {
          out[key] = this.singular(f, v);
        }
      }
      this.path.pop();
    }
    return out;
  }

  /** One value of `f` (an element of a repeated field, a map value). */
  private singular(f: FieldModel, v: unknown): JsonValue {
    const t = resolved(f.type);
    if (t.kind === "message") return this.message(t.message, v as Msg);
    if (t.kind === "enum") return this.enumValue(t.enum, v);
    return this.scalar(t.scalar, v);
  }

  private enumValue(e: EnumModel, v: unknown): JsonValue {
    if (typeof v !== "number" || !Number.isInteger(v)) throw this.path.error(`expected an enum number of ${e.fullName}, got ${describe(v)}`);
    if (e.fullName === NULL_VALUE) return null;
    if (this.opts.enumsAsNumbers) return v;
    return e.values.find((x) => x.number === v)?.name ?? v;
  }

  private scalar(t: ScalarType, v: unknown): JsonValue {
    switch (t) {
      case "string":
        if (typeof v !== "string") throw this.path.error(`expected a string, got ${describe(v)}`);
        return v;
      case "bool":
        if (typeof v !== "boolean") throw this.path.error(`expected a boolean, got ${describe(v)}`);
        return v;
      case "bytes":
        if (!(v instanceof Uint8Array)) throw this.path.error(`expected a Uint8Array, got ${describe(v)}`);
        return base64(v);
      case "double":
      case "float":
        if (typeof v !== "number") throw this.path.error(`expected a number, got ${describe(v)}`);
        if (Number.isNaN(v)) return "NaN";
        if (v === Infinity) return "Infinity";
        if (v === -Infinity) return "-Infinity";
        return t === "float" ? shortestFloat(v) : v;
      default: {
        if (isInt64Type(t)) {
          const b = toBigInt(v);
          if (b === undefined) throw this.path.error(`expected a 64-bit integer, got ${describe(v)}`);
          return b.toString();
        }
        if (typeof v !== "number" || !Number.isInteger(v)) throw this.path.error(`expected an integer, got ${describe(v)}`);
        return v;
      }
    }
  }

  private wellKnown(m: MessageModel, msg: Msg): JsonValue {
    switch (m.fullName) {
      case "google.protobuf.Any":
        return this.any(msg);
      case "google.protobuf.Timestamp":
        return this.timestamp(msg);
      case "google.protobuf.Duration":
        return this.duration(msg);
      case "google.protobuf.FieldMask":
        return this.fieldMask(msg);
      case "google.protobuf.Struct":
        return this.struct(msg);
      case VALUE:
        return this.value(msg);
      case "google.protobuf.ListValue":
        return this.list(msg);
      default: {
        // A wrapper: its value, plain.
        const f = m.fields[0]!;
        this.path.push("value");
        const j = this.singular(f, msg["value"] ?? (this.types.codec(m).create() as Msg)["value"]);
        this.path.pop();
        return j;
      }
    }
  }

  private any(msg: Msg): JsonValue {
    const url = msg["typeUrl"];
    const value = msg["value"];
    if (typeof url !== "string") throw this.path.error(`expected typeUrl to be a string, got ${describe(url)}`);
    const bytes = value instanceof Uint8Array ? value : new Uint8Array(0);
    if (url === "" && bytes.length === 0) return {};
    const name = url.slice(url.lastIndexOf("/") + 1);
    const inner = this.types.message(name);
    if (inner === undefined) {
      throw this.path.error(`cannot print an Any of type "${url}": ${name} is not in the loaded .proto files; load the file that defines it`);
    }
    let decoded: Msg;
    try {
      decoded = this.types.codec(inner).decode(bytes) as Msg;
    } catch (e) {
      if (e instanceof DecodeError) throw this.path.error(`the value of an Any of type ${name} does not decode: ${e.message}`, e);
      throw e;
    }
    const j = this.message(inner, decoded);
    if (SPECIAL_WKT.has(inner.fullName)) return { "@type": url, value: j };
    return { "@type": url, ...(j as { [key: string]: JsonValue }) };
  }

  private timestamp(msg: Msg): JsonValue {
    const seconds = toBigInt(msg["seconds"] ?? 0n);
    const nanos = msg["nanos"] ?? 0;
    if (seconds === undefined || seconds < TIMESTAMP_MIN || seconds > TIMESTAMP_MAX) {
      throw this.path.error(`Timestamp seconds ${describe(msg["seconds"])} is outside 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z`);
    }
    if (typeof nanos !== "number" || !Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
      throw this.path.error(`Timestamp nanos ${describe(nanos)} is outside 0 to 999999999`);
    }
    const iso = new Date(Number(seconds) * 1000).toISOString(); // years 1 to 9999 print as 4 digits
    return `${iso.slice(0, 19)}${fraction(nanos)}Z`;
  }

  private duration(msg: Msg): JsonValue {
    const seconds = toBigInt(msg["seconds"] ?? 0n);
    const nanos = msg["nanos"] ?? 0;
    if (seconds === undefined || seconds < -DURATION_MAX || seconds > DURATION_MAX) {
      throw this.path.error(`Duration seconds ${describe(msg["seconds"])} is outside -315576000000 to 315576000000`);
    }
    if (typeof nanos !== "number" || !Number.isInteger(nanos) || nanos < -999_999_999 || nanos > 999_999_999) {
      throw this.path.error(`Duration nanos ${describe(nanos)} is outside -999999999 to 999999999`);
    }
    if ((seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0)) {
      throw this.path.error(`Duration seconds ${seconds} and nanos ${nanos} have different signs`);
    }
    const neg = seconds < 0n || nanos < 0;
    const abs = seconds < 0n ? -seconds : seconds;
    return `${neg ? "-" : ""}${abs}${fraction(Math.abs(nanos))}s`;
  }

  private fieldMask(msg: Msg): JsonValue {
    const paths = (msg["paths"] ?? []) as unknown[];
    return paths
      .map((p, i) => {
        // What Google's printer refuses (C++ SnakeCaseToCamelCase): an upper-case letter, or an
        // underscore not before a lower-case one, whose lowerCamelCase would not read back.
        // Anything else prints as it is, in Google's printer and in protobuf-es.
        if (typeof p !== "string" || /[A-Z]|_(?![a-z])/.test(p)) {
          this.path.push("paths");
          this.path.push(i);
          throw this.path.error(`FieldMask path ${describe(p)} has no JSON form: it has an upper-case letter, or an underscore not before a lower-case letter`);
        }
        return p.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      })
      .join(",");
  }

  private struct(msg: Msg): JsonValue {
    const fields = (msg["fields"] ?? {}) as Msg;
    const out: { [key: string]: JsonValue } = {};
    for (const k of Object.keys(fields)) {
      this.path.push(new MapKey(k));
      setEntry(out, k, this.value(fields[k] as Msg));
      this.path.pop();
    }
    return out;
  }

  private value(msg: Msg): JsonValue {
    const kind = msg?.["kind"] as { case: string; value: unknown } | undefined;
    switch (kind?.case) {
      case "nullValue":
        return null;
      case "numberValue": {
        const n = kind.value;
        if (typeof n !== "number" || !Number.isFinite(n)) throw this.path.error(`a Value's number must be finite, got ${describe(n)}`);
        return n;
      }
      case "stringValue":
        if (typeof kind.value !== "string") throw this.path.error(`expected a string, got ${describe(kind.value)}`);
        return kind.value;
      case "boolValue":
        if (typeof kind.value !== "boolean") throw this.path.error(`expected a boolean, got ${describe(kind.value)}`);
        return kind.value;
      case "structValue":
        return this.struct(kind.value as Msg);
      case "listValue":
        return this.list(kind.value as Msg);
      default:
        throw this.path.error("a google.protobuf.Value has no kind set; set one of nullValue, numberValue, stringValue, boolValue, structValue, listValue");
    }
  }

  private list(msg: Msg): JsonValue {
    const values = (msg["values"] ?? []) as Msg[];
    return values.map((v, i) => {
      this.path.push(i);
      const j = this.value(v);
      this.path.pop();
      return j;
    });
  }
}

/** Whether an implicit-presence value of `f` is its type's default (and so not printed). */
function isZero(f: FieldModel, v: unknown): boolean {
  if (typeof v === "number") return v === 0 && !Object.is(v, -0);
  if (typeof v === "bigint") return v === 0n;
  if (typeof v === "string") return v === "" || (v === "0" && resolved(f.type).kind === "scalar" && isInt64Type((resolved(f.type) as { scalar: ScalarType }).scalar));
  if (typeof v === "boolean") return !v;
  if (v instanceof Uint8Array) return v.length === 0;
  return v === undefined || v === null;
}

// ---------------------------------------------------------------------------------------------
// JSON -> message.

class Parser {
  constructor(
    private readonly types: TypeResolver,
    private readonly opts: JsonReadOptions,
    private readonly path: Path,
  ) {}

  message(m: MessageModel, json: unknown): Msg {
    if (SPECIAL_WKT.has(m.fullName)) return this.wellKnown(m, json);
    if (json === null || typeof json !== "object" || Array.isArray(json)) {
      throw this.path.error(`expected a JSON object for ${m.fullName}, got ${describe(json)}`);
    }
    const msg = this.types.codec(m).create() as Msg;
    this.fields(m, json as Msg, msg, undefined);
    return msg;
  }

  /** Reads the members of `json` into `msg`; `skip` names a key to leave alone (Any's "@type"). */
  private fields(m: MessageModel, json: Msg, msg: Msg, skip: string | undefined): void {
    const info = infoOf(m);
    // Only a field whose declared name differs from its JSON name can be given twice.
    let seen: Map<FieldModel, string> | undefined;
    let oneofs: Map<OneofModel, string> | undefined;
    for (const key of Object.keys(json)) {
      if (key === skip) continue;
      const f = info.byName.get(key);
      this.path.push(key);
      if (f === undefined) {
        if (this.opts.ignoreUnknownFields) {
          this.path.pop();
          continue;
        }
        throw this.path.error(`unknown field "${key}": ${m.fullName} has ${info.names} (set ignoreUnknownFields to skip unknown fields)`);
      }
      if (f.name !== f.jsonName) {
        const dup = (seen ??= new Map()).get(f);
        if (dup !== undefined) throw this.path.error(`field ${f.name} is set twice, as "${dup}" and "${key}"`);
        seen.set(f, key);
      }
      const v = json[key];
      if (v === null && !(takesNull(f) && f.cardinality === "singular")) {
        this.path.pop();
        continue; // null: the field is absent
      }
      if (f.oneof !== undefined) {
        const other = (oneofs ??= new Map()).get(f.oneof);
        if (other !== undefined) throw this.path.error(`oneof ${f.oneof.name} has two members set: "${other}" and "${key}"`);
        oneofs.set(f.oneof, key);
        const value = this.singular(f, v, modeOf(f, this.types.int64));
        if (value !== SKIP) msg[f.oneof.localName] = { case: f.localName, value };
      } else if (f.cardinality === "map") {
        msg[f.localName] = this.map(f, v);
      } else if (f.cardinality === "repeated") {
        msg[f.localName] = this.list(f, v);
      } else {
        const value = this.singular(f, v, modeOf(f, this.types.int64));
        if (value !== SKIP) msg[f.localName] = value;
      }
      this.path.pop();
    }
  }

  private list(f: FieldModel, v: unknown): unknown[] {
    if (!Array.isArray(v)) throw this.path.error(`expected an array, got ${describe(v)}`);
    const mode = modeOf(f, this.types.int64);
    const out: unknown[] = [];
    v.forEach((x: unknown, i) => {
      this.path.push(i);
      if (x === null && messageOf(f)?.fullName !== VALUE) throw this.path.error("null is not allowed in a list");
      const value = this.singular(f, x, mode);
      if (value !== SKIP) out.push(value);
      this.path.pop();
    });
    return out;
  }

  private map(f: FieldModel, v: unknown): Msg {
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw this.path.error(`expected a JSON object (a map), got ${describe(v)}`);
    const out: Msg = {};
    const mode = modeOf(f, this.types.int64);
    for (const [k, x] of Object.entries(v as Msg)) {
      this.path.push(new MapKey(k));
      const key = this.mapKey(f.mapKey!, k);
      if (x === null && messageOf(f)?.fullName !== VALUE) throw this.path.error("null is not allowed as a map value");
      const value = this.singular(f, x, mode);
      if (value !== SKIP) setEntry(out, key, value);
      this.path.pop();
    }
    return out;
  }

  /** A map key as Meridian keeps it: decimal text of integers, "true"/"false", the string. */
  private mapKey(t: ScalarType, k: string): string {
    if (t === "string") return k;
    if (t === "bool") {
      if (k !== "true" && k !== "false") throw this.path.error(`expected a bool map key, "true" or "false", got ${describe(k)}`);
      return k;
    }
    if (isInt64Type(t)) return String(this.int64(t, k));
    return String(this.int32(t, k));
  }

  private singular(f: FieldModel, v: unknown, mode: Int64Mode): unknown {
    const t = resolved(f.type);
    if (t.kind === "message") return this.message(t.message, v);
    if (t.kind === "enum") return this.enumValue(t.enum, v);
    return this.scalar(t.scalar, v, mode);
  }

  private enumValue(e: EnumModel, v: unknown): number | typeof SKIP {
    if (e.fullName === NULL_VALUE && v === null) return 0;
    if (typeof v === "string") {
      const hit = e.values.find((x) => x.name === v);
      if (hit !== undefined) return hit.number;
      if (this.opts.ignoreUnknownFields) return SKIP;
      const names = e.values.map((x) => x.name);
      throw this.path.error(`${describe(v)} is not a value of enum ${e.fullName} (${names.slice(0, 12).join(", ")}${names.length > 12 ? ", ..." : ""})`);
    }
    if (typeof v === "number") {
      if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw this.path.error(`enum number ${describe(v)} is not an int32`);
      if (e.closed && !e.values.some((x) => x.number === v)) {
        if (this.opts.ignoreUnknownFields) return SKIP;
        throw this.path.error(`${v} is not a value of the closed enum ${e.fullName}`);
      }
      return v === 0 ? 0 : v;
    }
    throw this.path.error(`expected an enum name of ${e.fullName} (a string) or its number, got ${describe(v)}`);
  }

  private scalar(t: ScalarType, v: unknown, mode: Int64Mode): unknown {
    switch (t) {
      case "string":
        if (typeof v !== "string") throw this.path.error(`expected a string, got ${describe(v)}`);
        return v;
      case "bool":
        if (typeof v !== "boolean") throw this.path.error(`expected true or false, got ${describe(v)}`);
        return v;
      case "bytes": {
        if (typeof v !== "string") throw this.path.error(`expected base64 text, got ${describe(v)}`);
        const b = fromBase64(v);
        if (b === undefined) throw this.path.error(`${describe(v)} is not valid base64 (standard or URL-safe)`);
        return b;
      }
      case "double":
      case "float":
        return this.float(t, v);
      default:
        if (isInt64Type(t)) return fromBigInt(this.int64(t, v), mode);
        return this.int32(t, v);
    }
  }

  private float(t: "double" | "float", v: unknown): number {
    let n: number;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) throw this.path.error(`${describe(v)} is out of range for ${t}; write "NaN", "Infinity" or "-Infinity" as strings`);
      n = v;
    } else if (typeof v === "string") {
      if (v === "NaN") return NaN;
      if (v === "Infinity") return Infinity;
      if (v === "-Infinity") return -Infinity;
      if (!JSON_NUMBER.test(v)) throw this.path.error(`expected a number, got ${describe(v)}`);
      n = Number(v);
      if (!Number.isFinite(n)) throw this.path.error(`${describe(v)} is out of range for ${t}`);
    } else {
      throw this.path.error(`expected a number, got ${describe(v)}`);
    }
    if (t === "float") {
      if (Math.abs(n) > FLOAT_MAX) throw this.path.error(`${describe(v)} is out of range for float`);
      return Math.fround(n);
    }
    return n;
  }

  private int32(t: ScalarType, v: unknown): number {
    let n: number;
    if (typeof v === "number") n = v;
    else if (typeof v === "string" && JSON_NUMBER.test(v)) n = Number(v);
    else throw this.path.error(`expected an integer, got ${describe(v)}`);
    if (!Number.isInteger(n)) throw this.path.error(`${describe(v)} is not an integer`);
    const [lo, hi] = INT32[t]!;
    if (n < lo || n > hi) throw this.path.error(`${describe(v)} is out of range for ${t} (${lo} to ${hi})`);
    return n === 0 ? 0 : n;
  }

  private int64(t: ScalarType, v: unknown): bigint {
    let b: bigint | undefined;
    if (typeof v === "string") {
      if (DECIMAL_INTEGER.test(v)) b = BigInt(v);
      else if (JSON_NUMBER.test(v)) {
        const n = Number(v);
        if (Number.isInteger(n)) b = BigInt(n);
      }
    } else if (typeof v === "number") {
      if (Number.isInteger(v)) b = BigInt(v);
    } else if (typeof v === "bigint") {
      b = v;
    }
    if (b === undefined) throw this.path.error(`expected an integer (a number or a decimal string), got ${describe(v)}`);
    const [lo, hi] = isUnsigned64(t) ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX];
    if (b < lo || b > hi) throw this.path.error(`${describe(v)} is out of range for ${t}`);
    return b;
  }

  // --- well-known types

  private wellKnown(m: MessageModel, json: unknown): Msg {
    const codec = this.types.codec(m);
    const msg = codec.create() as Msg;
    switch (m.fullName) {
      case "google.protobuf.Any":
        return this.any(json, msg);
      case "google.protobuf.Timestamp":
        return this.timestamp(json, msg);
      case "google.protobuf.Duration":
        return this.duration(json, msg);
      case "google.protobuf.FieldMask":
        return this.fieldMask(json, msg);
      case "google.protobuf.Struct":
        return this.struct(json, msg);
      case VALUE:
        return this.value(json, msg);
      case "google.protobuf.ListValue":
        return this.listValue(json, msg);
      default: {
        const f = m.fields[0]!;
        const value = this.singular(f, json, modeOf(f, this.types.int64));
        if (value !== SKIP) msg["value"] = value;
        return msg;
      }
    }
  }

  private any(json: unknown, msg: Msg): Msg {
    if (json === null || typeof json !== "object" || Array.isArray(json)) throw this.path.error(`expected a JSON object for an Any, got ${describe(json)}`);
    const obj = json as Msg;
    const keys = Object.keys(obj);
    if (keys.length === 0) return msg;
    const url = obj["@type"];
    if (typeof url !== "string" || url === "") throw this.path.error(`an Any needs "@type" (for example "type.googleapis.com/pkg.Message"), got ${describe(url)}`);
    const name = url.slice(url.lastIndexOf("/") + 1);
    const inner = this.types.message(name);
    if (inner === undefined) throw this.path.error(`cannot read an Any of type "${url}": ${name} is not in the loaded .proto files; load the file that defines it`);
    let value: Msg;
    if (SPECIAL_WKT.has(inner.fullName)) {
      const extra = keys.find((k) => k !== "@type" && k !== "value");
      if (extra !== undefined) throw this.path.error(`unknown field "${extra}" in an Any of ${inner.fullName}: its JSON form goes under "value"`);
      this.path.push("value");
      value = this.message(inner, obj["value"]);
      this.path.pop();
    } else {
      value = this.types.codec(inner).create() as Msg;
      this.fields(inner, obj, value, "@type");
    }
    msg["typeUrl"] = url;
    msg["value"] = this.types.codec(inner).encode(value);
    return msg;
  }

  private timestamp(json: unknown, msg: Msg): Msg {
    const m = typeof json === "string" ? RFC3339.exec(json) : null;
    if (m === null) throw this.path.error(`expected an RFC 3339 timestamp such as "1972-01-01T10:00:20.021Z", got ${describe(json)}`);
    const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]));
    if (y! < 1 || mo! < 1 || mo! > 12 || d! < 1 || d! > daysInMonth(y!, mo!) || h! > 23 || mi! > 59 || s! > 59) {
      throw this.path.error(`${describe(json)} is not a valid date and time`);
    }
    let offset = 0;
    if (m[9] !== undefined) {
      const oh = Number(m[10]);
      const om = Number(m[11]);
      if (oh > 23 || om > 59) throw this.path.error(`${describe(json)} has an invalid UTC offset`);
      offset = (m[9] === "-" ? -1 : 1) * (oh * 3600 + om * 60);
    }
    const seconds = BigInt(daysFromCivil(y!, mo!, d!)) * 86400n + BigInt(h! * 3600 + mi! * 60 + s!) - BigInt(offset);
    if (seconds < TIMESTAMP_MIN || seconds > TIMESTAMP_MAX) {
      throw this.path.error(`${describe(json)} is outside 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z`);
    }
    msg["seconds"] = seconds; // well-known types are always bigint (see int64Of)
    msg["nanos"] = m[7] === undefined ? 0 : Number(m[7].padEnd(9, "0"));
    return msg;
  }

  private duration(json: unknown, msg: Msg): Msg {
    const m = typeof json === "string" ? /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(json) : null;
    if (m === null) throw this.path.error(`expected a duration such as "1.5s" or "-0.000000001s", got ${describe(json)}`);
    const seconds = BigInt(m[2]!);
    if (seconds > DURATION_MAX) throw this.path.error(`${describe(json)} is outside -315576000000s to 315576000000s`);
    const nanos = m[3] === undefined ? 0 : Number(m[3].padEnd(9, "0"));
    const neg = m[1] === "-";
    msg["seconds"] = neg ? -seconds : seconds;
    msg["nanos"] = neg && nanos !== 0 ? -nanos : nanos;
    return msg;
  }

  private fieldMask(json: unknown, msg: Msg): Msg {
    if (typeof json !== "string") throw this.path.error(`expected a field mask such as "user.displayName,photo", got ${describe(json)}`);
    msg["paths"] =
      json === ""
        ? []
        : json.split(",").map((p) => {
            // An empty path (as in "a,,b") is read as one, as protobuf-es reads it: toJson prints
            // a mask of empty paths that way. What Google's parser refuses (C++
            // CamelCaseToSnakeCase) is an underscore; anything else reads back to what printed it.
            if (p.includes("_")) throw this.path.error(`field mask path ${describe(p)} is not lowerCamelCase: it has an underscore`);
            return p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
          });
    return msg;
  }

  private struct(json: unknown, msg: Msg): Msg {
    if (json === null || typeof json !== "object" || Array.isArray(json)) throw this.path.error(`expected a JSON object for a Struct, got ${describe(json)}`);
    const fields: Msg = {};
    for (const [k, v] of Object.entries(json as Msg)) {
      this.path.push(new MapKey(k));
      setEntry<unknown>(fields, k, this.valueOf(v));
      this.path.pop();
    }
    msg["fields"] = fields;
    return msg;
  }

  private listValue(json: unknown, msg: Msg): Msg {
    if (!Array.isArray(json)) throw this.path.error(`expected a JSON array for a ListValue, got ${describe(json)}`);
    msg["values"] = json.map((v: unknown, i) => {
      this.path.push(i);
      const x = this.valueOf(v);
      this.path.pop();
      return x;
    });
    return msg;
  }

  private value(json: unknown, msg: Msg): Msg {
    msg["kind"] = this.kindOf(json);
    return msg;
  }

  /** A google.protobuf.Value message of any JSON value. */
  private valueOf(json: unknown): Msg {
    const value = this.types.message(VALUE)!;
    return this.value(json, this.types.codec(value).create() as Msg);
  }

  private kindOf(json: unknown): { case: string; value: unknown } {
    if (json === null) return { case: "nullValue", value: 0 };
    switch (typeof json) {
      case "number":
        if (!Number.isFinite(json)) throw this.path.error(`a Value's number must be finite, got ${describe(json)}`);
        return { case: "numberValue", value: json };
      case "string":
        return { case: "stringValue", value: json };
      case "boolean":
        return { case: "boolValue", value: json };
      case "object": {
        if (Array.isArray(json)) {
          const lv = this.types.message("google.protobuf.ListValue")!;
          return { case: "listValue", value: this.listValue(json, this.types.codec(lv).create() as Msg) };
        }
        const st = this.types.message("google.protobuf.Struct")!;
        return { case: "structValue", value: this.struct(json, this.types.codec(st).create() as Msg) };
      }
      default:
        throw this.path.error(`expected a JSON value, got ${describe(json)}`);
    }
  }
}
