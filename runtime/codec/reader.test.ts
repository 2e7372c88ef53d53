import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bytes,
  decodeError,
  errorFacts,
  field,
  fixed32,
  fixed64,
  float32,
  float64,
  overlongVarint,
  tag,
  unhex,
  utf8,
  varint,
  WT,
  zigzag,
} from "../../test/codec/helpers.js";
import { DEFAULT_DEPTH_LIMIT, Reader } from "./reader.js";

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const SIGNED = [0n, 1n, -1n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 32n, 2n ** 53n - 1n, -(2n ** 53n) + 1n, I64_MAX, I64_MIN];
const UNSIGNED = [0n, 1n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 63n, U64_MAX];

function reader(...pieces: Parameters<typeof bytes>): Reader {
  return new Reader(bytes(...pieces));
}

describe("reader - varints", () => {
  it("reader - uint32 reads varints of 1 to 10 bytes, keeping the low 32 bits", () => {
    for (const v of [0n, 1n, 127n, 128n, 16383n, 16384n, 2n ** 28n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 35n + 5n, U64_MAX]) {
      const r = reader(varint(v));
      expect(r.uint32(), `uint32 ${v}`).toBe(Number(v & 0xffffffffn));
      expect(r.pos).toBe(varint(v).length);
    }
  });

  it("reader - overlong varints up to 10 bytes are accepted", () => {
    for (let size = 1; size <= 10; size++) {
      expect(reader(overlongVarint(5, size)).uint32(), `uint32 in ${size} bytes`).toBe(5);
      const r = reader(overlongVarint(5, size));
      r.varint64();
      expect([r.lo, r.hi, r.pos]).toEqual([5, 0, size]);
      expect(reader(overlongVarint(1, size)).bool()).toBe(true);
      expect(reader(overlongVarint(0, size)).bool()).toBe(false);
    }
  });

  it("reader - int32 reads a ten-byte negative varint", () => {
    for (const v of [-1, -2, -(2 ** 31), -12345]) expect(reader(varint(v)).int32(), `int32 ${v}`).toBe(v);
    // A five-byte encoding of a negative int32 (some encoders truncate): still the same int32.
    expect(reader(varint(2 ** 32 - 1)).int32()).toBe(-1);
  });

  it("reader - sint32 unzigzags the int32 edges", () => {
    for (const v of [0, -1, 1, 2 ** 31 - 1, -(2 ** 31)]) {
      expect(reader(varint(zigzag(v) & 0xffffffffn)).sint32(), `sint32 ${v}`).toBe(v);
    }
  });

  it("reader - an 11-byte varint raises VARINT_TOO_LONG at the varint's start", () => {
    const eleven = bytes([0x08], new Array(10).fill(0xff), [0x01]);
    const reads: [string, (r: Reader) => unknown][] = [
      ["uint32", (r) => r.uint32()],
      ["varint64", (r) => r.varint64()],
      ["bool", (r) => r.bool()],
      ["int64", (r) => r.int64()],
      ["skip", (r) => r.skip(WT.VARINT)],
    ];
    for (const [name, read] of reads) {
      const r = new Reader(eleven, 1);
      expect(errorFacts(decodeError(() => read(r))), name).toMatchObject({ code: "VARINT_TOO_LONG", offset: 1 });
    }
  });

  it("reader - a varint cut short raises TRUNCATED at the end of the data", () => {
    for (const read of [(r: Reader) => r.uint32(), (r: Reader) => r.varint64(), (r: Reader) => r.skip(WT.VARINT)]) {
      const r = new Reader(unhex("00 ff ff"), 1);
      expect(errorFacts(decodeError(() => read(r)))).toMatchObject({ code: "TRUNCATED", offset: 3 });
    }
  });
});

