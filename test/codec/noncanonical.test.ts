/**
 * Hand-crafted inputs that a conformant encoder may send but Meridian never writes: fields out of
 * order, packed and unpacked mixed up, repeated scalars and split messages, unknown fields,
 * overlong varints. Each must decode to the value protobuf's rules give, re-encode canonically,
 * and protobufjs must read Meridian's re-encoding as it reads the input.
 */
import { describe, expect, it } from "vitest";
import {
  bytes,
  codecOf,
  expectedView,
  field,
  fixed64,
  float64,
  fullMessage,
  GEN_DIRS,
  hex,
  loadCodecs,
  loadSchema,
  materializeView,
  normMeridian,
  normPbjs,
  overlongVarint,
  type Piece,
  tag,
  varint,
  WT,
} from "./helpers.js";

const root = loadSchema();
const codecs = await loadCodecs(GEN_DIRS.bigint);

const U64_MAX = 2n ** 64n - 1n;

/**
 * Decodes `input` as `typeName`, checks the value (completed with defaults), the view, the
 * canonical re-encoding when given, and that protobufjs reads the re-encoding as it reads `input`.
 */
function expectDecode(typeName: string, input: Uint8Array, value: Record<string, unknown>, canonical?: Piece, crossCheck = true): void {
  const type = root.lookupType(typeName);
  const codec = codecOf(codecs, typeName);
  const expected = fullMessage(type, value);
  const decoded = codec.decode(input) as Record<string, unknown>;
  expect(normMeridian(decoded), "decoded value").toEqual(normMeridian(expected));
  const view = materializeView(type, codec.view(input) as Record<string, unknown>);
  expect(normMeridian(view), "view").toEqual(normMeridian(expectedView(type, expected, "bigint"), true));
  const again = codec.encode(decoded);
  if (canonical !== undefined) expect(hex(again), "canonical re-encoding").toBe(hex(bytes(canonical)));
  if (!crossCheck) return;
  const pbjsInput = normPbjs(type, type.decode(input) as unknown as Record<string, unknown>);
  const pbjsAgain = normPbjs(type, type.decode(again) as unknown as Record<string, unknown>);
  expect(pbjsAgain, "protobufjs reads the re-encoding as the input").toEqual(pbjsInput);
}

