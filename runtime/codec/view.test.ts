import { describe, expect, it } from "vitest";
import { bytes, field, hex } from "../../test/codec/helpers.js";
import { MessageView, setEntry } from "./view.js";

/** A hand-written view over fields 1 (varint) and `high` (length-delimited), as generated code does. */
function viewClass(high: number) {
  return class extends MessageView {
    protected get $maxField(): number {
      return high;
    }
    get one(): number {
      return this.$field(1, 8)?.uint32() ?? 0;
    }
    get last(): Uint8Array | undefined {
      return this.$field(high, high * 8 + 2)?.bytes();
    }
    get all(): number[] {
      const out: number[] = [];
      this.$each(1, (r) => out.push(r.uint32()));
      return out;
    }
  };
}

describe("view - field lookup", () => {
  it("view - getters read the last occurrence and $each reads every one", () => {
    const View = viewClass(5);
    const data = bytes(field.varint(1, 7), field.len(5, [1]), field.varint(1, 9), field.len(5, [2, 3]));
    const v = new View(data, 0, data.length, 0);
    expect(v.one).toBe(9);
    expect(hex(v.last!)).toBe("0203");
    expect(v.all).toEqual([7, 9]);
  });

  it("view - a view covers only its own bytes", () => {
    const View = viewClass(5);
    const data = bytes(field.varint(1, 1), field.varint(1, 2), field.varint(1, 3));
    const v = new View(data, 2, 4, 0);
    expect(v.all).toEqual([2]);
  });

  // The scan table is an Int32Array indexed by field number: a message declaring field
  // 536870911 allocates 2 GiB (and fills it) on the first getter of every view. Field numbers
  // are sparse; the table should be sized by the number of fields, not the highest number.
  it("view - the field table does not grow with the highest field number", () => {
    const high = 1 << 24; // 64 MiB as an Int32Array; the real maximum, 2^29 - 1, takes 2 GiB
    const View = viewClass(high);
    const data = bytes(field.varint(1, 5), field.len(high, [4]));
    const before = process.memoryUsage().arrayBuffers;
    const v = new View(data, 0, data.length, 0);
    expect(v.one).toBe(5);
    expect(hex(v.last!)).toBe("04");
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown).toBeLessThan(1 << 20);
  });
});

describe("view - setEntry", () => {
  it("view - setEntry keeps __proto__ as an own key without touching the prototype", () => {
    const m: Record<string, number> = {};
    setEntry(m, "__proto__", 1);
    setEntry(m, "a", 2);
    expect(Object.getPrototypeOf(m)).toBe(Object.prototype);
    expect(Object.keys(m)).toEqual(["__proto__", "a"]);
    expect(Object.getOwnPropertyDescriptor(m, "__proto__")?.value).toBe(1);
  });
});
