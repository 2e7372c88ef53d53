/**
 * The rules of the generated API that the property tests cannot see, through the generated
 * modules' own types: create() and presence, declared defaults in views, enums, strings of either
 * syntax, bytes as views, encode output ownership, encodeTo, int64 representations, EncodeError.
 */
import { describe, expect, it } from "vitest";
import { EncodeError, Writer } from "meridian-rpc/runtime";
import { Timestamp } from "meridian-rpc/wkt";
import { Color, JsNumbers, OptionalScalars, Scalars } from "./gen/scalars.js";
import { Order, Order_Status, Visibility } from "./gen/catalog.js";
import { Defaults, Priority, State, Ticket } from "./gen/legacy.js";
import { Scalars as ScalarsN, JsNumbers as JsNumbersN } from "./gen-number/scalars.js";
import { allMessageTypes, bytes, codecOf, decodeError, field, fullMessage, GEN_DIRS, hex, loadCodecs, loadSchema, tag, typeName, unhex, varint, WT } from "./helpers.js";

const root = loadSchema();

describe("semantics - create and presence", () => {
  it("semantics - create gives zero values, empty collections and absent optionals", () => {
    expect(Scalars.create()).toEqual({
      doubleValue: 0,
      floatValue: 0,
      int32Value: 0,
      int64Value: 0n,
      uint32Value: 0,
      uint64Value: 0n,
      sint32Value: 0,
      sint64Value: 0n,
      fixed32Value: 0,
      fixed64Value: 0n,
      sfixed32Value: 0,
      sfixed64Value: 0n,
      boolValue: false,
      stringValue: "",
      bytesValue: new Uint8Array(0),
    });
    const o = OptionalScalars.create();
    expect(Object.values(o).every((v) => v === undefined)).toBe(true);
    const order = Order.create({ id: "x" });
    expect(order.id).toBe("x");
    expect(order.items).toEqual([]);
    expect(order.labels).toEqual({});
    expect(order.payment).toBeUndefined();
    expect(order.total).toBeUndefined();
  });

  it("semantics - create does not fill proto2 declared defaults into the message", () => {
    const d = Defaults.create();
    expect(Object.values(d).every((v) => v === undefined)).toBe(true);
    expect(Defaults.encode(d).length).toBe(0);
  });

  it("semantics - explicit presence writes a set field at its zero value, implicit presence does not", () => {
    expect(hex(OptionalScalars.encode(OptionalScalars.create({ int32Value: 0, stringValue: "" })))).toBe(hex(bytes(field.varint(3, 0), field.len(14, ""))));
    expect(Scalars.encode(Scalars.create({ int32Value: 0, stringValue: "" })).length).toBe(0);
    // -0 is not the zero value of a double: it is written.
    expect(hex(Scalars.encode(Scalars.create({ doubleValue: -0 })))).toBe(hex(field.double(1, -0)));
  });

  it("semantics - a oneof member at its zero value is written and decoded as set", () => {
    const bytesOut = Order.encode(Order.create({ payment: { case: "cashOnDelivery", value: false } }));
    expect(hex(bytesOut)).toBe(hex(field.varint(9, false)));
    expect(Order.decode(bytesOut).payment).toEqual({ case: "cashOnDelivery", value: false });
  });
});

