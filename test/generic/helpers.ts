/**
 * Shared pieces of the generic-call tests: the sets of .proto files that have committed
 * generated code (so a compiled codec can be checked against the generated one), a registry of
 * those generated codecs, random messages built from the codegen model in Meridian's in-memory
 * shape, and view materialisation.
 */
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import fc from "fast-check";
import type { FieldModel, Int64Mode, MessageModel } from "meridian-rpc/codegen";
import { allMessages, resolved } from "../../idl/model.js";
import { type AnyMessageCodec, BizError, Code, RpcError, type Server } from "meridian-rpc";
import { setEntry } from "meridian-rpc/runtime";
import { sleep } from "meridian-rpc/transport";
import { listFiles as listAll } from "../codec/helpers.js";
import { EchoService, StreamService } from "../rpc/gen/echo.js";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** Every file ending in `ext` under `dir` (tests left out), relative to it, sorted. */
export function listFiles(dir: string, ext: string): string[] {
  return listAll(dir, ext).filter((f) => !f.endsWith(".test.ts"));
}

/**
 * Registers generated-code handlers of rpctest.EchoService and rpctest.StreamService
 * (test/rpc/proto/echo.proto) on `server`, pushing the request headers of each Echo call to
 * `seen`: Echo echoes (text "missing": NOT_FOUND, "biz": a BizError) and sets `x-answer`, Get
 * waits `delayMs`, Watch streams three replies, Collect joins the texts, Chat upper-cases each.
 */
export function registerEcho(server: Server, seen: Record<string, string>[] = []): Server {
  server.register(EchoService, {
    echo: (req, ctx) => {
      seen.push({ ...ctx.headers });
      if (req.text === "missing") throw new RpcError(Code.NOT_FOUND, "no such thing");
      if (req.text === "biz") throw new BizError(1001, "out of stock", { sku: "42" });
      if (req.text.startsWith("fail:")) throw new RpcError(Code.FAILED_PRECONDITION, req.text.slice(5));
      ctx.responseHeaders["x-answer"] = "42";
      return { text: req.text, servedBy: "meridian", count: req.delayMs };
    },
    get: async (req, ctx) => {
      await sleep(req.delayMs, ctx.signal);
      return { text: req.text };
    },
    async *watch(req) {
      for (let i = 1; i <= 3; i++) yield { text: req.text, count: i };
    },
  });
  server.register(StreamService, {
    async collect(requests) {
      const texts: string[] = [];
      for await (const r of requests) texts.push(r.text);
      return { text: texts.join(","), count: texts.length };
    },
    async *chat(requests) {
      for await (const r of requests) yield { text: r.text.toUpperCase() };
    },
  });
  return server;
}

/** .proto files with the generated code committed for them, and how it was generated. */
export interface GeneratedSet {
  readonly name: string;
  /** The import root, relative to the repository. */
  readonly includeDir: string;
  /** The files, relative to the import root (undefined: every .proto under it). */
  readonly files?: readonly string[];
  /** Where their generated code is, relative to the repository. */
  readonly genDir: string;
  readonly int64: Int64Mode;
}

/** Every generated set in the repository (see codegen/regen.ts and test/codec/regen.sh). */
export const GENERATED_SETS: readonly GeneratedSet[] = [
  { name: "codegen/testdata", includeDir: "codegen/testdata", genDir: "test/fixtures/gen", int64: "bigint" },
  { name: "proto3_all --int64 number", includeDir: "codegen/testdata", files: ["proto3_all.proto"], genDir: "test/fixtures/gen-number", int64: "number" },
  { name: "proto3_all --int64 string", includeDir: "codegen/testdata", files: ["proto3_all.proto"], genDir: "test/fixtures/gen-string", int64: "string" },
  { name: "test/protos", includeDir: "test/protos", genDir: "test/codec/gen", int64: "bigint" },
  { name: "test/protos --int64 number", includeDir: "test/protos", genDir: "test/codec/gen-number", int64: "number" },
  { name: "bench feed.proto", includeDir: "bench/codec/proto", genDir: "bench/codec/gen", int64: "bigint" },
  { name: "bench feed.proto --int64 number", includeDir: "bench/codec/proto", genDir: "bench/codec/gen-number", int64: "number" },
  { name: "well-known types", includeDir: "idl/wkt", genDir: "runtime/wkt", int64: "bigint" },
];

