import { describe, expect, it } from "vitest";
import { LatLng, type LatLngView } from "../../test/codec/gen/shared/geo.js";
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
    /** Tag positions of field 1, from $each. */
    get positions(): number[] {
      const out: number[] = [];
      this.$each(1, (r, _tag, pos) => {
        r.uint32();
        out.push(pos);
      });
      return out;
    }
    /** Field 2 as a LatLng, merging the occurrences after `after`. */
    point(after?: number): LatLngView | undefined {
      return this.$message<LatLngView>(2, 18, LatLng, after);
    }
    /** Whether the field table was built (private; read for the tests below). */
    get indexed(): boolean {
      return this.$s.last !== undefined;
    }
  };
}

const latLng = (v: { latitude?: number; longitude?: number }): { latitude: number; longitude: number } => {
  const p = LatLng.view(LatLng.encode(LatLng.create(v)));
  return { latitude: p.latitude, longitude: p.longitude };
};
const asObject = (p: LatLngView | undefined): { latitude: number; longitude: number } | undefined =>
  p === undefined ? undefined : { latitude: p.latitude, longitude: p.longitude };

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

  it("view - $each passes the position of each occurrence's tag", () => {
    const View = viewClass(5);
    const data = bytes(field.varint(1, 7), field.len(5, [1]), field.varint(1, 9));
    expect(new View(data, 0, data.length, 0).positions).toEqual([0, 5]);
    // Positions are in the whole buffer, not relative to the view.
    const inner = new View(data, 5, data.length, 0);
    expect(inner.positions).toEqual([5]);
  });

  // Messages up to 64 bytes are scanned per getter, larger ones indexed once: the same answers.
  for (const [size, pad, indexed] of [["small", 0, false], ["large", 100, true]] as const) {
    it(`view - a ${size} message reads the last occurrence and merges repeated messages`, () => {
      const View = viewClass(5);
      const a = LatLng.encode({ latitude: 1, longitude: 0 });
      const b = LatLng.encode({ latitude: 0, longitude: 2 });
      const c = LatLng.encode({ latitude: 3, longitude: 0 });
      const head = bytes(field.len(5, new Array<number>(pad).fill(0)));
      const data = bytes(head, field.len(2, [...a]), field.varint(1, 7), field.len(2, [...b]), field.varint(1, 9), field.len(2, [...c]));
      const v = new View(data, 0, data.length, 0);
      expect(v.one).toBe(9);
      expect(v.all).toEqual([7, 9]);
      // Without a bound every occurrence is merged; with one, only those after it.
      expect(asObject(v.point())).toEqual(latLng({ latitude: 3, longitude: 2 }));
      const bAt = head.length + 2 + a.length + 2;
      expect(asObject(v.point(bAt))).toEqual(latLng({ latitude: 3, longitude: 2 }));
      expect(asObject(v.point(bAt + 1))).toEqual(latLng({ latitude: 3 }));
      expect(v.indexed).toBe(indexed);
      // One occurrence: a view of its bytes, in both cases.
      const once = bytes(head, field.varint(1, 4), field.len(2, [...b]));
      const w = new View(once, 0, once.length, 0);
      expect(asObject(w.point())).toEqual(latLng({ longitude: 2 }));
      expect(w.one).toBe(4);
      expect(w.indexed).toBe(indexed);
    });
  }

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
