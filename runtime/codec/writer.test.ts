import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bytes, fixed32, fixed64, float32, float64, hex, tag, utf8, varint, zigzag, type Piece } from "../../test/codec/helpers.js";
import { EncodeError } from "./errors.js";
import { sharedWriter, varintSize, Writer } from "./writer.js";

/** Runs `write` on a fresh writer with a small slab and returns the finished bytes as hex. */
function written(write: (w: Writer) => void, slabSize = 64): string {
  const w = new Writer(slabSize);
  write(w);
  return hex(w.finish());
}

/** 2^(7k) - 1 and 2^(7k) for every varint size, 32 or 64 bits. */
function varintBoundaries(bits: 32 | 64): bigint[] {
  const max = (1n << BigInt(bits)) - 1n;
  const out = [0n, 1n];
  for (let k = 1; 7 * k < bits; k++) out.push((1n << BigInt(7 * k)) - 1n, 1n << BigInt(7 * k));
  out.push(max - 1n, max);
  return out;
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const SIGNED_64_EDGES = [0n, 1n, -1n, 127n, -128n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 32n, -(2n ** 32n), 2n ** 53n, -(2n ** 53n), I64_MAX, I64_MIN,
  // Either side of the number fast path (|v| < 2^53) that bigint values take.
  2n ** 53n - 1n, -(2n ** 53n - 1n), 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 40n + 12345n, -(2n ** 40n) - 7n];
const UNSIGNED_64_EDGES = [...varintBoundaries(64), 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 52n + 99n, 2n ** 63n];

describe("writer - varints", () => {
  it("writer - uint32 writes every varint size from 1 to 5 bytes", () => {
    for (const v of varintBoundaries(32)) {
      expect(written((w) => w.uint32(Number(v))), `uint32 ${v}`).toBe(hex(varint(v)));
      expect(varint(v).length, `size ${v}`).toBe(varintSize(Number(v)));
    }
  });

  it("writer - tag and tag2 write the one- and two-byte varints of the tags they take", () => {
    for (const t of [0, 1, 8, 127]) expect(written((w) => w.tag(t)), `tag ${t}`).toBe(hex(varint(BigInt(t))));
    for (const t of [128, 129, 255, 1000, 16378, 16383]) expect(written((w) => w.tag2(t)), `tag2 ${t}`).toBe(hex(varint(BigInt(t))));
    // Unchecked, each after a checked write, across slab ends: the message moves to new slabs whole.
    for (let slab = 16; slab <= 40; slab++) {
      const pieces: Piece[] = [];
      const got = written((w) => {
        for (let i = 0; i < 60; i++) {
          if (i % 2 === 0) w.tag(i);
          else w.tag2(200 + i);
          w.uint32(i * 1000);
          pieces.push(varint(i % 2 === 0 ? i : 200 + i), varint(i * 1000));
        }
      }, slab);
      expect(got, `slab ${slab}`).toBe(hex(bytes(...pieces)));
    }
  });

  it("writer - a tag written past the slab's end is not lost silently: the next grow or finish throws", () => {
    // Only code that breaks the writer's contract gets here: a position set by hand to the end.
    const w = new Writer(16);
    w.pos = w.buf.length;
    w.tag2(200);
    expect(() => w.finish()).toThrow(/wrote past its slab/);
    const v = new Writer(16);
    v.pos = v.buf.length;
    v.tag(8);
    expect(() => v.uint32(1)).toThrow(/wrote past its slab/);
  });

  it("writer - varint64 writes every varint size from 1 to 10 bytes", () => {
    const sizes = new Set<number>();
    for (const v of varintBoundaries(64)) {
      const lo = Number(v & 0xffffffffn);
      const hi = Number(v >> 32n);
      expect(written((w) => w.varint64(lo, hi)), `varint64 ${v}`).toBe(hex(varint(v)));
      sizes.add(varint(v).length);
    }
    expect([...sizes].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("writer - int32 writes negative values as ten-byte sign-extended varints", () => {
    for (const v of [-1, -2, -128, -(2 ** 31), 2 ** 31 - 1, 0, 300]) {
      const expected = hex(varint(v));
      expect(written((w) => w.int32(v)), `int32 ${v}`).toBe(expected);
      if (v < 0) expect(expected.length).toBe(20);
    }
  });

  it("writer - sint32 zigzags the int32 edges", () => {
    for (const v of [0, -1, 1, -2, 2, 2 ** 31 - 1, -(2 ** 31), -64, 64]) {
      expect(written((w) => w.sint32(v)), `sint32 ${v}`).toBe(hex(varint(zigzag(v) & 0xffffffffn)));
    }
  });

  it("writer - bool writes one byte", () => {
    expect(written((w) => (w.bool(true), w.bool(false)))).toBe("0100");
  });
});

describe("writer - 64-bit integers", () => {
  it("writer - int64 bigint edges match the reference varint", () => {
    for (const v of SIGNED_64_EDGES) expect(written((w) => w.int64(v)), `int64 ${v}`).toBe(hex(varint(v)));
  });

  it("writer - uint64 bigint edges match the reference varint", () => {
    for (const v of UNSIGNED_64_EDGES) expect(written((w) => w.uint64(v)), `uint64 ${v}`).toBe(hex(varint(v)));
  });

  it("writer - sint64 bigint edges are zigzagged", () => {
    for (const v of SIGNED_64_EDGES) expect(written((w) => w.sint64(v)), `sint64 ${v}`).toBe(hex(varint(zigzag(v))));
  });

  it("writer - fixed64 and sfixed64 bigint edges are little-endian", () => {
    for (const v of UNSIGNED_64_EDGES) expect(written((w) => w.fixed64(v)), `fixed64 ${v}`).toBe(hex(fixed64(v)));
    for (const v of SIGNED_64_EDGES) expect(written((w) => w.sfixed64(v)), `sfixed64 ${v}`).toBe(hex(fixed64(v)));
  });

  it("writer - number forms write the same bytes as bigint forms", () => {
    const signed = [0, 1, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 32, -(2 ** 32), 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 62, -(2 ** 63)];
    for (const v of signed) {
      const b = BigInt(v);
      expect(written((w) => w.int64Number(v)), `int64Number ${v}`).toBe(written((w) => w.int64(b)));
      expect(written((w) => w.sint64Number(v)), `sint64Number ${v}`).toBe(written((w) => w.sint64(b)));
      expect(written((w) => w.sfixed64Number(v)), `sfixed64Number ${v}`).toBe(written((w) => w.sfixed64(b)));
    }
    // 2^64 - 2048 is the largest double below 2^64.
    for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 63, 2 ** 64 - 2048]) {
      const b = BigInt(v);
      expect(written((w) => w.uint64Number(v)), `uint64Number ${v}`).toBe(written((w) => w.uint64(b)));
      expect(written((w) => w.fixed64Number(v)), `fixed64Number ${v}`).toBe(written((w) => w.fixed64(b)));
    }
  });

  it("writer - bigint forms take a number or numeric string as its bigint, and refuse anything else", () => {
    const loose = (w: Writer, m: "int64" | "uint64" | "sint64" | "fixed64" | "sfixed64", v: unknown): void => w[m](v as bigint);
    for (const m of ["int64", "uint64", "sint64", "fixed64", "sfixed64"] as const) {
      for (const v of [0, 7, 2 ** 40, "123456789012"]) {
        expect(written((w) => loose(w, m, v)), `${m} ${v}`).toBe(written((w) => w[m](BigInt(v))));
      }
      for (const v of [1.5, "x", undefined, {}]) expect(() => written((w) => loose(w, m, v)), `${m} ${String(v)}`).toThrow(EncodeError);
    }
  });

  it("writer - bigint forms raise EncodeError out of range", () => {
    const cases: [string, (w: Writer) => void][] = [
      ["int64 2^63", (w) => w.int64(I64_MAX + 1n)],
      ["int64 -2^63-1", (w) => w.int64(I64_MIN - 1n)],
      ["uint64 -1", (w) => w.uint64(-1n)],
      ["uint64 2^64", (w) => w.uint64(U64_MAX + 1n)],
      ["sint64 2^63", (w) => w.sint64(I64_MAX + 1n)],
      ["sint64 -2^63-1", (w) => w.sint64(I64_MIN - 1n)],
      ["fixed64 -1", (w) => w.fixed64(-1n)],
      ["fixed64 2^64", (w) => w.fixed64(U64_MAX + 1n)],
      ["sfixed64 2^63", (w) => w.sfixed64(I64_MAX + 1n)],
      ["sfixed64 -2^63-1", (w) => w.sfixed64(I64_MIN - 1n)],
    ];
    for (const [name, write] of cases) expect(() => write(new Writer(64)), name).toThrow(EncodeError);
  });

  it("writer - number forms raise EncodeError for non-integers", () => {
    const writes: [string, (w: Writer, v: number) => void][] = [
      ["int64Number", (w, v) => w.int64Number(v)],
      ["uint64Number", (w, v) => w.uint64Number(v)],
      ["sint64Number", (w, v) => w.sint64Number(v)],
      ["fixed64Number", (w, v) => w.fixed64Number(v)],
      ["sfixed64Number", (w, v) => w.sfixed64Number(v)],
    ];
    for (const [name, write] of writes) {
      for (const v of [1.5, -0.25, 2 ** 40 + 0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        expect(() => write(new Writer(64), v), `${name}(${v})`).toThrow(EncodeError);
      }
    }
  });

  it("writer - number forms raise EncodeError out of range", () => {
    const cases: [string, (w: Writer) => void][] = [
      ["uint64Number -1", (w) => w.uint64Number(-1)],
      ["uint64Number 2^64", (w) => w.uint64Number(2 ** 64)],
      ["fixed64Number -1", (w) => w.fixed64Number(-1)],
      ["fixed64Number 2^64", (w) => w.fixed64Number(2 ** 64)],
      ["int64Number -2^64", (w) => w.int64Number(-(2 ** 64))],
      ["sint64Number 2^63", (w) => w.sint64Number(2 ** 63)],
      ["sint64Number -2^64", (w) => w.sint64Number(-(2 ** 64))],
      ["sfixed64Number -2^64", (w) => w.sfixed64Number(-(2 ** 64))],
    ];
    for (const [name, write] of cases) expect(() => write(new Writer(64)), name).toThrow(EncodeError);
  });

  // 2^63 is a double; as int64 it is one past the maximum. Writing it as -2^63 is a silent wrong
  // value (the bigint form raises EncodeError for the same number).
  it("writer - int64Number and sfixed64Number raise EncodeError at 2^63 instead of wrapping", () => {
    expect(() => new Writer(64).int64Number(2 ** 63)).toThrow(EncodeError);
    expect(() => new Writer(64).sfixed64Number(2 ** 63)).toThrow(EncodeError);
    expect(() => new Writer(64).int64Number(2 ** 64 - 2048)).toThrow(EncodeError);
  });
});

describe("writer - fixed width", () => {
  it("writer - fixed32 and sfixed32 are little-endian", () => {
    for (const v of [0, 1, 0x12345678, 0xffffffff, 2 ** 31]) expect(written((w) => w.fixed32(v))).toBe(hex(fixed32(v)));
    for (const v of [0, -1, -(2 ** 31), 2 ** 31 - 1]) expect(written((w) => w.sfixed32(v))).toBe(hex(fixed32(v)));
  });

  it("writer - float and double keep NaN, -0, infinities and subnormals", () => {
    const doubles = [0, -0, Number.NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MIN_VALUE, 2.2250738585072014e-308, Number.MAX_VALUE, Math.PI];
    for (const v of doubles) expect(written((w) => w.double(v)), `double ${v}`).toBe(hex(float64(v)));
    const floats = [0, -0, Number.NaN, Infinity, -Infinity, 1.401298464324817e-45, 1.1754942106924411e-38, 3.4028234663852886e38, Math.fround(0.1)];
    for (const v of floats) expect(written((w) => w.float(v)), `float ${v}`).toBe(hex(float32(v)));
  });
});

describe("writer - strings", () => {
  const units = { ascii: "a", two: "é", three: "中", four: "😀", loneHigh: "\ud800", loneLow: "\udc00" };
  // Lengths in UTF-16 units around the 48-unit short-string threshold, and long enough for a
  // two- and a three-byte length prefix.
  const lengths = [0, 1, 42, 43, 47, 48, 49, 50, 127, 128, 129, 5000, 6000, 70000];

  it("writer - string writes UTF-8 of every width across the short/long threshold", () => {
    for (const [name, unit] of Object.entries(units)) {
      for (const n of lengths) {
        const s = unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
        const body = utf8(s);
        expect(written((w) => w.string(s), 1024), `${name} x ${n}`).toBe(hex(bytes(varint(body.length), body)));
      }
    }
  });

  it("writer - string writes lone surrogates as U+FFFD in both paths", () => {
    const samples = ["a\ud800b", "\udfff", "x\ud83d", "\ud83d\ud83d\ude00", "\ude00\ud83d"];
    for (const s of samples) {
      for (const pad of [0, 60]) {
        const str = "p".repeat(pad) + s;
        expect(written((w) => w.string(str)), JSON.stringify(str)).toBe(hex(bytes(varint(utf8(str).length), utf8(str))));
      }
    }
    expect(hex(utf8("\ud800"))).toBe("efbfbd");
  });

  it("writer - string of mixed widths matches TextEncoder", () => {
    const mixed = "aé中😀\ud800".repeat(40);
    for (let n = 0; n <= mixed.length; n += 7) {
      const s = mixed.slice(0, n);
      expect(written((w) => w.string(s)), `prefix ${n}`).toBe(hex(bytes(varint(utf8(s).length), utf8(s))));
    }
  });
});

describe("writer - strings, any mix", () => {
  it("writer - a wide character anywhere among ASCII writes what TextEncoder writes", () => {
    // The loop takes ASCII four units at a time and the rest one by one: any position of a wide
    // unit relative to those groups, at every length around the short-string threshold.
    const wide = ["é", "中", "😀", "\ud800", "\udfff", "\u0080", "\u07ff", "\uffff"];
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...wide), fc.string({ maxLength: 6 })), { maxLength: 12 }), (parts) => {
        const s = parts.join("");
        expect(written((w) => w.string(s), 256)).toBe(hex(bytes(varint(utf8(s).length), utf8(s))));
      }),
      { numRuns: 1000 },
    );
  });

  it("writer - finish hands out Buffers", () => {
    const w = new Writer(64);
    w.string("abc");
    const out = w.finish();
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(out.constructor).toBe(Buffer);
    expect(out.toString("hex")).toBe("03616263");
    expect(out.equals(Buffer.from("03616263", "hex"))).toBe(true);
    expect(Buffer.isBuffer(out.subarray(1))).toBe(true);
  });
});

