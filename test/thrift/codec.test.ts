/**
 * The Thrift Binary and Compact codecs against Apache Thrift's own JavaScript library (the
 * `thrift` package): on random values of every field kind, each side decodes what the other
 * encodes, and both encode the same bytes. Then hostile input: random and mutated bytes decode
 * or fail with a DecodeError, never anything else.
 */
import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DecodeError, EncodeError } from "meridian-rpc";
import { Writer, type ThriftStructSchema, type ThriftStructValue, type ThriftTypeSchema } from "meridian-rpc/runtime";
import { MessageType, TType, thriftReader, thriftWriter, type ThriftProtocolName } from "../../runtime/codec/thrift/protocol.js";
import { decodeStruct, encodeStruct, uuidBytes, uuidString } from "../../runtime/codec/thrift/struct.js";
import { loadThriftFiles } from "../../idl/thrift/link.js";
import { ThriftSchemas } from "../../idl/thrift/schema.js";

const require = createRequire(import.meta.url);
// Apache Thrift's Node.js library: CommonJS, untyped.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const apache = require("thrift") as any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const Int64 = createRequire(require.resolve("thrift"))("node-int64") as any; // the Int64 class it uses

const IDL = `
namespace js meridian.test
enum Color { RED = 1, GREEN = 2, BLUE = 7 }
struct Leaf { 1: string name; 2: optional i64 id }
union Choice { 1: i32 number; 2: string text; 3: Leaf leaf }
struct Every {
  1: bool flag
  2: byte tiny
  3: i16 small
  4: i32 medium
  5: i64 large
  6: double ratio
  7: string text
  8: binary blob
  9: uuid key
  10: Color color
  11: list<string> names
  12: set<i32> numbers
  13: map<string, i64> counts
  14: map<i32, Leaf> leaves
  15: list<list<bool>> grid
  16: optional Leaf leaf
  17: Choice choice
  300: list<Leaf> many
  20: map<Color, list<double>> byColor
}
struct Wrapper { 1: required Every every; 2: optional Wrapper next }
`;

const program = loadThriftFiles(["/t/test.thrift"], { includeDirs: ["/t"], readFile: () => IDL });
const schemas = new ThriftSchemas(program);
const Every = schemas.struct("Every", "test.thrift");
const Wrapper = schemas.struct("Wrapper", "test.thrift");

/** A fast-check arbitrary of values of a schema type (structs a few levels deep at most). */
function arb(t: ThriftTypeSchema, depth: number): fc.Arbitrary<unknown> {
  switch (t.t) {
    case "bool":
      return fc.boolean();
    case "byte":
      return fc.integer({ min: -128, max: 127 });
    case "i16":
      return fc.integer({ min: -32768, max: 32767 });
    case "i32":
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case "enum":
      return fc.constantFrom(1, 2, 7);
    case "i64":
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case "double":
      // Not -0: Apache's JS library writes it as +0 (its IEEE 754 writer drops the sign; Python,
      // Java and C++ keep it, as we do: the test "-0 keeps its sign" below).
      return fc.double({ noNaN: true }).filter((d) => !Object.is(d, -0));
    case "string":
      return fc.string({ unit: "binary", maxLength: 40 });
    case "binary":
      return fc.uint8Array({ maxLength: 40 });
    case "uuid":
      return fc.uuid();
    case "list":
    case "set":
      return fc.array(arb(t.elem, depth + 1), { maxLength: depth > 2 ? 0 : 17 });
    case "map":
      return fc.array(fc.tuple(arb(t.key, depth + 1), arb(t.value, depth + 1)), { maxLength: depth > 2 ? 0 : 17 }).map((e) => new Map(e));
    case "struct":
      return structArb(t.struct(), depth + 1);
  }
}

function structArb(s: ThriftStructSchema, depth: number): fc.Arbitrary<ThriftStructValue> {
  if (s.kind === "union") return fc.oneof(...s.fields.map((f) => arb(f.type, depth).map((v) => ({ [f.name]: v }))));
  const fields = s.fields.filter((f) => f.requiredness === "required" || depth < 4);
  return fc.record(
    Object.fromEntries(fields.map((f) => [f.name, f.requiredness === "required" ? arb(f.type, depth) : fc.option(arb(f.type, depth), { nil: undefined })])),
  ) as fc.Arbitrary<ThriftStructValue>;
}

/** Drops absent fields, so that values compare whatever way each side leaves them out. */
function clean(v: unknown): unknown {
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [clean(k), clean(x)]));
  if (Array.isArray(v)) return v.map(clean);
  if (v instanceof Uint8Array) return Uint8Array.from(v);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, clean(x)]));
  return v;
}