describe("noncanonical - field order and repetition", () => {
  const scalarFields: [number, Piece, string, unknown][] = [
    [1, field.double(1, 2.5), "doubleValue", 2.5],
    [2, field.float(2, -1.5), "floatValue", -1.5],
    [3, field.varint(3, -3), "int32Value", -3],
    [4, field.varint(4, -4n), "int64Value", -4n],
    [5, field.varint(5, 5), "uint32Value", 5],
    [6, field.varint(6, U64_MAX), "uint64Value", U64_MAX],
    [7, field.sint(7, -7), "sint32Value", -7],
    [8, field.sint(8, -8n), "sint64Value", -8n],
    [9, field.fixed32(9, 9), "fixed32Value", 9],
    [10, field.fixed64(10, 10n), "fixed64Value", 10n],
    [11, field.fixed32(11, -11), "sfixed32Value", -11],
    [12, field.fixed64(12, -12n), "sfixed64Value", -12n],
    [13, field.varint(13, true), "boolValue", true],
    [14, field.len(14, "fourteen"), "stringValue", "fourteen"],
    [15, field.len(15, [1, 5]), "bytesValue", Uint8Array.of(1, 5)],
  ];
  const value = Object.fromEntries(scalarFields.map(([, , k, v]) => [k, v]));
  const canonical = scalarFields.map(([, f]) => f);

  it("noncanonical - fields in reverse order decode and re-encode in field-number order", () => {
    expectDecode("conformance.Scalars", bytes(...[...canonical].reverse()), value, canonical);
  });

  it("noncanonical - fields in a shuffled order, nested messages included", () => {
    // Money: currency_code = 1, units = 2; LineItem: sku = 1, quantity = 2.
    const input = bytes(
      field.len(11, field.varint(2, 5), field.len(1, "EUR")),
      field.varint(2, 1),
      field.len(1, "o-1"),
      field.len(3, field.varint(2, 4), field.len(1, "SKU")),
    );
    expectDecode(
      "conformance.Order",
      input,
      { id: "o-1", status: 1, items: [{ sku: "SKU", quantity: 4 }], total: { currencyCode: "EUR", units: 5n } },
      bytes(field.len(1, "o-1"), field.varint(2, 1), field.len(3, field.len(1, "SKU"), field.varint(2, 4)), field.len(11, field.len(1, "EUR"), field.varint(2, 5))),
    );
  });

  it("noncanonical - a scalar seen twice keeps the last value", () => {
    const input = bytes(
      field.varint(3, 1),
      field.len(14, "first"),
      field.double(1, 1.5),
      field.varint(3, 2),
      field.len(14, "second"),
      field.double(1, -0),
      field.len(15, [1]),
      field.len(15, []),
      field.varint(13, true),
      field.varint(13, false),
    );
    expectDecode("conformance.Scalars", input, { int32Value: 2, stringValue: "second", doubleValue: -0 }, bytes(field.double(1, -0), field.varint(3, 2), field.len(14, "second")));
  });

  it("noncanonical - an implicit-presence field sent at zero decodes to zero and is not re-encoded", () => {
    const input = bytes(field.varint(3, 0), field.len(14, ""), field.double(1, 0), field.varint(6, 0), field.len(15, []));
    expectDecode("conformance.Scalars", input, {}, []);
  });

  it("noncanonical - an explicit-presence field keeps the last value, zero included", () => {
    const input = bytes(field.varint(3, 7), field.varint(3, 0), field.varint(16, 2), field.varint(16, 0));
    expectDecode("conformance.OptionalScalars", input, { int32Value: 0, color: 0 }, bytes(field.varint(3, 0), field.varint(16, 0)));
  });

  it("noncanonical - oneof members seen in turn keep the last member", () => {
    const input = bytes(field.len(2, "text"), field.len(3, [1, 2]), field.varint(5, 9), field.len(12, "trace"), field.fixed64(11, 5n));
    expectDecode("conformance.Envelope", input, { body: { case: "count", value: 9n }, trace: { case: "traceId", value: 5n } }, bytes(field.varint(5, 9), field.fixed64(11, 5n)));
  });

  it("noncanonical - a oneof message member seen twice is merged", () => {
    const input = bytes(field.len(8, field.double(1, 1)), field.len(8, field.double(2, 2)));
    expectDecode("conformance.Envelope", input, { body: { case: "point", value: { latitude: 1, longitude: 2 } } }, bytes(field.len(8, field.double(1, 1), field.double(2, 2))));
  });

  // Protobuf clears a oneof when another member arrives, so the later occurrence is not merged
  // into the earlier one; views merge only the occurrences after the last other member.
  it("noncanonical - a oneof message member after another member starts afresh", () => {
    const input = bytes(field.len(8, field.double(1, 1)), field.len(2, "between"), field.len(8, field.double(2, 2)));
    expectDecode("conformance.Envelope", input, { body: { case: "point", value: { longitude: 2 } } }, bytes(field.len(8, field.double(2, 2))));
  });

  it("noncanonical - a oneof message member merges its occurrences after another member", () => {
    const point = [field.len(8, field.double(1, 1)), field.len(2, "between"), field.len(8, field.double(2, 2)), field.len(3, [7]), field.len(8, field.double(1, 3)), field.len(8, field.double(2, 4))];
    const merged = { body: { case: "point", value: { latitude: 3, longitude: 4 } } };
    expectDecode("conformance.Envelope", bytes(...point), merged, bytes(field.len(8, field.double(1, 3), field.double(2, 4))));
    // The same past the size where views index their fields instead of scanning per getter.
    const sender = "s".repeat(80);
    expectDecode("conformance.Envelope", bytes(field.len(1, sender), ...point), { sender, ...merged });
  });

  it("noncanonical - a oneof message member after another oneof's member still merges", () => {
    const input = bytes(field.len(8, field.double(1, 1)), field.len(12, "trace"), field.len(8, field.double(2, 2)));
    expectDecode("conformance.Envelope", input, { body: { case: "point", value: { latitude: 1, longitude: 2 } }, trace: { case: "traceName", value: "trace" } });
  });

  it("noncanonical - a message field seen twice around other fields merges every occurrence", () => {
    const input = bytes(field.len(11, field.len(1, "EUR")), field.len(1, "order"), field.len(11, field.varint(2, 5)));
    expectDecode("conformance.Order", input, { id: "order", total: { currencyCode: "EUR", units: 5n } });
  });
});