describe("reader - 64-bit integers", () => {
  it("reader - bigint forms read the signed and unsigned edges", () => {
    for (const v of SIGNED) {
      expect(reader(varint(v)).int64(), `int64 ${v}`).toBe(v);
      expect(reader(varint(zigzag(v))).sint64(), `sint64 ${v}`).toBe(v);
      expect(reader(fixed64(v)).sfixed64(), `sfixed64 ${v}`).toBe(v);
    }
    for (const v of UNSIGNED) {
      expect(reader(varint(v)).uint64(), `uint64 ${v}`).toBe(v);
      expect(reader(fixed64(v)).fixed64(), `fixed64 ${v}`).toBe(v);
    }
  });

  it("reader - number forms are exact up to 2^53", () => {
    for (const v of SIGNED.filter((x) => x >= -(2n ** 53n) && x <= 2n ** 53n)) {
      expect(reader(varint(v)).int64Number(), `int64Number ${v}`).toBe(Number(v));
      expect(reader(varint(zigzag(v))).sint64Number(), `sint64Number ${v}`).toBe(Number(v));
      expect(reader(fixed64(v)).sfixed64Number(), `sfixed64Number ${v}`).toBe(Number(v));
    }
    for (const v of UNSIGNED.filter((x) => x <= 2n ** 53n)) {
      expect(reader(varint(v)).uint64Number(), `uint64Number ${v}`).toBe(Number(v));
      expect(reader(fixed64(v)).fixed64Number(), `fixed64Number ${v}`).toBe(Number(v));
    }
  });

  // Past 2^53 the number forms lose precision by design, but should round once, to the nearest
  // double, as Number(bigint) and protobufjs do.
  it("reader - number forms past 2^53 return the nearest double", () => {
    const big = [I64_MAX, I64_MIN, 2n ** 53n + 1n, -(2n ** 53n) - 1n, -(2n ** 53n) - 2n, -(2n ** 55n) - 6n, -(2n ** 60n) - 3n];
    for (const v of big) {
      expect(reader(varint(v)).int64Number(), `int64Number ${v}`).toBe(Number(v));
      expect(reader(fixed64(v)).sfixed64Number(), `sfixed64Number ${v}`).toBe(Number(v));
      expect(reader(varint(zigzag(v))).sint64Number(), `sint64Number ${v}`).toBe(Number(v));
    }
    for (const v of [U64_MAX, 2n ** 63n + 1n, 2n ** 53n + 1n]) {
      expect(reader(varint(v)).uint64Number(), `uint64Number ${v}`).toBe(Number(v));
      expect(reader(fixed64(v)).fixed64Number(), `fixed64Number ${v}`).toBe(Number(v));
    }
  });
});

describe("reader - fixed width", () => {
  it("reader - fixed32 and sfixed32", () => {
    for (const v of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff]) {
      expect(reader(fixed32(v)).fixed32()).toBe(v);
      expect(reader(fixed32(v)).sfixed32()).toBe(v | 0);
    }
  });

  it("reader - float and double keep NaN, -0, infinities and subnormals", () => {
    for (const v of [0, -0, Number.NaN, Infinity, -Infinity, Number.MIN_VALUE, -2.2250738585072014e-308, Number.MAX_VALUE]) {
      expect(reader(float64(v)).double()).toBe(v);
    }
    for (const v of [0, -0, Number.NaN, Infinity, -Infinity, 1.401298464324817e-45, 3.4028234663852886e38, Math.fround(0.1)]) {
      expect(reader(float32(v)).float()).toBe(v);
    }
  });

  it("reader - fixed-width reads past the end raise TRUNCATED at the end of the data", () => {
    const reads: [string, (r: Reader) => unknown][] = [
      ["fixed32", (r) => r.fixed32()],
      ["float", (r) => r.float()],
      ["double", (r) => r.double()],
      ["fixed64", (r) => r.fixed64()],
      ["skip fixed32", (r) => r.skip(WT.I32)],
      ["skip fixed64", (r) => r.skip(WT.I64)],
    ];
    for (const [name, read] of reads) {
      const r = new Reader(unhex("00 01 02 03"), 1);
      expect(errorFacts(decodeError(() => read(r))), name).toMatchObject({ code: "TRUNCATED", offset: 4 });
    }
  });
});