const APACHE_PROTOCOL = { binary: apache.TBinaryProtocol, compact: apache.TCompactProtocol } as const;

/** Writes `value` with Apache's protocol, driven by the schema the way its generated code does. */
function apacheEncode(protocol: ThriftProtocolName, schema: ThriftStructSchema, value: ThriftStructValue): Buffer {
  let out: Buffer = Buffer.alloc(0);
  const transport = new apache.TBufferedTransport(undefined, (b: Buffer) => (out = b));
  const p = new APACHE_PROTOCOL[protocol](transport);
  apacheWriteStruct(p, schema, value);
  transport.flush();
  return out;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function apacheWriteStruct(p: any, s: ThriftStructSchema, v: ThriftStructValue): void {
  p.writeStructBegin(s.name);
  for (const f of s.fields) {
    const x = v[f.name];
    if (x === undefined) continue;
    p.writeFieldBegin(f.name, wire(f.type), f.id);
    apacheWrite(p, f.type, x);
    p.writeFieldEnd();
  }
  p.writeFieldStop();
  p.writeStructEnd();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function apacheWrite(p: any, t: ThriftTypeSchema, x: any): void {
  switch (t.t) {
    case "bool": return p.writeBool(x);
    case "byte": return p.writeByte(x);
    case "i16": return p.writeI16(x);
    case "i32": case "enum": return p.writeI32(x);
    case "i64": { const b = Buffer.alloc(8); b.writeBigInt64BE(x); return p.writeI64(new Int64(b)); }
    case "double": return p.writeDouble(x);
    case "string": return p.writeString(x);
    case "binary": return p.writeBinary(Buffer.from(x));
    case "uuid": return p.writeUuid(x);
    case "list": case "set":
      (t.t === "list" ? p.writeListBegin : p.writeSetBegin).call(p, wire(t.elem), x.length);
      for (const e of x) apacheWrite(p, t.elem, e);
      return t.t === "list" ? p.writeListEnd() : p.writeSetEnd();
    case "map":
      p.writeMapBegin(wire(t.key), wire(t.value), x.size);
      for (const [k, val] of x) { apacheWrite(p, t.key, k); apacheWrite(p, t.value, val); }
      return p.writeMapEnd();
    case "struct": return apacheWriteStruct(p, t.struct(), x);
  }
}

/** Reads a struct with Apache's protocol, driven by the schema. */
function apacheDecode(protocol: ThriftProtocolName, schema: ThriftStructSchema, bytes: Uint8Array): ThriftStructValue {
  const transport = new apache.TBufferedTransport();
  transport.inBuf = Buffer.from(bytes);
  transport.writeCursor = bytes.length;
  return apacheReadStruct(new APACHE_PROTOCOL[protocol](transport), schema);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function apacheReadStruct(p: any, s: ThriftStructSchema): ThriftStructValue {
  const out: ThriftStructValue = {};
  p.readStructBegin();
  for (;;) {
    const h = p.readFieldBegin();
    if (h.ftype === TType.STOP) break;
    const f = s.fields.find((x) => x.id === h.fid);
    if (f === undefined || wire(f.type) !== h.ftype) p.skip(h.ftype);
    else out[f.name] = apacheRead(p, f.type);
    p.readFieldEnd();
  }
  p.readStructEnd();
  return out;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function apacheRead(p: any, t: ThriftTypeSchema): unknown {
  switch (t.t) {
    case "bool":
      // Apache's JS TCompactProtocol reads a bool outside a field header (in a list, set or
      // map) as `transport.readByte().value`, always false (thrift 0.24); its own compact writer
      // writes those elements as 1 (true) and 2 (false), as we do, so read them the same way.
      return p instanceof apache.TCompactProtocol && !p.boolValue_.hasBoolValue ? p.readByte() === 1 : p.readBool();
    case "byte": return p.readByte();
    case "i16": return p.readI16();
    case "i32": case "enum": return p.readI32();
    case "i64": return (p.readI64().buffer as Buffer).readBigInt64BE(0);
    case "double": return p.readDouble();
    case "string": return p.readString();
    case "binary": return new Uint8Array(p.readBinary());
    case "uuid": return p.readUuid();
    case "list": case "set": {
      const h = t.t === "list" ? p.readListBegin() : p.readSetBegin();
      const out = [];
      for (let i = 0; i < h.size; i++) out.push(apacheRead(p, t.elem));
      return out;
    }
    case "map": {
      const h = p.readMapBegin();
      const out = new Map();
      for (let i = 0; i < h.size; i++) out.set(apacheRead(p, t.key), apacheRead(p, t.value));
      return out;
    }
    case "struct": return apacheReadStruct(p, t.struct());
  }
}

function wire(t: ThriftTypeSchema): number {
  return { bool: 2, byte: 3, i16: 6, i32: 8, enum: 8, i64: 10, double: 4, string: 11, binary: 11, uuid: 16, list: 15, set: 14, map: 13, struct: 12 }[t.t];
}

function encode(protocol: ThriftProtocolName, schema: ThriftStructSchema, value: ThriftStructValue): Uint8Array {
  const w = new Writer(1024);
  encodeStruct(thriftWriter(protocol, w), schema, value);
  return Uint8Array.from(w.finish());
}

function decode(protocol: ThriftProtocolName, schema: ThriftStructSchema, bytes: Uint8Array): ThriftStructValue {
  const tr = thriftReader(protocol, bytes);
  const v = decodeStruct(tr, schema);
  expect(tr.r.pos, "the whole input is read").toBe(bytes.length);
  return v;
}

for (const protocol of ["binary", "compact"] as const) {
  describe(`thrift ${protocol}`, () => {
    it(`thrift ${protocol} - random values of every field kind: the same bytes as Apache Thrift, and each decodes the other's`, () => {
      fc.assert(
        fc.property(structArb(Wrapper, 0), (value) => {
          const ours = encode(protocol, Wrapper, value);
          const theirs = apacheEncode(protocol, Wrapper, value);
          expect(Buffer.from(ours).equals(theirs)).toBe(true);
          expect(clean(apacheDecode(protocol, Wrapper, ours))).toEqual(clean(value));
          expect(clean(decode(protocol, Wrapper, theirs))).toEqual(clean(value));
        }),
        { numRuns: 300 },
      );
    });

    it(`thrift ${protocol} - -0 keeps its sign, as IEEE 754 big-endian (binary) or little-endian (compact) bytes`, () => {
      const bytes = encode(protocol, Every, { ratio: -0 });
      const sign = protocol === "binary" ? Uint8Array.of(0x80, 0, 0, 0, 0, 0, 0, 0) : Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0x80);
      expect(Buffer.from(bytes).includes(Buffer.from(sign))).toBe(true);
      expect(Object.is(decode(protocol, Every, bytes).ratio, -0)).toBe(true);
    });

    it(`thrift ${protocol} - message envelopes read and written like Apache Thrift's`, () => {
      const w = new Writer(256);
      thriftWriter(protocol, w).messageBegin({ name: "getFeed", type: MessageType.CALL, seqId: 77 });
      const ours = Uint8Array.from(w.finish());
      let theirs: Buffer = Buffer.alloc(0);
      const t = new apache.TBufferedTransport(undefined, (b: Buffer) => (theirs = b));
      const p = new APACHE_PROTOCOL[protocol](t);
      p.writeMessageBegin("getFeed", MessageType.CALL, 77);
      t.flush();
      expect(Buffer.from(ours).equals(theirs)).toBe(true);
      expect(thriftReader(protocol, theirs).messageBegin()).toEqual({ name: "getFeed", type: MessageType.CALL, seqId: 77 });
    });

    it(`thrift ${protocol} - unknown fields and fields of another wire type are skipped; binary is a view into the input`, () => {
      const value = { text: "kept", blob: Uint8Array.of(1, 2, 3), names: ["a"], counts: new Map([["x", 5n]]), leaf: { name: "n" }, flag: true };
      const bytes = encode(protocol, Every, value);
      const Narrow: ThriftStructSchema = { name: "Narrow", kind: "struct", fields: [{ id: 7, name: "text", type: { t: "string" }, requiredness: "default" }, { id: 8, name: "blob", type: { t: "binary" }, requiredness: "default" }, { id: 11, name: "names", type: { t: "i32" }, requiredness: "default" }] };
      const got = decode(protocol, Narrow, bytes);
      expect(clean(got)).toEqual({ text: "kept", blob: Uint8Array.of(1, 2, 3) });
      expect((got.blob as Uint8Array).buffer).toBe(bytes.buffer);
    });

    it(`thrift ${protocol} - a missing required field, a bad union and a value of the wrong type are typed errors`, () => {
      expect(() => encode(protocol, Wrapper, {})).toThrow(EncodeError);
      expect(() => encode(protocol, Every, { choice: {} })).toThrow(/Choice is a union: exactly one field must be set, not 0/);
      expect(() => encode(protocol, Every, { choice: { number: 1, text: "x" } })).toThrow(/exactly one field must be set, not 2/);
      expect(() => encode(protocol, Every, { medium: 2 ** 31 })).toThrow(/test\.Every\.medium: i32: 2147483648 is not an integer of 32 bits/);
      expect(() => encode(protocol, Every, { large: 1 })).toThrow(/expected a bigint/);
      expect(() => encode(protocol, Every, { key: "not-a-uuid" })).toThrow(/is not a uuid/);
      const empty = encode(protocol, Every, {});
      const err = (() => {
        try {
          decode(protocol, Wrapper, empty);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(DecodeError);
      expect(err).toMatchObject({ code: "MISSING_REQUIRED" });
    });

    it(`thrift ${protocol} - containers nested in containers, and the path of an error inside them`, () => {
      const Leaf: ThriftStructSchema = { name: "t.Leaf", kind: "struct", fields: [{ id: 1, name: "n", type: { t: "i32" }, requiredness: "required" }] };
      const Nested: ThriftStructSchema = {
        name: "t.Nested",
        kind: "struct",
        fields: [
          { id: 1, name: "grid", type: { t: "list", elem: { t: "list", elem: { t: "i32" } } }, requiredness: "default" },
          { id: 2, name: "deep", type: { t: "map", key: { t: "i32" }, value: { t: "list", elem: { t: "map", key: { t: "string" }, value: { t: "struct", struct: () => Leaf } } } }, requiredness: "default" },
          { id: 3, name: "sets", type: { t: "set", elem: { t: "set", elem: { t: "string" } } }, requiredness: "default" },
        ],
      };
      const value = {
        grid: [[1, 2], [], [3]],
        deep: new Map([[7, [new Map([["a", { n: 1 }]]), new Map()]]]),
        sets: [["x"], ["y", "z"]],
      };
      expect(decode(protocol, Nested, encode(protocol, Nested, value))).toEqual(value);
      // A Leaf without its required field, deep inside: the error names the way down.
      const Loose: ThriftStructSchema = { ...Leaf, fields: [{ ...Leaf.fields[0]!, requiredness: "optional" }] };
      const LooseNested: ThriftStructSchema = {
        ...Nested,
        fields: [{ ...Nested.fields[1]!, type: { t: "map", key: { t: "i32" }, value: { t: "list", elem: { t: "map", key: { t: "string" }, value: { t: "struct", struct: () => Loose } } } } }],
      };
      const broken = encode(protocol, LooseNested, { deep: new Map([[7, [new Map([["a", {}]])]]]) });
      expect(() => decode(protocol, Nested, broken)).toThrow(DecodeError);
      const e = (() => {
        try {
          decode(protocol, Nested, broken);
        } catch (x) {
          return x as DecodeError;
        }
      })()!;
      expect(e.code).toBe("MISSING_REQUIRED");
      expect(e.message).toContain("t.Nested.deep[0]");
    });

    it(`thrift ${protocol} - random and mutated bytes decode or fail with a DecodeError, never anything else`, () => {
      const valid = fc.sample(structArb(Wrapper, 0), { numRuns: 30, seed: 7 }).map((v) => encode(protocol, Wrapper, v));
      const mutated = fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat()).map(([bytes, edits, cut]) => {
        const b = Uint8Array.from(bytes);
        for (const [at, v] of edits) b[at % b.length] = v;
        return cut % 3 === 0 ? b.subarray(0, cut % (b.length + 1)) : b;
      });
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), mutated), (bytes) => {
          try {
            decodeStruct(thriftReader(protocol, bytes), Wrapper);
          } catch (e) {
            if (!(e instanceof DecodeError)) throw e;
          }
        }),
        { numRuns: 3000 },
      );
    });

    it(`thrift ${protocol} - a container that announces more elements than bytes left is refused before allocating`, () => {
      const w = new Writer(64);
      const tw = thriftWriter(protocol, w);
      tw.structBegin();
      tw.fieldBegin(TType.LIST, 11);
      tw.listBegin(TType.STRING, 2_000_000_000);
      const bytes = Uint8Array.from(w.finish());
      expect(() => decodeStruct(thriftReader(protocol, bytes), Every)).toThrow(expect.objectContaining({ code: "LENGTH_OUT_OF_RANGE" }));
    });
  });
}

it("thrift - uuids convert between text and bytes", () => {
  const text = "00112233-4455-6677-8899-aabbccddeeff";
  expect(uuidString(uuidBytes(text))).toBe(text);
  expect(uuidString(uuidBytes("{00112233-4455-6677-8899-AABBCCDDEEFF}"))).toBe(text);
});
