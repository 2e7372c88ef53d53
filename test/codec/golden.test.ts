/**
 * Golden vectors: text-format messages under golden/ encoded by protoc (golden/encode.sh). Meridian
 * must decode each to the value written here by hand, read the same through its view, and, for
 * canonical vectors, re-encode the exact bytes protoc wrote.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  bytes,
  codecOf,
  expectedView,
  field,
  fullMessage,
  GEN_DIRS,
  hex,
  int64sAreSafe,
  listFiles,
  loadCodecs,
  loadSchema,
  materializeView,
  normMeridian,
  toNumberMode,
} from "./helpers.js";

const GOLDEN_DIR = join(import.meta.dirname, "golden");
const root = loadSchema();
const codecs = { bigint: await loadCodecs(GEN_DIRS.bigint), number: await loadCodecs(GEN_DIRS.number) };

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;
const U32_MAX = 2 ** 32 - 1;

/** A golden vector: the message type, the value it holds, and whether protoc's bytes are canonical. */
interface Vector {
  readonly type: string;
  readonly value: Record<string, unknown>;
  /** False when Meridian's canonical encoding legitimately differs from protoc's bytes. */
  readonly canonical?: boolean;
}

const b = (...xs: number[]): Uint8Array => Uint8Array.from(xs);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const oneof = (c: string, value: unknown) => ({ case: c, value });