describe("reader - bounds", () => {
  it("reader - limit narrows end to the body and the saved end restores it", () => {
    const r = reader(varint(3), [1, 2, 3], [4]);
    const saved = r.limit();
    expect([r.pos, r.end, saved]).toEqual([1, 4, 5]);
    r.pos = r.end;
    r.end = saved;
    expect(errorFacts(decodeError(() => r.fixed32()))).toMatchObject({ code: "TRUNCATED" }); // one byte left
  });

  it("reader - a length past the end raises LENGTH_OUT_OF_RANGE at the length", () => {
    const r = new Reader(bytes([0xaa], varint(5), [1, 2, 3, 4]), 1);
    expect(errorFacts(decodeError(() => r.bytes()))).toMatchObject({ code: "LENGTH_OUT_OF_RANGE", offset: 1 });
    // Bounded by the enclosing body's end, not by the buffer.
    const nested = reader(varint(2), varint(3), [1, 2, 3]);
    nested.limit();
    expect(errorFacts(decodeError(() => nested.bytes()))).toMatchObject({ code: "LENGTH_OUT_OF_RANGE", offset: 1 });
  });

  it("reader - a length of 2^32 or more raises LENGTH_OUT_OF_RANGE, not a wrapped length", () => {
    const r = reader(varint(2n ** 32n + 2n), [1, 2, 3]);
    expect(errorFacts(decodeError(() => r.bytes()))).toMatchObject({ code: "LENGTH_OUT_OF_RANGE", offset: 0 });
  });

  it("reader - bytes are views into the input", () => {
    const input = bytes(varint(3), [7, 8, 9]);
    const b = new Reader(input).bytes();
    expect(b.buffer).toBe(input.buffer);
    expect([...b]).toEqual([7, 8, 9]);
  });

  it("reader - reading at the end raises TRUNCATED instead of returning garbage", () => {
    const r = new Reader(unhex("0102030405"), 0, 2);
    expect(errorFacts(decodeError(() => r.fixed32()))).toMatchObject({ code: "TRUNCATED" });
    r.pos = 2;
    expect(errorFacts(decodeError(() => r.uint32()))).toMatchObject({ code: "TRUNCATED" });
    expect(errorFacts(decodeError(() => r.tag()))).toMatchObject({ code: "TRUNCATED" });
  });
});