describe("noncanonical - merged messages", () => {
  it("noncanonical - a message field split in two occurrences is merged", () => {
    const ok = bytes(field.len(11, field.len(1, "EUR"), field.varint(3, 1)), field.len(1, "o"), field.len(11, field.varint(2, 5), field.varint(3, 2)));
    expectDecode("conformance.Order", ok, { id: "o", total: { currencyCode: "EUR", units: 5n, nanos: 2 } }, bytes(field.len(1, "o"), field.len(11, field.len(1, "EUR"), field.varint(2, 5), field.varint(3, 2))));
  });

  it("noncanonical - merging recurses into nested messages, repeated fields and maps", () => {
    const first = field.len(3, field.len(1, "books"), field.len(2, field.len(1, "a")), field.len(4, field.len(1, "x"), field.len(2, field.len(1, "X1"))));
    const second = field.len(3, field.len(2, field.len(1, "b")), field.len(3, field.len(1, "deep")), field.len(4, field.len(1, "y"), field.len(2, field.len(1, "Y"))));
    const third = field.len(3, field.len(4, field.len(1, "x"), field.len(2, field.len(1, "X2"))));
    expectDecode("conformance.Category", bytes(first, second, third), {
      parentHint: {
        name: "books",
        children: [{ name: "a" }, { name: "b" }],
        parentHint: { name: "deep" },
        bySlug: { x: { name: "X2" }, y: { name: "Y" } },
      },
    });
  });

  it("noncanonical - a proto2 group seen twice is merged", () => {
    const input = bytes(field.varint(1, 1), field.len(2, "t"), field.group(12, field.len(13, "bot")), field.group(12, field.varint(14, 99)));
    expectDecode("legacy.Ticket", input, { id: 1n, title: "t", audit: { actor: "bot", atMillis: 99n } }, bytes(field.varint(1, 1), field.len(2, "t"), field.group(12, field.len(13, "bot"), field.varint(14, 99))));
  });

  it("noncanonical - nested groups merge at every level", () => {
    const input = bytes(field.group(1, field.group(2, field.varint(3, 1), field.len(4, "a"))), field.group(1, field.group(2, field.len(4, "b")), field.len(5, "L")));
    expectDecode("legacy.Nested", input, { outer: { inner: { value: 1, notes: ["a", "b"] }, label: "L" } }, bytes(field.group(1, field.group(2, field.varint(3, 1), field.len(4, "a"), field.len(4, "b")), field.len(5, "L"))));
  });
});

describe("noncanonical - packed and unpacked", () => {
  it("noncanonical - unpacked elements where packed is declared", () => {
    const input = bytes(
      field.varint(3, 1),
      field.varint(3, -1),
      field.double(1, 0.5),
      field.varint(4, -2n),
      field.fixed32(9, 7),
      field.varint(13, true),
      field.varint(16, 2),
      field.varint(16, -1),
      field.sint(7, -3),
    );
    expectDecode(
      "conformance.RepeatedScalars",
      input,
      { doubleValues: [0.5], int32Values: [1, -1], int64Values: [-2n], sint32Values: [-3], fixed32Values: [7], boolValues: [true], colors: [2, -1] },
      bytes(
        field.len(1, float64(0.5)),
        field.len(3, varint(1), varint(-1)),
        field.len(4, varint(-2n)),
        field.len(7, varint(5)),
        field.len(9, [7, 0, 0, 0]),
        field.len(13, [1]),
        field.len(16, varint(2), varint(-1)),
      ),
    );
  });

  it("noncanonical - packed elements where unpacked is declared", () => {
    const input = bytes(field.len(3, varint(1), varint(-1)), field.len(10, fixed64(1n), fixed64(U64_MAX)), field.len(16, varint(3)));
    expectDecode(
      "conformance.UnpackedScalars",
      input,
      { int32Values: [1, -1], fixed64Values: [1n, U64_MAX], colors: [3] },
      bytes(field.varint(3, 1), field.varint(3, -1), field.fixed64(10, 1n), field.fixed64(10, U64_MAX), field.varint(16, 3)),
    );
  });

  it("noncanonical - packed and unpacked chunks of one field concatenate in order", () => {
    const input = bytes(field.len(3, varint(1), varint(2)), field.len(14, "s"), field.varint(3, 3), field.len(3), field.len(3, varint(4)));
    expectDecode("conformance.RepeatedScalars", input, { int32Values: [1, 2, 3, 4], stringValues: ["s"] }, bytes(field.len(3, varint(1), varint(2), varint(3), varint(4)), field.len(14, "s")));
  });

  it("noncanonical - proto2 packed=true and unpacked fields accept both forms", () => {
    const input = bytes(
      field.varint(1, 5),
      field.len(2, "t"),
      field.len(10, varint(1), varint(2)), // votes: declared unpacked
      field.sint(8, -1), // scores: declared packed
      field.len(6, varint(1), varint(3)), // history: closed enum, declared unpacked
    );
    expectDecode(
      "legacy.Ticket",
      input,
      { id: 5n, title: "t", votes: [1, 2], scores: [-1], history: [1, 3] },
      bytes(field.varint(1, 5), field.len(2, "t"), field.varint(6, 1), field.varint(6, 3), field.len(8, varint(1)), field.varint(10, 1), field.varint(10, 2)),
    );
  });
});

