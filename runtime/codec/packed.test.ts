/**
 * The packed-field methods of Reader and Writer (one call per field) against the value-by-value
 * loops they replace in generated code: the same bytes out, the same values in, and the same
 * DecodeError (code and offset) for a body cut inside a value.
 */
import fc from "fast-check";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { DecodeError } from "./errors.js";
import { Reader } from "./reader.js";
import { Writer } from "./writer.js";

/** One packable type: its packed methods and the single-value methods they stand for. */
interface Case<T> {
  name: string;
  values: fc.Arbitrary<T[]>;
  packedWrite(w: Writer, vs: T[]): void;
  packedRead(r: Reader, out: T[]): void;
  writeOne(w: Writer, v: T): void;
  readOne(r: Reader): T;
}

const I64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const U64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const SAFE = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
const INT32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
/** Long enough to cross the reader's 4 KiB scratch and the writer's 64-byte test slab. */
const list = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.oneof(fc.array(a, { maxLength: 8 }), fc.array(a, { minLength: 500, maxLength: 1200 }));

/** A case, checked against its own value type, then listed with the others. */
const entry = <T>(c: Case<T>): Case<unknown> => c as unknown as Case<unknown>;

const cases: Case<unknown>[] = [
  entry({
    name: "double",
    values: list(fc.double()),
    packedWrite: (w, vs) => w.packedDouble(vs),
    packedRead: (r, o) => r.packedDouble(o),
    writeOne: (w, v) => w.double(v),
    readOne: (r) => r.double(),
  }),
  entry({
    name: "float",
    values: list(fc.float()),
    packedWrite: (w, vs) => w.packedFloat(vs),
    packedRead: (r, o) => r.packedFloat(o),
    writeOne: (w, v) => w.float(v),
    readOne: (r) => r.float(),
  }),
  entry({
    name: "fixed32",
    values: list(fc.integer({ min: 0, max: 2 ** 32 - 1 })),
    packedWrite: (w, vs) => w.packedFixed32(vs),
    packedRead: (r, o) => r.packedFixed32(o),
    writeOne: (w, v) => w.fixed32(v),
    readOne: (r) => r.fixed32(),
  }),
  entry({
    name: "sfixed32",
    values: list(INT32),
    packedWrite: (w, vs) => w.packedSfixed32(vs),
    packedRead: (r, o) => r.packedSfixed32(o),
    writeOne: (w, v) => w.sfixed32(v),
    readOne: (r) => r.sfixed32(),
  }),
  entry({
    name: "fixed64",
    values: list(U64),
    packedWrite: (w, vs) => w.packedFixed64(vs),
    packedRead: (r, o) => r.packedFixed64(o),
    writeOne: (w, v) => w.fixed64(v),
    readOne: (r) => r.fixed64(),
  }),
  entry({
    name: "sfixed64",
    values: list(I64),
    packedWrite: (w, vs) => w.packedSfixed64(vs),
    packedRead: (r, o) => r.packedSfixed64(o),
    writeOne: (w, v) => w.sfixed64(v),
    readOne: (r) => r.sfixed64(),
  }),
  entry({
    name: "fixed64 number",
    values: list(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    packedWrite: (w, vs) => w.packedFixed64Number(vs),
    packedRead: (r, o) => r.packedFixed64Number(o),
    writeOne: (w, v) => w.fixed64Number(v),
    readOne: (r) => r.fixed64Number(),
  }),
  entry({
    name: "sfixed64 number",
    values: list(SAFE),
    packedWrite: (w, vs) => w.packedSfixed64Number(vs),
    packedRead: (r, o) => r.packedSfixed64Number(o),
    writeOne: (w, v) => w.sfixed64Number(v),
    readOne: (r) => r.sfixed64Number(),
  }),
  entry({
    name: "int32",
    values: list(INT32),
    packedWrite: (w, vs) => w.packedInt32(vs),
    packedRead: (r, o) => r.packedInt32(o),
    writeOne: (w, v) => w.int32(v),
    readOne: (r) => r.int32(),
  }),
  entry({
    name: "uint32",
    values: list(fc.integer({ min: 0, max: 2 ** 32 - 1 })),
    packedWrite: (w, vs) => w.packedUint32(vs),
    packedRead: (r, o) => r.packedUint32(o),
    writeOne: (w, v) => w.uint32(v),
    readOne: (r) => r.uint32(),
  }),
  entry({
    name: "sint32",
    values: list(INT32),
    packedWrite: (w, vs) => w.packedSint32(vs),
    packedRead: (r, o) => r.packedSint32(o),
    writeOne: (w, v) => w.sint32(v),
    readOne: (r) => r.sint32(),
  }),
  entry({
    name: "int64",
    values: list(I64),
    packedWrite: (w, vs) => w.packedInt64(vs),
    packedRead: (r, o) => r.packedInt64(o),
    writeOne: (w, v) => w.int64(v),
    readOne: (r) => r.int64(),
  }),
  entry({
    name: "uint64",
    values: list(U64),
    packedWrite: (w, vs) => w.packedUint64(vs),
    packedRead: (r, o) => r.packedUint64(o),
    writeOne: (w, v) => w.uint64(v),
    readOne: (r) => r.uint64(),
  }),
  entry({
    name: "sint64",
    values: list(I64),
    packedWrite: (w, vs) => w.packedSint64(vs),
    packedRead: (r, o) => r.packedSint64(o),
    writeOne: (w, v) => w.sint64(v),
    readOne: (r) => r.sint64(),
  }),
  entry({
    name: "int64 number",
    values: list(fc.oneof(SAFE, INT32)),
    packedWrite: (w, vs) => w.packedInt64Number(vs),
    packedRead: (r, o) => r.packedInt64Number(o),
    writeOne: (w, v) => w.int64Number(v),
    readOne: (r) => r.int64Number(),
  }),
  entry({
    name: "uint64 number",
    values: list(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    packedWrite: (w, vs) => w.packedUint64Number(vs),
    packedRead: (r, o) => r.packedUint64Number(o),
    writeOne: (w, v) => w.uint64Number(v),
    readOne: (r) => r.uint64Number(),
  }),
  entry({
    name: "sint64 number",
    values: list(fc.oneof(SAFE, INT32)),
    packedWrite: (w, vs) => w.packedSint64Number(vs),
    packedRead: (r, o) => r.packedSint64Number(o),
    writeOne: (w, v) => w.sint64Number(v),
    readOne: (r) => r.sint64Number(),
  }),
  entry({
    name: "bool",
    values: list(fc.boolean()),
    packedWrite: (w, vs) => w.packedBool(vs),
    packedRead: (r, o) => r.packedBool(o),
    writeOne: (w, v) => w.bool(v),
    readOne: (r) => r.bool(),
  }),
];

/** The body as generated code wrote it before: a reserved length byte, each value, the length fixed up. */
function oneByOne<T>(c: Case<T>, vs: T[]): Buffer {
  const w = new Writer(64);
  const k = w.fork();
  for (const v of vs) c.writeOne(w, v);
  w.join(k);
  return Buffer.from(w.finish());
}

/** Reads a packed body value by value, as generated code did, or the DecodeError it raises. */
function readOneByOne<T>(c: Case<T>, bytes: Uint8Array): T[] | DecodeError {
  const r = new Reader(bytes);
  const out: T[] = [];
  try {
    const saved = r.limit();
    while (r.pos < r.end) out.push(c.readOne(r));
    r.end = saved;
    return out;
  } catch (e) {
    return e as DecodeError;
  }
}

function readPacked<T>(c: Case<T>, bytes: Uint8Array): T[] | DecodeError {
  const r = new Reader(bytes);
  const out: T[] = [];
  try {
    c.packedRead(r, out);
    expect(r.pos).toBe(bytes.length);
    return out;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return e;
  }
}

/** What a read produced, comparable across the two paths (an error by its code and offset). */
function outcome<T>(x: T[] | DecodeError): unknown {
  return x instanceof DecodeError ? { code: x.code, offset: x.offset, message: x.message } : x;
}

describe("packed fields", () => {
  for (const c of cases) {
    it(`packed ${c.name}: the bytes of the value-by-value loop, and the values back`, () => {
      fc.assert(
        fc.property(c.values, (vs) => {
          const w = new Writer(64);
          c.packedWrite(w, vs);
          const packed = Buffer.from(w.finish());
          expect(packed.toString("hex")).toBe(oneByOne(c, vs).toString("hex"));
          expect(outcome(readPacked(c, packed))).toEqual(outcome(readOneByOne(c, packed)));
        }),
        { numRuns: 60 },
      );
    });

    it(`packed ${c.name}: a body cut anywhere fails as the value-by-value loop does`, () => {
      fc.assert(
        fc.property(c.values, fc.nat(), fc.nat(), (vs, cut, extra) => {
          const body = oneByOne(c, vs).subarray(varintLength(oneByOne(c, vs)));
          // A body whose announced length ends inside a value: shorten it by 1..7 bytes past a cut.
          const end = Math.max(0, Math.min(body.length, cut % (body.length + 1)) - (extra % 8));
          const prefix = new Writer(16);
          prefix.uint32(end);
          const bytes = Buffer.concat([prefix.finish(), body.subarray(0, end)]);
          expect(outcome(readPacked(c, bytes))).toEqual(outcome(readOneByOne(c, bytes)));
        }),
        { numRuns: 60 },
      );
    });
  }

  it("packed int32 reads values written as ten-byte varints and as over-long five-byte ones", () => {
    const w = new Writer(64);
    w.packedInt32([-1, 2 ** 31 - 1, -(2 ** 31), 0, 300]);
    const bytes = w.finish();
    expect(readPacked(cases.find((c) => c.name === "int32")!, bytes)).toEqual([-1, 2 ** 31 - 1, -(2 ** 31), 0, 300]);
  });

  it("int32, single and packed, writes the bytes protobufjs writes (negative: ten bytes)", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(INT32, fc.constantFrom(-1, -(2 ** 31), -1.5, Number.NaN, -0)), { maxLength: 40 }), (vs) => {
        const ours = new Writer(64);
        const theirs = protobuf.Writer.create();
        for (const v of vs) {
          ours.int32(v);
          theirs.int32(v);
        }
        ours.packedInt32(vs);
        theirs.fork();
        for (const v of vs) theirs.int32(v);
        theirs.ldelim();
        expect(Buffer.from(ours.finish()).toString("hex")).toBe(Buffer.from(theirs.finish()).toString("hex"));
      }),
      { numRuns: 200 },
    );
  });

  it("packed int32 refuses a varint past ten bytes as the single-value reader does", () => {
    // -1 as ten bytes with one more continuation byte: eleven bytes, in a body of eleven and of 12.
    const long = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00];
    const int32 = cases.find((c) => c.name === "int32")!;
    for (const body of [long, [...long, 0x05]]) {
      const bytes = Uint8Array.from([body.length, ...body]);
      const packed = readPacked(int32, bytes);
      expect(packed).toBeInstanceOf(DecodeError);
      expect(outcome(packed)).toEqual(outcome(readOneByOne(int32, bytes)));
    }
  });

  it("packed bool reads any varint, non-zero as true, as the single-value reader does", () => {
    const body = [0x00, 0x01, 0x02, 0x80, 0x01, 0x80, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f];
    const bytes = Uint8Array.from([body.length, ...body]);
    const bool = cases.find((c) => c.name === "bool")!;
    expect(readPacked(bool, bytes)).toEqual([false, true, true, true, false, true]);
  });

  it("packed writers refuse what the single-value writers refuse", () => {
    expect(() => new Writer().packedFixed64([-1n])).toThrow(/out of range/);
    expect(() => new Writer().packedSfixed64([2n ** 63n])).toThrow(/out of range/);
    expect(() => new Writer().packedFixed64Number([-1])).toThrow(/negative/);
    expect(() => new Writer().packedInt64([2n ** 63n])).toThrow(/out of range/);
    expect(() => new Writer().packedUint64([-1n])).toThrow(/out of range/);
    expect(() => new Writer().packedSint64([-(2n ** 63n) - 1n])).toThrow(/out of range/);
    expect(() => new Writer().packedInt64Number([1.5])).toThrow(/not an integer/);
    expect(() => new Writer().packedUint64Number([-1])).toThrow(/negative/);
    expect(() => new Writer().packedSint64Number([2 ** 64])).toThrow(/out of range/);
  });
});

/** Bytes taken by the varint at the start of `b`. */
function varintLength(b: Uint8Array): number {
  let i = 0;
  while (b[i]! >= 128) i++;
  return i + 1;
}
