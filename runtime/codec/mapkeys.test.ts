/**
 * 64-bit map keys: the reader's `int64Key()` family returns a number in [-2^53, 2^53) and the exact
 * decimal string past it, the writer's `int64Key(key)` family writes a key's string as
 * `int64(BigInt(key))` did (the bytes, and the error for a key that is not an integer).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Reader } from "./reader.js";
import { Writer } from "./writer.js";

type Kind = "int64" | "uint64" | "sint64" | "fixed64" | "sfixed64";
const SIGNED = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.bigInt({ min: -(2n ** 53n) - 2n, max: 2n ** 53n + 2n }),
  fc.constantFrom(0n, -1n, 2n ** 53n, -(2n ** 53n), 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n)),
);
const UNSIGNED = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.bigInt({ min: 0n, max: 2n ** 53n + 2n }),
  fc.constantFrom(0n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n),
);
const KINDS: [Kind, fc.Arbitrary<bigint>][] = [
  ["int64", SIGNED],
  ["uint64", UNSIGNED],
  ["sint64", SIGNED],
  ["fixed64", UNSIGNED],
  ["sfixed64", SIGNED],
];

/** The bytes of `v` written as a `kind` value by the bigint writer. */
function valueBytes(kind: Kind, v: bigint): Buffer {
  const w = new Writer(64);
  w[kind](v);
  return Buffer.from(w.finish());
}

describe("64-bit map keys", () => {
  for (const [kind, values] of KINDS) {
    it(`${kind}Key reads a number within 2^53, the exact decimal string past it`, () => {
      fc.assert(
        fc.property(values, (v) => {
          const key = new Reader(valueBytes(kind, v))[`${kind}Key`]();
          // [-2^53, 2^53): every value there is exact in a double.
          expect(typeof key).toBe(v >= -(2n ** 53n) && v < 2n ** 53n ? "number" : "string");
          expect(String(key)).toBe(String(v));
        }),
        { numRuns: 300 },
      );
    });

    it(`${kind}Key writes a key's string as ${kind}(BigInt(key)) does`, () => {
      fc.assert(
        fc.property(values, (v) => {
          const w = new Writer(64);
          w[`${kind}Key`](String(v));
          expect(Buffer.from(w.finish()).toString("hex")).toBe(valueBytes(kind, v).toString("hex"));
        }),
        { numRuns: 300 },
      );
    });
  }

  it("a key not in String(n) form goes through BigInt(key): the same bytes, or the same error", () => {
    for (const key of ["007", " 12 ", "-0", "0x1f", "", "1e3", "1.0", "abc", "9007199254740993", "-9223372036854775808"]) {
      const ours = new Writer(64);
      const theirs = new Writer(64);
      let ourError: unknown;
      let theirError: unknown;
      try {
        ours.int64Key(key);
      } catch (e) {
        ourError = e;
      }
      try {
        theirs.int64(BigInt(key));
      } catch (e) {
        theirError = e;
      }
      expect(ourError?.constructor, key).toBe(theirError?.constructor);
      if (ourError === undefined) expect(Buffer.from(ours.finish()).toString("hex"), key).toBe(Buffer.from(theirs.finish()).toString("hex"));
    }
  });
});