describe("noncanonical - unknown fields", () => {
  const unknowns = [
    field.varint(100, U64_MAX),
    field.fixed64(101, 0x0102030405060708n),
    field.len(102, "payload"),
    field.group(103, field.varint(1, 1), field.group(2, field.len(3, "x")), field.fixed32(4, 4)),
    field.fixed32(104, 0xdeadbeef),
    field.varint(536870911, 1),
  ];

  it("noncanonical - unknown fields of every wire type are kept and re-emitted last, in order", () => {
    const input = bytes(unknowns[0]!, field.varint(3, 1), unknowns[1]!, unknowns[2]!, field.len(14, "s"), unknowns[3]!, unknowns[4]!, unknowns[5]!);
    expectDecode(
      "conformance.Scalars",
      input,
      { int32Value: 1, stringValue: "s", $unknown: unknowns.map((u) => bytes(u)) },
      bytes(field.varint(3, 1), field.len(14, "s"), ...unknowns),
    );
  });

  it("noncanonical - unknown fields are kept in nested messages, groups and map values", () => {
    const input = bytes(
      field.len(11, field.varint(2, 1), unknowns[2]!),
      field.len(6, field.len(1, "k"), field.len(2, "v"), field.varint(3, 9)), // unknown field inside a map entry is dropped
    );
    expectDecode("conformance.Order", input, { labels: { k: "v" }, total: { units: 1n, $unknown: [bytes(unknowns[2]!)] } }, bytes(field.len(6, field.len(1, "k"), field.len(2, "v")), field.len(11, field.varint(2, 1), unknowns[2]!)));
    const ticket = bytes(field.varint(1, 1), field.len(2, "t"), field.group(12, unknowns[3]!, field.len(13, "a")));
    expectDecode("legacy.Ticket", ticket, { id: 1n, title: "t", audit: { actor: "a", $unknown: [bytes(unknowns[3]!)] } }, bytes(field.varint(1, 1), field.len(2, "t"), field.group(12, field.len(13, "a"), unknowns[3]!)));
  });

  it("noncanonical - a message without fields keeps everything as unknown", () => {
    // No protobufjs cross-check: in a message without fields, protobufjs 8 compares an end-group
    // tag with the whole start tag instead of its field number, and rejects every group.
    expectDecode("conformance.Ack", bytes(...unknowns), { $unknown: unknowns.map((u) => bytes(u)) }, bytes(...unknowns), false);
  });

  it("noncanonical - a known field number with another wire type in a map entry is skipped", () => {
    const input = bytes(field.len(1, field.fixed32(1, 1), field.varint(1, 7), field.len(2, "seven")));
    expectDecode("conformance.Maps", input, { int32ToString: { "7": "seven" } }, field.len(1, field.varint(1, 7), field.len(2, "seven")));
  });

  it("noncanonical - closed enum numbers it does not declare go to unknown fields", () => {
    const input = bytes(
      field.varint(1, 1),
      field.len(2, "t"),
      field.varint(4, 7), // priority: 7 is not a Priority
      field.varint(6, 1),
      field.varint(6, 9), // history: 9 is not a Priority
      field.varint(6, 3),
      field.len(7, varint(2), varint(50), varint(100)), // history_packed: 50 is not a Priority
      field.len(11, field.len(1, "ops"), field.varint(2, 5)), // state_by_team: 5 is not a State
      field.varint(22, -1), // state: -1 is not a State
    );
    const unknown = [field.varint(4, 7), field.varint(6, 9), field.varint(7, 50), field.len(11, field.len(1, "ops"), field.varint(2, 5)), field.varint(22, -1)];
    expectDecode(
      "legacy.Ticket",
      input,
      { id: 1n, title: "t", history: [1, 3], historyPacked: [2, 100], $unknown: unknown.map((u) => bytes(u)) },
      bytes(field.varint(1, 1), field.len(2, "t"), field.varint(6, 1), field.varint(6, 3), field.len(7, varint(2), varint(100)), ...unknown),
    );
  });

  it("noncanonical - open enum numbers it does not declare are kept", () => {
    const input = bytes(field.varint(2, 42), field.len(12, varint(7), varint(-5)), field.varint(13, 2147483647));
    expectDecode("conformance.Order", input, { status: 42, shippingRegions: [7, -5], visibility: 2147483647 }, input);
  });
});