/** The .proto paths of a set, absolute. */
export function setFiles(set: GeneratedSet): string[] {
  const dir = join(REPO, set.includeDir);
  return (set.files ?? listFiles(dir, ".proto")).map((f) => join(dir, f));
}

/** Generated codecs by type name. */
export type CodecRegistry = ReadonlyMap<string, AnyMessageCodec>;

function isCodec(v: unknown): v is AnyMessageCodec {
  return typeof v === "object" && v !== null && typeof (v as AnyMessageCodec).typeName === "string" && typeof (v as AnyMessageCodec).$write === "function";
}

/** Imports every module under `genDir` (and the runtime's well-known types) and indexes their codecs. */
export async function loadGenerated(genDir: string): Promise<CodecRegistry> {
  const out = new Map<string, AnyMessageCodec>();
  const dirs = [join(REPO, genDir), join(REPO, "runtime/wkt")];
  for (const dir of dirs) {
    for (const f of listFiles(dir, ".ts")) {
      const mod = (await import(pathToFileURL(join(dir, f)).href)) as Record<string, unknown>;
      for (const v of Object.values(mod)) if (isCodec(v) && !out.has(v.typeName)) out.set(v.typeName, v);
    }
  }
  return out;
}

/** The messages declared in `files` (not their imports). */
export function declaredMessages(files: readonly { messages: MessageModel[] }[]): MessageModel[] {
  return files.flatMap((f) => allMessages(f as Parameters<typeof allMessages>[0]));
}

// ---------------------------------------------------------------------------------------------
// Random messages from the model, in the in-memory shape of generated code.

const I32 = fc.integer({ min: -2147483648, max: 2147483647 });
const U32 = fc.integer({ min: 0, max: 4294967295 });
const I64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const U64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: "binary", maxLength: 12 }), fc.constantFrom("", "__proto__", "constructor"));

function edgy<T>(arb: fc.Arbitrary<T>, ...edges: T[]): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: arb, weight: 4 }, { arbitrary: fc.constantFrom(...edges), weight: 1 });
}

/** A 64-bit value in representation `mode`, in the range of `scalar`. */
function int64Arb(scalar: string, mode: Int64Mode): fc.Arbitrary<unknown> {
  const unsigned = scalar === "uint64" || scalar === "fixed64";
  let big = unsigned ? edgy(U64, 0n, 2n ** 64n - 1n, 1n) : edgy(I64, 0n, -1n, -(2n ** 63n), 2n ** 63n - 1n);
  if (mode === "number") big = big.filter((b) => b >= -SAFE && b <= SAFE);
  return big.map((b) => (mode === "bigint" ? b : mode === "number" ? Number(b) : b.toString()));
}

/** Options of messageArb. */
export interface ArbOptions {
  readonly int64: Int64Mode;
  readonly maxDepth: number;
  /** Add a raw unknown field now and then. */
  readonly unknownFields: boolean;
  /**
   * Give well-known types values their JSON form can hold (timestamps in range, values with a
   * kind, field masks of snake_case names, Anys of known types), instead of any value at all.
   */
  readonly validWkt?: boolean;
}

/** One value of `f`'s type (an element for repeated fields, the value for maps). */
function valueArb(f: FieldModel, depth: number, opts: ArbOptions): fc.Arbitrary<unknown> {
  const t = resolved(f.type);
  if (t.kind === "message") return messageArb(t.message, opts, depth + 1);
  if (t.kind === "enum") {
    const known = fc.constantFrom(...t.enum.values.map((v) => v.number));
    // NullValue has one value that JSON can hold (null), whatever number it had.
    return t.enum.closed || t.enum.fullName === "google.protobuf.NullValue" ? known : fc.oneof({ arbitrary: known, weight: 5 }, { arbitrary: I32, weight: 1 });
  }
  const mode = f.cardinality === "map" ? opts.int64 : (f.jstype ?? opts.int64);
  switch (t.scalar) {
    case "double":
      return fc.double();
    case "float":
      return fc.float();
    case "int32":
    case "sint32":
    case "sfixed32":
      return edgy(I32, 0, -1, -2147483648, 2147483647);
    case "uint32":
    case "fixed32":
      return edgy(U32, 0, 4294967295);
    case "bool":
      return fc.boolean();
    case "string":
      return text;
    case "bytes":
      return fc.uint8Array({ maxLength: 12 });
    default:
      return int64Arb(t.scalar, mode);
  }
}