describe("semantics - views", () => {
  it("semantics - proto2 view getters return the declared defaults when absent", () => {
    const v = Defaults.view(new Uint8Array(0));
    expect(v.doubleValue).toBe(-1.5);
    expect(v.floatValue).toBe(3.25);
    expect(v.int32Value).toBe(-42);
    expect(v.int64Value).toBe(-(2n ** 63n));
    expect(v.uint32Value).toBe(4294967295);
    expect(v.uint64Value).toBe(2n ** 64n - 1n);
    expect(v.sint32Value).toBe(-(2 ** 31));
    expect(v.sint64Value).toBe(2n ** 63n - 1n);
    expect(v.fixed32Value).toBe(7);
    expect(v.fixed64Value).toBe(1099511627776n);
    expect(v.sfixed32Value).toBe(-7);
    expect(v.sfixed64Value).toBe(-1099511627776n);
    expect(v.boolValue).toBe(true);
    expect(v.stringValue).toBe('héllo "wörld" 🚀\n\t\\');
    // "\000\001\377bin": octal escapes are bytes, not UTF-8 of code points.
    expect(hex(v.bytesValue)).toBe("0001ff62696e");
    expect(v.priorityValue).toBe(Priority.HIGH);
    expect(v.infValue).toBe(Infinity);
    expect(v.negInfValue).toBe(-Infinity);
    expect(v.nanValue).toBeNaN();
    expect(v.emptyDefault).toBeUndefined();
  });

  it("semantics - proto2 view getters read set fields, declared defaults and all", () => {
    const v = Defaults.view(bytes(field.double(1, 2), field.len(15, [9]), field.varint(16, 1)));
    expect([v.doubleValue, hex(v.bytesValue), v.priorityValue]).toEqual([2, "09", Priority.LOW]);
    const t = Ticket.view(bytes(field.varint(1, 1), field.len(2, "t")));
    expect([t.assignee, t.priority, t.escalation]).toEqual(["unassigned", Priority.MEDIUM, undefined]);
  });

  it("semantics - proto3 optional view getters return undefined when absent", () => {
    const v = OptionalScalars.view(bytes(field.varint(3, 0)));
    expect(v.int32Value).toBe(0);
    expect(v.int64Value).toBeUndefined();
    expect(v.color).toBeUndefined();
  });

  it("semantics - a view reads only the fields asked for", () => {
    // A bad string at field 14 does not stop a getter of another field.
    const v = Scalars.view(bytes(field.varint(3, 5), field.len(14, [0xff])));
    expect(v.int32Value).toBe(5);
    expect(decodeError(() => v.stringValue).code).toBe("INVALID_UTF8");
  });
});

describe("semantics - enums", () => {
  it("semantics - generated enums have the proto names and numbers, aliases included", () => {
    expect([Color.INFRARED, Color.ULTRAVIOLET, Order_Status.CANCELLED, Visibility.PUBLIC, Visibility.LISTED]).toEqual([-1, 2147483647, -1, 1, 1]);
    expect([Priority.LOW, Priority.CRITICAL, State.NEW]).toEqual([1, 100, 0]);
  });

  it("semantics - every enum of test/protos is generated with its values", async () => {
    const modules = [await import("./gen/scalars.js"), await import("./gen/catalog.js"), await import("./gen/legacy.js"), await import("./gen/shared/geo.js")];
    const exported = new Map<string, unknown>();
    for (const m of modules) for (const [k, v] of Object.entries(m)) exported.set(k, v);
    const enums: [string, Record<string, number>][] = [];
    const walk = (ns: { nestedArray: unknown[] }, prefix: string): void => {
      for (const n of ns.nestedArray as { name: string; values?: Record<string, number>; nestedArray?: unknown[]; fieldsArray?: unknown }[]) {
        const name = prefix === "" ? n.name : `${prefix}_${n.name}`;
        if (n.values !== undefined && n.fieldsArray === undefined) enums.push([name, n.values]);
        if (n.nestedArray !== undefined && n.fieldsArray !== undefined) walk(n as { nestedArray: unknown[] }, name);
      }
    };
    for (const pkg of ["conformance", "legacy", "shared.geo"]) walk(root.lookup(pkg) as unknown as { nestedArray: unknown[] }, "");
    expect(enums.length).toBeGreaterThan(6);
    for (const [name, values] of enums) {
      const e = exported.get(name) as Record<string, number> | undefined;
      expect(e, name).toBeDefined();
      for (const [k, v] of Object.entries(values)) expect(e![k], `${name}.${k}`).toBe(v);
    }
  });

  it("semantics - an open enum keeps an unknown number, a closed one moves it to unknown fields", () => {
    expect(Order.decode(bytes(field.varint(2, 9))).status).toBe(9);
    const t = Ticket.decode(bytes(field.varint(1, 1), field.len(2, "t"), field.varint(4, 9)));
    expect(t.priority).toBeUndefined();
    expect(t.$unknown?.map((u) => hex(u))).toEqual([hex(field.varint(4, 9))]);
    expect(Ticket.view(bytes(field.varint(1, 1), field.len(2, "t"), field.varint(4, 9))).priority).toBe(Priority.MEDIUM);
  });
});