describe("noncanonical - varints", () => {
  it("noncanonical - overlong varints up to ten bytes are accepted everywhere", () => {
    const input = bytes(
      overlongVarint(3 * 8, 3), // tag of int32_value in three bytes
      overlongVarint(5, 10),
      tag(6, WT.VARINT),
      overlongVarint(1n, 10),
      tag(14, WT.LEN),
      overlongVarint(2, 4), // string length in four bytes
      [0x68, 0x69],
      tag(13, WT.VARINT),
      overlongVarint(1, 2),
      tag(7, WT.VARINT),
      overlongVarint(3, 6), // sint32 -2
    );
    expectDecode("conformance.Scalars", input, { int32Value: 5, uint64Value: 1n, stringValue: "hi", boolValue: true, sint32Value: -2 }, bytes(field.varint(3, 5), field.varint(6, 1), field.sint(7, -2), field.varint(13, true), field.len(14, "hi")));
  });

  it("noncanonical - bool accepts any non-zero varint as true and an overlong zero as false", () => {
    expectDecode("conformance.Scalars", bytes(field.varint(13, 2)), { boolValue: true }, field.varint(13, true));
    expectDecode("conformance.Scalars", bytes(field.varint(13, U64_MAX)), { boolValue: true }, field.varint(13, true));
    expectDecode("conformance.Scalars", bytes(tag(13, WT.VARINT), overlongVarint(0, 10)), {}, []);
  });

  it("noncanonical - a negative int32 as a ten-byte varint, and as five bytes", () => {
    expectDecode("conformance.Scalars", bytes(field.varint(3, -1)), { int32Value: -1 }, field.varint(3, -1));
    expectDecode("conformance.Scalars", bytes(tag(3, WT.VARINT), [0xff, 0xff, 0xff, 0xff, 0x0f]), { int32Value: -1 }, field.varint(3, -1));
    expectDecode("conformance.Order", bytes(tag(2, WT.VARINT), [0xff, 0xff, 0xff, 0xff, 0x0f]), { status: -1 }, field.varint(2, -1));
  });

  it("noncanonical - uint32 and int32 keep the low 32 bits of a 64-bit varint", () => {
    expectDecode("conformance.Scalars", bytes(field.varint(5, 2n ** 32n + 7n), field.varint(3, 2n ** 33n - 1n)), { uint32Value: 7, int32Value: -1 }, bytes(field.varint(3, -1), field.varint(5, 7)));
  });
});

describe("noncanonical - map entries", () => {
  it("noncanonical - map entries with the value first, a missing key or a missing value", () => {
    const input = bytes(
      field.len(1, field.len(2, "two"), field.varint(1, 2)), // value before key
      field.len(1, field.len(2, "zero")), // no key: key 0
      field.len(1, field.varint(1, 3)), // no value: ""
      field.len(12, field.len(1, "m")), // message value missing: an empty message
      field.len(13, field.len(1, "e")), // enum value missing: 0
    );
    expectDecode(
      "conformance.Maps",
      input,
      { int32ToString: { "2": "two", "0": "zero", "3": "" }, stringToMessage: { m: {} }, stringToEnum: { e: 0 } },
      bytes(
        field.len(1, field.varint(1, 0), field.len(2, "zero")),
        field.len(1, field.varint(1, 2), field.len(2, "two")),
        field.len(1, field.varint(1, 3), field.len(2, "")),
        field.len(12, field.len(1, "m"), field.len(2)),
        field.len(13, field.len(1, "e"), field.varint(2, 0)),
      ),
    );
  });

  it("noncanonical - a key seen twice keeps the last entry", () => {
    const input = bytes(field.len(16, field.len(1, "k"), field.len(2, [1])), field.len(16, field.len(1, "k"), field.len(2, [2])));
    expectDecode("conformance.Maps", input, { stringToBytes: { k: Uint8Array.of(2) } }, field.len(16, field.len(1, "k"), field.len(2, [2])));
  });

  it("noncanonical - a map key __proto__ is an ordinary own key", () => {
    const input = bytes(field.len(6, field.len(1, "__proto__"), field.len(2, "p")));
    const decoded = codecOf(codecs, "conformance.Order").decode(input) as { labels: Record<string, string> };
    expect(Object.getPrototypeOf(decoded.labels)).toBe(Object.prototype);
    expect(Object.keys(decoded.labels)).toEqual(["__proto__"]);
    expectDecode("conformance.Order", input, { labels: JSON.parse('{"__proto__":"p"}') as Record<string, string> }, input);
  });
});