describe("writer - length-delimited bodies", () => {
  const sizes = [0, 1, 127, 128, 16383, 16384, 2097151, 2097152];

  it("writer - fork and join shift the body across 127/128/16383/16384-byte lengths", () => {
    for (const n of sizes) {
      const body = new Uint8Array(n).map((_, i) => i & 255);
      const got = written((w) => {
        w.uint32(10);
        const k = w.fork();
        w.raw(body);
        w.join(k);
        w.uint32(16);
        w.uint32(1);
      });
      expect(got === hex(bytes(tag(1, 2), varint(n), body, tag(2, 0), [1])), `body ${n}`).toBe(true);
    }
  });

  it("writer - nested forks each get their own length", () => {
    for (const inner of [5, 127, 128, 300, 16384]) {
      for (const after of [0, 1, 200]) {
        const innerBody = new Uint8Array(inner).fill(7);
        const tail = new Uint8Array(after).fill(9);
        const got = written((w) => {
          w.uint32(10);
          const outer = w.fork();
          w.uint32(18);
          const k = w.fork();
          w.raw(innerBody);
          w.join(k);
          w.raw(tail);
          w.join(outer);
        });
        const innerField = bytes(tag(2, 2), varint(inner), innerBody);
        const outerBody = bytes(innerField, tail);
        expect(got === hex(bytes(tag(1, 2), varint(outerBody.length), outerBody)), `inner ${inner}, after ${after}`).toBe(true);
      }
    }
  });

  it("writer - a message bigger than the slab moves to a new slab, forks and all", () => {
    const slab = 64;
    const w = new Writer(slab);
    const prefix = new Uint8Array(40).fill(1);
    const middle = new Uint8Array(100).fill(2);
    const deep = new Uint8Array(300).fill(3);
    w.raw(prefix);
    w.uint32(10);
    const outer = w.fork(); // before the first growth
    w.raw(middle); // grows
    w.uint32(18);
    const inner = w.fork();
    w.raw(deep); // grows again
    w.string("é".repeat(100)); // grows inside the string writer
    w.join(inner);
    w.join(outer);
    const got = w.finish();
    expect(w.buf.length).toBeGreaterThan(slab);
    const innerBody = bytes(deep, varint(200), utf8("é".repeat(100)));
    const outerBody = bytes(middle, tag(2, 2), varint(innerBody.length), innerBody);
    expect(hex(got)).toBe(hex(bytes(prefix, tag(1, 2), varint(outerBody.length), outerBody)));
  });

  it("writer - forkSized/joinSized write the same bytes whatever was reserved, and return what the length took", () => {
    for (const reserved of [1, 2, 3, 4, 5]) {
      for (const n of sizes) {
        const body = new Uint8Array(n).map((_, i) => (i * 7) & 255);
        let took = 0;
        const got = written((w) => {
          w.uint32(10);
          const k = w.forkSized(reserved);
          w.raw(body);
          took = w.joinSized(k, reserved);
          w.uint32(16);
          w.uint32(1);
        });
        expect(got === hex(bytes(tag(1, 2), varint(n), body, tag(2, 0), [1])), `reserved ${reserved}, body ${n}`).toBe(true);
        expect(took, `reserved ${reserved}, body ${n}`).toBe(varintSize(n));
      }
    }
  });

  it("writer - joinSized grows the slab when the length needs more than was reserved and the slab is full", () => {
    // Bodies ending on every position around the slab's end, where the room kept for tags begins.
    for (let n = 230; n <= 260; n++) {
      const w = new Writer(256);
      const k = w.forkSized(1);
      w.raw(new Uint8Array(n).fill(5));
      expect(w.joinSized(k, 1), `body ${n}`).toBe(2);
      expect(hex(w.finish()), `body ${n}`).toBe(hex(bytes(varint(n), new Uint8Array(n).fill(5))));
    }
  });

  it("writer - a huge message gets a slab of about its own size, not eight times its worst case", () => {
    const w = new Writer();
    const s = "x".repeat(20 << 20); // 20 MiB of ASCII: 60 MiB reserved for it as UTF-8 at worst
    w.string(s);
    const out = w.finish();
    expect(out.length).toBe(varintSize(s.length) + s.length);
    expect(w.buf.length).toBeLessThan(2 * 60 * 2 ** 20);
    // Messages of ordinary size still share slabs sized for several of them.
    const v = new Writer(1024);
    v.raw(new Uint8Array(4000));
    expect(v.buf.length).toBeGreaterThanOrEqual(8 * 4000);
  });

  it("writer - join grows the slab when the length needs a byte more than the slab has", () => {
    // Bodies of 128 bytes and more ending on every position around the slab's end (where the room
    // the writer keeps for tags begins): the second length byte needs room the slab may not have.
    for (let n = 200; n <= 260; n++) {
      const w = new Writer(256);
      const k = w.fork();
      w.raw(new Uint8Array(n).fill(5));
      w.join(k);
      expect(hex(w.finish()), `body ${n}`).toBe(hex(bytes(varint(n), new Uint8Array(n).fill(5))));
    }
  });

  it("writer - every write grows the slab when it lands on the slab's end", () => {
    const writes: [string, (w: Writer) => void, Piece][] = [
      ["uint32", (w) => w.uint32(2 ** 32 - 1), varint(2 ** 32 - 1)],
      ["int32", (w) => w.int32(-1), varint(-1)],
      ["bool", (w) => w.bool(true), [1]],
      ["varint64", (w) => w.varint64(0xffffffff, 0xffffffff), varint(-1)],
      ["fixed32", (w) => w.fixed32(0xdeadbeef), fixed32(0xdeadbeef)],
      ["float", (w) => w.float(1.5), float32(1.5)],
      ["double", (w) => w.double(-0), float64(-0)],
      ["fixed64", (w) => w.fixed64(U64_MAX), fixed64(U64_MAX)],
      ["bytes", (w) => w.bytes(new Uint8Array(20).fill(4)), bytes(varint(20), new Uint8Array(20).fill(4))],
      ["short string", (w) => w.string("中".repeat(30)), bytes(varint(90), utf8("中".repeat(30)))],
      ["long string", (w) => w.string("x".repeat(200)), bytes(varint(200), utf8("x".repeat(200)))],
    ];
    for (const [name, write, expected] of writes) {
      for (let fill = 56; fill <= 64; fill++) {
        const w = new Writer(64);
        const pad = new Uint8Array(fill).fill(0xaa);
        w.raw(pad);
        write(w);
        expect(hex(w.finish()), `${name} after ${fill} bytes`).toBe(hex(bytes(pad, expected)));
      }
    }
  });
});