describe("semantics - strings and bytes", () => {
  const invalid = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0x61, 0xe4, 0xb8]];

  it("semantics - proto3 strings reject invalid UTF-8, proto2 strings replace it with U+FFFD", () => {
    for (const bad of invalid) {
      for (const pad of [0, 40]) {
        const body = bytes(new Array(pad).fill(0x61), bad);
        expect(decodeError(() => Scalars.decode(bytes(field.len(14, body)))).code).toBe("INVALID_UTF8");
        const lenient = new TextDecoder().decode(body);
        expect(lenient).toContain("\uFFFD");
        const t = Ticket.decode(bytes(field.varint(1, 1), field.len(2, body)));
        expect(t.title).toBe(lenient);
        expect(Ticket.view(bytes(field.varint(1, 1), field.len(2, body))).title).toBe(lenient);
      }
    }
  });

  it("semantics - strings with lone surrogates encode as U+FFFD", () => {
    const out = Scalars.encode(Scalars.create({ stringValue: "a\ud800b" }));
    expect(hex(out)).toBe(hex(field.len(14, [0x61, 0xef, 0xbf, 0xbd, 0x62])));
  });

  it("semantics - decoded bytes fields and unknown fields are views into the input", () => {
    const input = bytes(field.len(15, [1, 2, 3]), field.varint(99, 1));
    const m = Scalars.decode(input);
    expect(m.bytesValue.buffer).toBe(input.buffer);
    expect(m.$unknown![0]!.buffer).toBe(input.buffer);
    input[2] = 9;
    expect([...m.bytesValue]).toEqual([9, 2, 3]);
  });
});

describe("semantics - encoding", () => {
  it("semantics - encode results are never rewritten by later encodes", () => {
    const kept: { out: Uint8Array; copy: string }[] = [];
    for (let i = 0; i < 20000; i++) {
      const out = Order.encode(Order.create({ id: `order-${i}`, labels: { n: "x".repeat(i % 300) }, total: { currencyCode: "EUR", units: BigInt(i), nanos: i } }));
      if (i % 7 === 0) kept.push({ out, copy: hex(out) });
    }
    const stale = kept.filter(({ out, copy }) => hex(out) !== copy).length;
    expect(stale).toBe(0);
    expect(new Set(kept.map((k) => k.out.buffer)).size).toBeGreaterThan(1);
  });

  it("semantics - encodeTo appends messages to a caller's writer", () => {
    const w = new Writer(64);
    Scalars.encodeTo(Scalars.create({ int32Value: 1 }), w);
    Scalars.encodeTo(Scalars.create({ stringValue: "é".repeat(100) }), w);
    expect(hex(w.finish())).toBe(hex(bytes(field.varint(3, 1), field.len(14, "é".repeat(100)))));
  });

  it("semantics - an int64 out of range raises EncodeError and leaves the next encode clean", () => {
    expect(() => Scalars.encode(Scalars.create({ stringValue: "before", int64Value: 2n ** 63n }))).toThrow(EncodeError);
    expect(() => Scalars.encode(Scalars.create({ uint64Value: -1n }))).toThrow(EncodeError);
    expect(() => ScalarsN.encode(ScalarsN.create({ int64Value: 1.5 }))).toThrow(EncodeError);
    expect(hex(Scalars.encode(Scalars.create({ int32Value: 1 })))).toBe(hex(field.varint(3, 1)));
  });

  it("semantics - message fields nested past one slab encode like protobufjs", () => {
    const type = root.lookupType("conformance.Category");
    let m: Record<string, unknown> = { name: "leaf" };
    for (let i = 0; i < 50; i++) m = { name: "n".repeat(6000), children: [m, { name: String(i) }] };
    const ours = codecOf(registry, "conformance.Category").encode(fullMessage(type, m));
    expect(ours.length).toBeGreaterThan(256 * 1024);
    expect(hex(ours) === hex(type.encode(m).finish())).toBe(true);
  });
});