/** Expected values, by vector file name. Fields not given are at their defaults. */
const VECTORS: Record<string, Vector> = {
  scalars_typical: {
    type: "conformance.Scalars",
    value: {
      doubleValue: 3.141592653589793,
      floatValue: 1.5,
      int32Value: 150,
      int64Value: 1234567890123n,
      uint32Value: 300,
      uint64Value: 9876543210n,
      sint32Value: -75,
      sint64Value: -1234567890123n,
      fixed32Value: 3735928559,
      fixed64Value: 81985529216486895n,
      sfixed32Value: -559038737,
      sfixed64Value: -81985529216486895n,
      boolValue: true,
      stringValue: "héllo, 世界 🚀",
      bytesValue: b(0, 1, 0xfe, 0xff),
    },
  },
  scalars_max: {
    type: "conformance.Scalars",
    value: {
      doubleValue: 1.7976931348623157e308,
      floatValue: 3.4028234663852886e38,
      int32Value: I32_MAX,
      int64Value: I64_MAX,
      uint32Value: U32_MAX,
      uint64Value: U64_MAX,
      sint32Value: I32_MAX,
      sint64Value: I64_MAX,
      fixed32Value: U32_MAX,
      fixed64Value: U64_MAX,
      sfixed32Value: I32_MAX,
      sfixed64Value: I64_MAX,
      boolValue: true,
    },
  },
  scalars_min: {
    type: "conformance.Scalars",
    value: {
      doubleValue: -Number.MIN_VALUE,
      floatValue: 1.401298464324817e-45,
      int32Value: I32_MIN,
      int64Value: I64_MIN,
      sint32Value: I32_MIN,
      sint64Value: I64_MIN,
      sfixed32Value: I32_MIN,
      sfixed64Value: I64_MIN,
      stringValue: "\u0000",
    },
  },
  scalars_negative_one: {
    type: "conformance.Scalars",
    value: {
      doubleValue: -0,
      floatValue: -0,
      int32Value: -1,
      int64Value: -1n,
      sint32Value: -1,
      sint64Value: -1n,
      sfixed32Value: -1,
      sfixed64Value: -1n,
    },
  },
  scalars_infinity: { type: "conformance.Scalars", value: { doubleValue: Infinity, floatValue: -Infinity } },
  scalars_nan: { type: "conformance.Scalars", value: { doubleValue: Number.NaN, floatValue: Number.NaN } },
  scalars_empty: { type: "conformance.Scalars", value: {} },
  optional_zero: {
    type: "conformance.OptionalScalars",
    value: {
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
      bytesValue: b(),
      color: 0,
    },
  },
  repeated: {
    type: "conformance.RepeatedScalars",
    value: {
      doubleValues: [0, -0, 1.5, Infinity, -Infinity, Number.MIN_VALUE],
      floatValues: [0, -2.5, 3.4028234663852886e38],
      int32Values: [0, 1, -1, I32_MAX, I32_MIN],
      int64Values: [0n, -1n, I64_MAX, I64_MIN],
      uint32Values: [0, 127, 128, 16383, 16384, U32_MAX],
      uint64Values: [0n, U64_MAX, 4294967296n],
      sint32Values: [0, -1, 1, I32_MIN, I32_MAX],
      sint64Values: [0n, -1n, 1n, I64_MIN, I64_MAX],
      fixed32Values: [0, U32_MAX],
      fixed64Values: [0n, U64_MAX],
      sfixed32Values: [I32_MIN, I32_MAX],
      sfixed64Values: [I64_MIN, I64_MAX],
      boolValues: [true, false, true],
      stringValues: ["", "a", "中文", "😀"],
      bytesValues: [b(), b(0xff)],
      colors: [1, 0, -1, I32_MAX],
    },
  },
  unpacked: {
    type: "conformance.UnpackedScalars",
    value: {
      doubleValues: [1.5, -0],
      floatValues: [2.5],
      int32Values: [-1, 0, 1],
      int64Values: [I64_MIN],
      uint32Values: [U32_MAX],
      uint64Values: [U64_MAX],
      sint32Values: [-1],
      sint64Values: [-1n],
      fixed32Values: [7],
      fixed64Values: [7n],
      sfixed32Values: [-7],
      sfixed64Values: [-7n],
      boolValues: [false, true],
      colors: [3, -1],
    },
  },
  js_numbers: {
    type: "conformance.JsNumbers",
    value: {
      int64Value: -9007199254740991,
      uint64Value: 9007199254740991,
      sint64Value: -4294967296,
      fixed64Value: 4294967296,
      sfixed64Value: -1,
      optionalInt64: 0,
      int64Values: [1, -1, 9007199254740991],
      uint64Values: [0, U32_MAX],
      defaultInt64: I64_MAX,
    },
  },
  field_numbers: {
    type: "conformance.FieldNumbers",
    value: {
      one: 1,
      fifteen: "15",
      sixteen: "16",
      big2047: -2047n,
      big2048: 2048n,
      big262143: [1, 2],
      big262144: [3],
      big33554431: utf8("a"),
      big33554432: utf8("b"),
      maxField: { int32Value: 536870911 },
      maxFieldMinusOne: 536870910,
    },
  },
  order: {
    type: "conformance.Order",
    value: {
      id: "ord-2024-0001",
      status: 2,
      items: [
        {
          sku: "BOOK-42",
          quantity: 2,
          unitPrice: { currencyCode: "EUR", units: 12n, nanos: 500000000 },
          discounts: [
            { code: "SPRING", percentOff: 10 },
            { code: "LOYAL", percentOff: -5 },
          ],
          status: 3,
        },
        { sku: "PEN-7", quantity: 1 },
      ],
      shipTo: {
        name: "Ada",
        addressLine1: "1 Rue de Rivoli",
        location: { latitude: 48.8566, longitude: 2.3522 },
        region: 2,
      },
      createdAt: { seconds: 1700000000n, nanos: 123000000 },
      labels: { channel: "web", gift: "yes" },
      payment: oneof("card", { last4: "4242", expiryMonth: 12, expiryYear: 2030 }),
      total: { currencyCode: "EUR", units: 25n },
      shippingRegions: [2, 1],
      visibility: 2,
    },
  },
  order_cancelled: {
    type: "conformance.Order",
    value: { status: -1, payment: oneof("cashOnDelivery", false), visibility: 1 },
  },
  order_account: { type: "conformance.Order", value: { payment: oneof("accountId", U64_MAX) } },
  maps: {
    type: "conformance.Maps",
    value: {
      int32ToString: { "1": "one", "2147483647": "max" },
      int64ToInt64: { "0": -1n, "9223372036854775807": I64_MIN },
      uint32ToBytes: { "7": b(7) },
      uint64ToDouble: { "18446744073709551615": -0.5 },
      sint32ToFloat: { "3": 0.25 },
      sint64ToBool: { "4": true },
      fixed32ToUint32: { "4294967295": 1 },
      fixed64ToFixed64: { "1": U64_MAX },
      sfixed32ToSfixed32: { "5": -5 },
      sfixed64ToSint64: { "6": -6n },
      boolToString: { false: "no", true: "yes" },
      stringToMessage: { eur: { currencyCode: "EUR", units: 1n }, zero: {} },
      stringToEnum: { a: 1, b: -1 },
      int32ToImported: { "10": { latitude: 1, longitude: -1 } },
      stringToImportedEnum: { home: 1 },
      stringToBytes: { "": b() },
    },
  },
  maps_negative_keys: {
    type: "conformance.Maps",
    canonical: false,
    value: {
      int32ToString: { "-1": "minus one", "5": "five" },
      sint64ToBool: { "-9223372036854775808": true, "9223372036854775807": false },
      sfixed32ToSfixed32: { "-2147483648": 1, "0": 2 },
    },
  },
  envelope_forwarded: {
    type: "conformance.Envelope",
    value: {
      sender: "alice",
      body: oneof("forwarded", {
        sender: "bob",
        body: oneof("forwarded", {
          sender: "carol",
          body: oneof("point", { latitude: -33.8688, longitude: 151.2093 }),
        }),
        trace: oneof("traceName", "hop-2"),
      }),
      recipients: ["dave", "erin"],
      trace: oneof("traceId", U64_MAX),
    },
  },
  envelope_status: {
    type: "conformance.Envelope",
    value: { body: oneof("status", 0), trace: oneof("traceName", "") },
  },
  category_tree: {
    type: "conformance.Category",
    value: {
      name: "root",
      children: [
        { name: "books", children: [{ name: "fiction" }, { name: "science", parentHint: { name: "books" } }] },
        { name: "music" },
      ],
      bySlug: { books: { name: "books" } },
    },
  },
  expr: {
    type: "conformance.Expr",
    value: {
      kind: oneof("negate", {
        kind: oneof("binary", {
          op: 1,
          left: { kind: oneof("literal", 1n) },
          right: {
            kind: oneof("binary", { op: 2, left: { kind: oneof("literal", 2n) }, right: { kind: oneof("literal", -3n) } }),
          },
        }),
      }),
    },
  },
  keywords: {
    type: "conformance.Keywords",
    value: { type: "t", class: "c", default: 3, constructor$: "ctor", delete: true, toString$: "s" },
  },
  audit_record: {
    type: "conformance.AuditRecord",
    value: {
      at: { seconds: -62135596800n, nanos: 0 },
      elapsed: { seconds: 3n, nanos: -500 },
      detail: { typeUrl: "type.googleapis.com/conformance.Money", value: bytes(field.len(1, "USD"), field.varint(2, 7)) },
      attributes: {
        fields: {
          count: { kind: oneof("numberValue", 2) },
          name: { kind: oneof("stringValue", "x") },
          nested: { kind: oneof("structValue", { fields: { ok: { kind: oneof("boolValue", true) } } }) },
        },
      },
      extra: {
        kind: oneof("listValue", { values: [{ kind: oneof("nullValue", 0) }, { kind: oneof("numberValue", -0.5) }] }),
      },
      tags: { values: [{ kind: oneof("stringValue", "a") }] },
      updateMask: { paths: ["a.b", "c"] },
      nothing: {},
      history: [{ seconds: 1n }, {}],
      timings: { db: { nanos: 1000 } },
      doubleWrapper: { value: 0 },
      floatWrapper: { value: 1.5 },
      int64Wrapper: { value: I64_MIN },
      uint64Wrapper: { value: U64_MAX },
      int32Wrapper: { value: -1 },
      uint32Wrapper: { value: U32_MAX },
      boolWrapper: { value: false },
      stringWrapper: { value: "wrapped" },
      bytesWrapper: { value: b(1) },
    },
  },
  ticket: {
    type: "legacy.Ticket",
    value: {
      id: 1001n,
      title: "Printer on fire",
      assignee: "unassigned",
      priority: 100,
      history: [1, 3],
      historyPacked: [2, 100],
      scores: [-1, 0, 1, I32_MIN],
      checksums: [U64_MAX, 0n],
      votes: [1, -1],
      stateByTeam: { ops: 1, qa: 0 },
      audit: { actor: "bot", atMillis: 1700000000000n },
      comment: [{ text: "on it" }, { text: "fixed", author: "mallory" }],
      parent: { id: 1n, title: "Printers" },
      contact: oneof("phone", { number: "+33 1 23 45 67 89", mobile: false }),
      attachment: b(),
      state: 2,
    },
  },
  ticket_minimal: { type: "legacy.Ticket", value: { id: 0n, title: "" } },
  defaults_set: {
    type: "legacy.Defaults",
    value: {
      doubleValue: -1.5,
      floatValue: 0,
      int32Value: 0,
      int64Value: I64_MIN,
      uint32Value: 1,
      uint64Value: 0n,
      sint32Value: 1,
      sint64Value: -1n,
      fixed32Value: 0,
      fixed64Value: 1n,
      sfixed32Value: 0,
      sfixed64Value: 1n,
      boolValue: false,
      stringValue: "",
      bytesValue: b(),
      priorityValue: 1,
      infValue: 0,
      negInfValue: 1,
      nanValue: 0,
      emptyDefault: "set",
    },
  },
  defaults_absent: { type: "legacy.Defaults", value: {} },
  nested_groups: {
    type: "legacy.Nested",
    value: { outer: { inner: { value: -7, notes: ["a", "b"] }, label: "outer" } },
  },
  legacy_envelope: {
    type: "legacy.Envelope",
    value: { sender: { number: "1" }, recipients: [{ number: "2", mobile: true }, { number: "3" }], text: "hi" },
  },
};