describe("writer - ownership of finished bytes", () => {
  it("writer - finished messages are never rewritten by later messages, across slabs", () => {
    const w = new Writer(1024);
    const kept: { out: Uint8Array; copy: string }[] = [];
    for (let i = 0; i < 5000; i++) {
      w.uint32(10);
      w.string(`message ${i} ${"z".repeat(i % 97)}`);
      w.uint32(16);
      w.uint32(i);
      const out = w.finish();
      kept.push({ out, copy: hex(out) });
    }
    kept.forEach(({ out, copy }, i) => expect(hex(out) === copy, `message ${i}`).toBe(true));
    expect(new Set(kept.map((k) => k.out.buffer)).size).toBeGreaterThan(1);
  });

  it("writer - sharedWriter discards a message left half written by an encoder that threw", () => {
    const w = sharedWriter();
    w.uint32(8);
    w.uint32(1);
    const first = w.finish();
    const w2 = sharedWriter();
    w2.uint32(8);
    expect(() => w2.int64(2n ** 70n)).toThrow(EncodeError);
    const w3 = sharedWriter();
    w3.uint32(16);
    w3.uint32(2);
    expect(hex(w3.finish())).toBe("1002");
    expect(hex(first)).toBe("0801");
  });

  it("writer - discard drops the message in progress and keeps finished ones", () => {
    const w = new Writer(64);
    w.uint32(1);
    const done = w.finish();
    w.uint32(2);
    w.uint32(3);
    expect(w.length).toBe(2);
    w.discard();
    expect(w.length).toBe(0);
    w.uint32(4);
    expect(hex(w.finish())).toBe("04");
    expect(hex(done)).toBe("01");
  });
});