function mapKeyArb(f: FieldModel, opts: ArbOptions): fc.Arbitrary<string> {
  const k = f.mapKey!;
  switch (k) {
    case "string":
      return text;
    case "bool":
      return fc.constantFrom("true", "false");
    case "int32":
    case "sint32":
    case "sfixed32":
      return I32.map(String);
    case "uint32":
    case "fixed32":
      return U32.map(String);
    default:
      return int64Arb(k, "string").map(String);
  }
}

const cache = new WeakMap<MessageModel, Map<string, fc.Arbitrary<Record<string, unknown>>>>();

/** Random messages of `m` as generated code represents them. */
export function messageArb(m: MessageModel, opts: ArbOptions, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const key = `${opts.int64}/${depth}/${opts.maxDepth}/${opts.unknownFields}/${opts.validWkt === true}`;
  let byKey = cache.get(m);
  if (byKey === undefined) cache.set(m, (byKey = new Map()));
  const hit = byKey.get(key);
  if (hit !== undefined) return hit;
  // Recursive types: a lazy arbitrary, so the cache entry exists before the fields are built.
  let built: fc.Arbitrary<Record<string, unknown>> | undefined;
  const lazy = fc.constant(null).chain(() => (built ??= build(m, opts, depth)));
  byKey.set(key, lazy);
  return lazy;
}

function build(m: MessageModel, opts: ArbOptions, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const deep = depth >= opts.maxDepth;
  if (opts.validWkt === true) {
    const wkt = validWkt(m, opts, depth);
    if (wkt !== undefined) return wkt;
  }
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  const oneofs = new Map<string, FieldModel[]>();
  for (const f of m.fields) {
    if (f.oneof !== undefined) {
      const list = oneofs.get(f.oneof.localName) ?? [];
      list.push(f);
      oneofs.set(f.oneof.localName, list);
      continue;
    }
    const isMessage = resolved(f.type).kind === "message";
    if (f.cardinality === "map") {
      parts[f.localName] =
        deep && isMessage
          ? fc.constant({})
          : fc.array(fc.tuple(mapKeyArb(f, opts), valueArb(f, depth, opts)), { maxLength: 3 }).map((entries) => {
              const out: Record<string, unknown> = {};
              for (const [k, v] of entries) setEntry(out, k, v);
              return out;
            });
    } else if (f.cardinality === "repeated") {
      parts[f.localName] = deep && isMessage ? fc.constant([]) : fc.array(valueArb(f, depth, opts), { maxLength: 3 });
    } else if (isMessage) {
      if (f.presence === "required") parts[f.localName] = valueArb(f, deep ? Math.max(depth, opts.maxDepth + 2) : depth, opts);
      else parts[f.localName] = deep ? fc.constant(undefined) : fc.option(valueArb(f, depth, opts), { nil: undefined });
    } else if (f.presence === "explicit") {
      parts[f.localName] = fc.option(valueArb(f, depth, opts), { nil: undefined });
    } else {
      parts[f.localName] = valueArb(f, depth, opts);
    }
  }
  for (const [name, members] of oneofs) {
    const usable = members.filter((f) => !(deep && resolved(f.type).kind === "message"));
    parts[name] =
      usable.length === 0
        ? fc.constant(undefined)
        : fc.option(fc.oneof(...usable.map((f) => valueArb(f, depth, opts).map((value) => ({ case: f.localName, value })))), { nil: undefined });
  }
  if (opts.unknownFields) {
    const used = new Set(m.fields.map((f) => f.number));
    let free = 1;
    while (used.has(free) || m.reservedRanges.some((r) => free >= r.from && free <= r.to)) free++;
    parts["$unknown"] = fc.option(
      fc.integer({ min: 0, max: 300 }).map((v) => [unknownVarint(free, v)]),
      { nil: undefined, freq: 3 },
    );
  }
  return fc.record(parts).map((r) => {
    if (r["$unknown"] === undefined) delete r["$unknown"];
    return r;
  });
}