describe("reader - strings", () => {
  const valid = ["", "a", "é", "中", "😀", "\uFFFD", "a\u0000b", "\u07ff\u0800\uffff\u{10000}\u{10ffff}"];
  const invalid: [string, string][] = [
    ["lone continuation", "80"],
    ["overlong 2-byte", "c0 80"],
    ["overlong 2-byte c1", "c1 bf"],
    ["overlong 3-byte", "e0 80 80"],
    ["overlong 4-byte", "f0 80 80 80"],
    ["surrogate", "ed a0 80"],
    ["past U+10FFFF", "f4 90 80 80"],
    ["f5 lead", "f5 80 80 80"],
    ["ff byte", "ff"],
    ["truncated 2-byte", "c3"],
    ["truncated 3-byte", "e4 b8"],
    ["truncated 4-byte", "f0 9f 98"],
    ["bad continuation", "e4 28 ad"],
  ];
  // Around the short/long thresholds of the reader (32 bytes) and the writer (48 units).
  const pads = [0, 20, 31, 32, 33, 60, 200];

  it("reader - string decodes valid UTF-8 of every width, short and long", () => {
    for (const s of valid) {
      for (const pad of pads) {
        const str = "p".repeat(pad) + s + "q".repeat(pad % 7);
        const body = utf8(str);
        expect(reader(varint(body.length), body).string(), JSON.stringify(str)).toBe(str);
        expect(reader(varint(body.length), body).stringLenient()).toBe(str);
      }
    }
  });

  it("reader - string raises INVALID_UTF8 at the body's start for every kind of bad sequence", () => {
    for (const [name, bad] of invalid) {
      for (const pad of pads) {
        const body = bytes(utf8("p".repeat(pad)), unhex(bad), utf8("z"));
        const r = new Reader(bytes([0xaa, 0xbb], varint(body.length), body), 2);
        const facts = errorFacts(decodeError(() => r.string()));
        expect(facts, `${name}, pad ${pad}`).toMatchObject({ code: "INVALID_UTF8", offset: 2 + varint(body.length).length });
      }
    }
  });

  it("reader - text that starts wide (decoded in JavaScript) reads like the native decoder, valid or not", () => {
    // Wide text of more than 16 bytes takes utf8DecodeWide up to WIDE_MAX bytes, natively past it.
    const td = new TextDecoder();
    for (const wide of [6, 11, 40, 3000, 12_000]) {
      const pad = "中é".repeat(wide);
      for (const s of valid) {
        const str = pad + s + "q";
        const body = utf8(str);
        expect(reader(varint(body.length), body).string(), `${wide} wide, ${JSON.stringify(s)}`).toBe(str);
        expect(reader(varint(body.length), body).stringLenient()).toBe(str);
      }
      for (const [name, bad] of invalid) {
        const body = bytes(utf8(pad), unhex(bad), utf8("z"));
        const r = new Reader(bytes([0xaa], varint(body.length), body), 1);
        const facts = errorFacts(decodeError(() => r.string()));
        expect(facts, `${name}, ${wide} wide`).toMatchObject({ code: "INVALID_UTF8", offset: 1 + varint(body.length).length });
        expect(reader(varint(body.length), body).stringLenient(), `${name}, ${wide} wide`).toBe(td.decode(body));
      }
    }
  });

  it("reader - stringLenient replaces bad sequences with U+FFFD, as TextDecoder does", () => {
    const td = new TextDecoder();
    for (const [name, bad] of invalid) {
      for (const pad of pads) {
        const body = bytes(utf8("p".repeat(pad)), unhex(bad), utf8("z"));
        const got = reader(varint(body.length), body).stringLenient();
        expect(got, `${name}, pad ${pad}`).toBe(td.decode(body));
      }
    }
  });

  it("reader - short ASCII strings read the same when new and when seen before, at every length", () => {
    // 1 to 16 bytes of ASCII are built by String.fromCharCode on a miss of the intern cache and
    // come from it on a hit; a string that differs from a cached one in any byte is not the hit.
    // 17 to 24 bytes are built the same way, uncached; 25 and more natively.
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 30 }), fc.nat(), (s, at) => {
        const body = utf8(s);
        const r1 = reader(varint(body.length), body).string();
        const r2 = reader(varint(body.length), body).stringLenient();
        expect([r1, r2]).toEqual([s, s]);
        const other = Uint8Array.from(body);
        other[at % other.length] = (other[at % other.length]! + 1) & 0x7f;
        expect(reader(varint(other.length), other).string()).toBe(Buffer.from(other).toString("latin1"));
        // One byte past ASCII anywhere makes it invalid UTF-8 on its own: not a short ASCII string.
        other[at % other.length] = 0x80;
        expect(reader(varint(other.length), other).stringLenient()).toBe(new TextDecoder().decode(other));
      }),
      { numRuns: 500 },
    );
  });

  it("reader - a string body past the end raises LENGTH_OUT_OF_RANGE", () => {
    expect(errorFacts(decodeError(() => reader(varint(4), utf8("abc")).string()))).toMatchObject({ code: "LENGTH_OUT_OF_RANGE", offset: 0 });
  });
});