const files = listFiles(GOLDEN_DIR, ".txtpb").map((f) => f.replace(/\.txtpb$/, ""));

describe("golden", () => {
  it("golden - every vector has an expected value and every expected value a vector", () => {
    expect(Object.keys(VECTORS).sort()).toEqual(files);
  });

  it("golden - each vector names the message type its expectation is for", () => {
    for (const name of files) {
      const text = readFileSync(join(GOLDEN_DIR, `${name}.txtpb`), "utf8");
      expect(text, name).toContain(`# proto-message: ${VECTORS[name]!.type}\n`);
    }
  });

  for (const [name, v] of Object.entries(VECTORS)) {
    const type = root.lookupType(v.type);
    const input = () => new Uint8Array(readFileSync(join(GOLDEN_DIR, `${name}.bin`)));
    const expected = fullMessage(type, v.value);

    it(`golden - ${name} decodes to the expected ${v.type}`, () => {
      const decoded = codecOf(codecs.bigint, v.type).decode(input());
      expect(normMeridian(decoded)).toEqual(normMeridian(expected));
    });

    it(`golden - ${name} reads the same through the view`, () => {
      const codec = codecOf(codecs.bigint, v.type);
      const data = input();
      const view = materializeView(type, codec.view(data) as Record<string, unknown>);
      expect(normMeridian(view)).toEqual(normMeridian(expectedView(type, expected, "bigint"), true));
    });

    if (v.canonical !== false) {
      it(`golden - ${name} re-encodes to protoc's bytes`, () => {
        const codec = codecOf(codecs.bigint, v.type);
        const data = input();
        expect(hex(codec.encode(codec.decode(data)))).toBe(hex(data));
        expect(hex(codec.encode(expected))).toBe(hex(data));
      });
    } else {
      it(`golden - ${name} re-encodes to bytes that decode to the same value`, () => {
        const codec = codecOf(codecs.bigint, v.type);
        const again = codec.decode(codec.encode(codec.decode(input())));
        expect(normMeridian(again)).toEqual(normMeridian(expected));
      });
    }

    it(`golden - ${name} decodes with --int64 number`, () => {
      const codec = codecOf(codecs.number, v.type);
      const data = input();
      const decoded = codec.decode(data);
      expect(normMeridian(decoded)).toEqual(normMeridian(toNumberMode(type, expected)));
      // Re-encoding is exact when every 64-bit value is a safe integer.
      if (v.canonical !== false && int64sAreSafe(v.value)) expect(hex(codec.encode(decoded))).toBe(hex(data));
    });
  }
});