/** The raw bytes of a varint field `no` holding `v` (an unknown field). */
function unknownVarint(no: number, v: number): Uint8Array {
  const out: number[] = [];
  const put = (x: number): void => {
    while (x > 127) {
      out.push((x & 127) | 128);
      x = Math.floor(x / 128);
    }
    out.push(x);
  };
  put(no * 8);
  put(v);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------------
// Views.

/** Reads every getter of a view of `m`, recursing into message views, as a plain object. */
export function materialize(m: MessageModel, view: unknown): unknown {
  if (view === undefined || view === null) return view;
  const v = view as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (const f of m.fields) {
    const t = resolved(f.type);
    const nested = t.kind === "message" && !f.delimited ? t.message : undefined;
    const one = (x: unknown): unknown => (nested === undefined ? x : materialize(nested, x));
    if (f.oneof !== undefined) {
      const name = f.oneof.localName;
      if (seen.has(name)) continue;
      seen.add(name);
      const o = v[name] as { case: string; value: unknown } | undefined;
      if (o === undefined) out[name] = undefined;
      else {
        const member = f.oneof.fields.find((x) => x.localName === o.case)!;
        const mt = resolved(member.type);
        out[name] = { case: o.case, value: mt.kind === "message" && !member.delimited ? materialize(mt.message, o.value) : o.value };
      }
      continue;
    }
    const x = v[f.localName];
    if (f.cardinality === "repeated") out[f.localName] = (x as unknown[]).map(one);
    else if (f.cardinality === "map") out[f.localName] = Object.fromEntries(Object.entries(x as Record<string, unknown>).map(([k, y]) => [k, one(y)]));
    else out[f.localName] = one(x);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Well-known types with values their JSON form can hold.

const TIMESTAMP = { min: -62135596800n, max: 253402300799n };
const DURATION_MAX = 315576000000n;
const NANOS = fc.integer({ min: 0, max: 999_999_999 });

function fieldMessage(m: MessageModel, name: string): MessageModel {
  const f = m.fields.find((x) => x.localName === name)!;
  return (resolved(f.type) as { message: MessageModel }).message;
}

function validWkt(m: MessageModel, opts: ArbOptions, depth: number): fc.Arbitrary<Record<string, unknown>> | undefined {
  switch (m.fullName) {
    case "google.protobuf.Timestamp":
      return fc.record({ seconds: fc.bigInt(TIMESTAMP), nanos: fc.oneof(NANOS, fc.constantFrom(0, 1_000_000, 5_000)) });
    case "google.protobuf.Duration":
      return fc.record({ seconds: fc.bigInt({ min: -DURATION_MAX, max: DURATION_MAX }), nanos: NANOS }).map(({ seconds, nanos }) => ({
        seconds,
        nanos: seconds < 0n ? -nanos : nanos,
      }));
    case "google.protobuf.FieldMask":
      return fc.record({ paths: fc.array(fc.stringMatching(/^[a-z]{1,4}(_[a-z]{1,3}[0-9]?){0,2}(\.[a-z]{1,4}){0,2}$/), { maxLength: 3 }) });
    case "google.protobuf.Value": {
      const leaf = fc.oneof(
        fc.constant({ case: "nullValue", value: 0 }),
        fc.double({ noNaN: true, noDefaultInfinity: true }).map((value) => ({ case: "numberValue", value })),
        text.map((value) => ({ case: "stringValue", value })),
        fc.boolean().map((value) => ({ case: "boolValue", value })),
      );
      if (depth >= opts.maxDepth) return fc.record({ kind: leaf });
      return fc.record({
        kind: fc.oneof(
          { arbitrary: leaf, weight: 4 },
          { arbitrary: messageArb(fieldMessage(m, "structValue"), opts, depth + 1).map((value) => ({ case: "structValue", value })), weight: 1 },
          { arbitrary: messageArb(fieldMessage(m, "listValue"), opts, depth + 1).map((value) => ({ case: "listValue", value })), weight: 1 },
        ),
      });
    }
    case "google.protobuf.Any": {
      const ts = fc.record({ seconds: fc.bigInt(TIMESTAMP), nanos: NANOS });
      return fc.oneof(
        fc.constant({ typeUrl: "", value: new Uint8Array(0) }),
        ts.map((t) => ({ typeUrl: "type.googleapis.com/google.protobuf.Timestamp", value: encodeTimestamp(t.seconds, t.nanos) })),
      );
    }
    default:
      return undefined;
  }
}

/** A Timestamp's encoding (seconds = 1, nanos = 2), built by hand to keep these helpers codec-free. */
function encodeTimestamp(seconds: bigint, nanos: number): Uint8Array {
  const out: number[] = [];
  const varint = (v: bigint): void => {
    let u = BigInt.asUintN(64, v);
    while (u > 127n) {
      out.push(Number(u & 127n) | 128);
      u >>= 7n;
    }
    out.push(Number(u));
  };
  if (seconds !== 0n) {
    out.push(8);
    varint(seconds);
  }
  if (nanos !== 0) {
    out.push(16);
    varint(BigInt(nanos));
  }
  return Uint8Array.from(out);
}