const registry = await loadCodecs(GEN_DIRS.bigint);

describe("semantics - 64-bit representations", () => {
  it("semantics - [jstype = JS_NUMBER] fields are numbers with the bigint default", () => {
    const m = JsNumbers.decode(bytes(field.varint(1, -5), field.varint(9, -5)));
    expect(m.int64Value).toBe(-5);
    expect(m.defaultInt64).toBe(-5n);
    expect(JsNumbersN.decode(bytes(field.varint(9, -5))).defaultInt64).toBe(-5);
  });

  it("semantics - --int64 number decodes values past 2^53 to the nearest double", () => {
    const values = [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, -(2n ** 53n) - 2n, -(2n ** 53n) - 3n];
    for (const v of values) {
      const m = ScalarsN.decode(bytes(field.varint(4, v), field.sint(8, v), field.fixed64(12, v)));
      expect([m.int64Value, m.sint64Value, m.sfixed64Value], String(v)).toEqual([Number(v), Number(v), Number(v)]);
    }
    const u = ScalarsN.decode(bytes(field.varint(6, 2n ** 64n - 1n), field.fixed64(10, 2n ** 64n - 1n)));
    expect([u.uint64Value, u.fixed64Value]).toEqual([2 ** 64, 2 ** 64]);
  });

  it("semantics - --int64 number writes safe integers exactly", () => {
    const m = ScalarsN.create({ int64Value: -(2 ** 53 - 1), uint64Value: 2 ** 53 - 1, sint64Value: -1, fixed64Value: 2 ** 32, sfixed64Value: -(2 ** 32) });
    expect(hex(ScalarsN.encode(m))).toBe(hex(bytes(field.varint(4, -(2 ** 53 - 1)), field.varint(6, 2 ** 53 - 1), field.sint(8, -1), field.fixed64(10, 2 ** 32), field.fixed64(12, -(2 ** 32)))));
  });

  it("semantics - well-known types keep bigint whatever --int64 says", () => {
    expect(Timestamp.decode(bytes(field.varint(1, 5))).seconds).toBe(5n);
  });
});

describe("semantics - registry", () => {
  it("semantics - every message type of test/protos has a generated codec in both variants", async () => {
    const number = await loadCodecs(GEN_DIRS.number);
    for (const t of allMessageTypes(root)) {
      expect(registry.has(typeName(t)), typeName(t)).toBe(true);
      expect(number.has(typeName(t)), typeName(t)).toBe(true);
    }
  });

});

describe("helpers - the reference wire builder", () => {
  it("helpers - builds the examples of the protobuf encoding guide", () => {
    expect(hex(bytes(tag(1, WT.VARINT), varint(150)))).toBe(hex(unhex("08 96 01")));
    expect(hex(bytes(field.len(2, "testing")))).toBe(hex(unhex("12 07 74 65 73 74 69 6e 67")));
    expect(hex(bytes(field.len(3, field.varint(1, 150))))).toBe(hex(unhex("1a 03 08 96 01")));
    expect(hex(bytes(field.sint(1, -1), field.sint(1, -2), field.sint(1, 2147483647)))).toBe(hex(unhex("08 01 08 03 08 fe ff ff ff 0f")));
    expect(hex(varint(-2))).toBe("feffffffffffffffff01");
    expect(hex(bytes(field.fixed32(1, 1), field.double(2, 1)))).toBe(hex(unhex("0d 01000000 11 000000000000f03f")));
    expect(hex(bytes(field.group(3, field.varint(1, 1))))).toBe(hex(unhex("1b 08 01 1c")));
  });
});