describe("reader - tags and skipping", () => {
  it("reader - tag raises INVALID_TAG for field number 0 and INVALID_WIRE_TYPE for 6 and 7", () => {
    expect(errorFacts(decodeError(() => new Reader(unhex("aa 00"), 1).tag()))).toMatchObject({ code: "INVALID_TAG", offset: 1 });
    expect(errorFacts(decodeError(() => new Reader(unhex("aa 02"), 1).tag()))).toMatchObject({ code: "INVALID_TAG", offset: 1 });
    expect(errorFacts(decodeError(() => new Reader(unhex("aa 0e"), 1).tag()))).toMatchObject({ code: "INVALID_WIRE_TYPE", offset: 1 });
    expect(errorFacts(decodeError(() => new Reader(unhex("aa 0f"), 1).tag()))).toMatchObject({ code: "INVALID_WIRE_TYPE", offset: 1 });
  });

  it("reader - tag accepts the largest field number and overlong tags", () => {
    expect(reader(tag(536870911, WT.I32)).tag()).toBe(536870911 * 8 + 5);
    expect(reader(overlongVarint(8, 5)).tag()).toBe(8);
  });

  it("reader - skip passes over a field of every wire type", () => {
    const fields = [
      field.varint(1, -1),
      field.fixed64(2, 5n),
      field.len(3, "hello"),
      field.group(4, field.varint(1, 1), field.group(2, field.len(3, "x"))),
      field.fixed32(5, 7),
    ];
    const input = bytes(...fields, [0x99]);
    const r = new Reader(input);
    let pos = 0;
    for (const f of fields) {
      const t = r.tag();
      expect(r.skip(t)).toBe(pos + f.length);
      pos += f.length;
    }
    expect(r.pos).toBe(input.length - 1);
  });

  it("reader - unknown returns the raw field, tag included, as a view", () => {
    const input = bytes([0xaa], field.group(7, field.varint(1, 300)), [0xbb]);
    const r = new Reader(input, 1);
    const t = r.tag();
    const raw = r.unknown(t, 1);
    expect([...raw]).toEqual([...bytes(field.group(7, field.varint(1, 300)))]);
    expect(raw.buffer).toBe(input.buffer);
  });

  it("reader - a group closed by another field's end tag raises INVALID_GROUP", () => {
    const input = bytes(tag(4, WT.SGROUP), field.varint(1, 1), tag(5, WT.EGROUP));
    const r = new Reader(input);
    const t = r.tag();
    expect(errorFacts(decodeError(() => r.skip(t)))).toMatchObject({ code: "INVALID_GROUP", offset: input.length });
  });

  it("reader - an end-group tag without a start raises INVALID_GROUP", () => {
    const r = reader(tag(4, WT.EGROUP));
    const t = r.tag();
    expect(errorFacts(decodeError(() => r.skip(t)))).toMatchObject({ code: "INVALID_GROUP", offset: 1 });
  });

  it("reader - a group the data ends inside raises TRUNCATED", () => {
    const r = reader(tag(4, WT.SGROUP), field.varint(1, 1));
    const t = r.tag();
    expect(errorFacts(decodeError(() => r.skip(t)))).toMatchObject({ code: "TRUNCATED", offset: 3 });
  });

  it("reader - groups nested past the depth limit raise DEPTH_EXCEEDED", () => {
    const nest = (n: number): number[] => (n === 0 ? [] : field.group(1, nest(n - 1)));
    const ok = new Reader(bytes(nest(DEFAULT_DEPTH_LIMIT)));
    expect(ok.skip(ok.tag())).toBe(ok.end);
    const deep = new Reader(bytes(nest(DEFAULT_DEPTH_LIMIT + 1)));
    expect(errorFacts(decodeError(() => deep.skip(deep.tag())))).toMatchObject({ code: "DEPTH_EXCEEDED" });
    const limited = new Reader(bytes(nest(3)), 0, undefined, 2);
    expect(errorFacts(decodeError(() => limited.skip(limited.tag())))).toMatchObject({ code: "DEPTH_EXCEEDED" });
  });

  it("reader - skip of a length-delimited field checks the length", () => {
    const r = reader(tag(1, WT.LEN), varint(10), [1, 2]);
    const t = r.tag();
    expect(errorFacts(decodeError(() => r.skip(t)))).toMatchObject({ code: "LENGTH_OUT_OF_RANGE", offset: 1 });
  });
});

describe("reader - required fields", () => {
  it("reader - missingRequired names the field at the end of the path", () => {
    const r = reader(field.varint(1, 1));
    r.pos = r.end;
    const e = decodeError(() => r.missingRequired("maxCount"));
    expect(e).toMatchObject({ code: "MISSING_REQUIRED", offset: 2, path: ["maxCount"] });
    // Enclosing messages add their fields in front while the error unwinds.
    e.within("t.Limits", undefined).within("t.Holder", "limits[0]");
    expect(e.fieldPath()).toBe("t.Holder.limits[0].maxCount");
    expect(e.message).toContain("t.Holder.limits[0].maxCount");
  });
});
