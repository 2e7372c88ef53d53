/**
 * The JSON mapping, case by case: names, scalars, enums, maps, oneofs, each well-known type, and
 * every kind of bad input with the field path in its error. The .proto is inline.
 */
import { describe, expect, it } from "vitest";
import { Code, RpcError } from "meridian-rpc";
import { JsonError, ProtoSchema } from "meridian-rpc/generic";

const PROTO = `
syntax = "proto3";
package shop;
import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

enum Status { STATUS_UNKNOWN = 0; STATUS_OPEN = 1; STATUS_CLOSED = 2; }

message Item {
  string sku = 1;
  int64 price_cents = 2;
  uint32 count = 3;
  bytes blob = 4;
  double weight = 5;
  float ratio = 6;
  bool gift = 7;
  Status status = 8;
  string renamed = 9 [json_name = "otherName"];
  optional int32 maybe = 10;
  uint64 big = 11;
  sint32 delta = 12;
}

message Order {
  string id = 1;
  repeated Item items = 2;
  map<string, int64> totals = 3;
  map<int32, Item> by_line = 4;
  map<bool, string> flags = 5;
  oneof payment {
    string card = 6;
    int64 voucher = 7;
  }
  google.protobuf.Timestamp created = 8;
  google.protobuf.Duration ttl = 9;
  google.protobuf.Any detail = 10;
  google.protobuf.Struct meta = 11;
  google.protobuf.Value any_value = 12;
  google.protobuf.ListValue list = 13;
  google.protobuf.FieldMask mask = 14;
  google.protobuf.Empty nothing = 15;
  google.protobuf.Int64Value big_wrapper = 16;
  google.protobuf.StringValue note = 17;
  google.protobuf.BytesValue raw = 18;
  google.protobuf.DoubleValue ratio = 19;
  google.protobuf.NullValue null_value = 20;
  repeated Status history = 21;
}
`;

const schema = ProtoSchema.load({ proto: ["shop.proto"], sources: { "shop.proto": PROTO } });
const numbers = ProtoSchema.load({ proto: ["shop.proto"], sources: { "shop.proto": PROTO }, int64: "number" });

/** fromJson then toJson. */
const roundTrip = (json: unknown, type = "shop.Order"): unknown => schema.toJson(type, schema.fromJson(type, json));

/** The JsonError fromJson raises for `json`. */
function jsonError(json: unknown, type = "shop.Order", s: ProtoSchema = schema): JsonError {
  try {
    s.fromJson(type, json);
  } catch (e) {
    expect(e).toBeInstanceOf(JsonError);
    expect((e as JsonError).code).toBe(Code.INVALID_ARGUMENT);
    return e as JsonError;
  }
  throw new Error(`fromJson accepted ${JSON.stringify(json)}`);
}

describe("generic json - printing", () => {
  it("generic json - lowerCamel names, json_name, int64 as strings, bytes as base64, enums by name", () => {
    const json = {
      sku: "a-1",
      priceCents: "1999",
      count: 3,
      blob: "AQID",
      weight: 1.5,
      ratio: 0.1,
      gift: true,
      status: "STATUS_OPEN",
      otherName: "x",
      maybe: 0,
      big: "18446744073709551615",
      delta: -4,
    };
    const item = schema.fromJson("shop.Item", json);
    expect(item).toMatchObject({ sku: "a-1", priceCents: 1999n, blob: Uint8Array.from([1, 2, 3]), status: 1, renamed: "x", maybe: 0, big: 18446744073709551615n });
    expect(schema.toJson("shop.Item", item)).toEqual(json);
  });

  it("generic json - defaults are left out unless asked for; explicit presence is kept", () => {
    const empty = schema.codec("shop.Item").create();
    expect(schema.toJson("shop.Item", empty)).toEqual({});
    expect(schema.toJson("shop.Item", { ...empty, maybe: 0 })).toEqual({ maybe: 0 });
    expect(schema.toJson("shop.Item", empty, { emitDefaults: true })).toEqual({
      sku: "",
      priceCents: "0",
      count: 0,
      blob: "",
      weight: 0,
      ratio: 0,
      gift: false,
      status: "STATUS_UNKNOWN",
      otherName: "",
      big: "0",
      delta: 0,
    });
  });

  it("generic json - proto names and enum numbers on request", () => {
    const item = schema.fromJson("shop.Item", { priceCents: "5", status: "STATUS_CLOSED", otherName: "r" });
    expect(schema.toJson("shop.Item", item, { useProtoNames: true, enumsAsNumbers: true })).toEqual({ price_cents: "5", status: 2, renamed: "r" });
  });

  it("generic json - NaN and infinities as strings", () => {
    expect(roundTrip({ items: [{ weight: "NaN", ratio: "-Infinity" }] }, "shop.Order")).toEqual({ items: [{ weight: "NaN", ratio: "-Infinity" }] });
    expect(schema.fromJson("shop.Item", { weight: "Infinity" })).toMatchObject({ weight: Infinity });
  });

  it("generic json - int64 in the number representation reads and prints the same JSON", () => {
    const item = numbers.fromJson("shop.Item", { priceCents: "123", big: 7 });
    expect(item).toMatchObject({ priceCents: 123, big: 7 });
    expect(numbers.toJson("shop.Item", item)).toEqual({ priceCents: "123", big: "7" });
  });
});

describe("generic json - reading", () => {
  it("generic json - declared names are accepted as well as JSON names", () => {
    expect(schema.fromJson("shop.Item", { price_cents: 5, renamed: "a" })).toMatchObject({ priceCents: 5n, renamed: "a" });
  });

  it("generic json - integers as numbers or strings, exponents when integral", () => {
    expect(schema.fromJson("shop.Item", { count: "7", priceCents: 1e3, delta: "-2" })).toMatchObject({ count: 7, priceCents: 1000n, delta: -2 });
    expect(schema.fromJson("shop.Item", { count: 1.0, big: "1e2" })).toMatchObject({ count: 1, big: 100n });
  });

  it("generic json - base64 standard or URL-safe, padded or not", () => {
    for (const text of ["+/8=", "+/8", "-_8=", "-_8"]) {
      expect(schema.fromJson("shop.Item", { blob: text })).toMatchObject({ blob: Uint8Array.from([0xfb, 0xff]) });
    }
  });

  it("generic json - enums by name or number", () => {
    expect(schema.fromJson("shop.Item", { status: 2 })).toMatchObject({ status: 2 });
    expect(schema.fromJson("shop.Item", { status: 9 })).toMatchObject({ status: 9 }); // open enum keeps it
    expect(schema.fromJson("shop.Order", { history: ["STATUS_OPEN", 2] })).toMatchObject({ history: [1, 2] });
  });

  it("generic json - null means absent, except for Value and NullValue", () => {
    expect(schema.fromJson("shop.Order", { id: null, items: null, totals: null, created: null, card: null })).toEqual(schema.codec("shop.Order").create());
    expect(roundTrip({ anyValue: null, nullValue: null })).toEqual({ anyValue: null });
    expect(schema.fromJson("shop.Order", { nullValue: null })).toMatchObject({ nullValue: 0 });
  });

  it("generic json - maps with string, integer and bool keys", () => {
    const json = { totals: { eur: "10", usd: "-3" }, byLine: { "1": { sku: "a" }, "-2": { sku: "b" } }, flags: { true: "yes", false: "no" } };
    expect(roundTrip(json)).toEqual(json);
  });

  it("generic json - oneof members", () => {
    expect(schema.fromJson("shop.Order", { voucher: "77" })).toMatchObject({ payment: { case: "voucher", value: 77n } });
    expect(roundTrip({ card: "4111" })).toEqual({ card: "4111" });
  });

  it("generic json - ignoreUnknownFields skips unknown fields and enum names", () => {
    expect(schema.fromJson("shop.Item", { sku: "a", colour: "red", status: "STATUS_PURPLE" }, { ignoreUnknownFields: true })).toMatchObject({ sku: "a", status: 0 });
    expect(schema.fromJson("shop.Order", { history: ["STATUS_OPEN", "NOPE"] }, { ignoreUnknownFields: true })).toMatchObject({ history: [1] });
  });
});

describe("generic json - well-known types", () => {
  it("generic json - Timestamp as RFC 3339 with 0, 3, 6 or 9 fraction digits; offsets accepted", () => {
    expect(roundTrip({ created: "1972-01-01T10:00:20.021Z" })).toEqual({ created: "1972-01-01T10:00:20.021Z" });
    expect(roundTrip({ created: "2024-02-29T23:59:59Z" })).toEqual({ created: "2024-02-29T23:59:59Z" });
    expect(roundTrip({ created: "2024-02-29T23:59:59.000001Z" })).toEqual({ created: "2024-02-29T23:59:59.000001Z" });
    expect(roundTrip({ created: "2024-02-29T23:59:59.1234Z" })).toEqual({ created: "2024-02-29T23:59:59.123400Z" });
    expect(roundTrip({ created: "2024-03-01T01:00:00+02:00" })).toEqual({ created: "2024-02-29T23:00:00Z" });
    expect(roundTrip({ created: "0001-01-01T00:00:00Z" })).toEqual({ created: "0001-01-01T00:00:00Z" });
    expect(roundTrip({ created: "9999-12-31T23:59:59.999999999Z" })).toEqual({ created: "9999-12-31T23:59:59.999999999Z" });
    expect(schema.fromJson("shop.Order", { created: "1970-01-01T00:00:01.5Z" })).toMatchObject({ created: { seconds: 1n, nanos: 500_000_000 } });
  });

  it("generic json - Duration as seconds with a fraction and an s", () => {
    expect(roundTrip({ ttl: "1.5s" })).toEqual({ ttl: "1.500s" });
    expect(roundTrip({ ttl: "-0.000000001s" })).toEqual({ ttl: "-0.000000001s" });
    expect(roundTrip({ ttl: "3s" })).toEqual({ ttl: "3s" });
    expect(schema.fromJson("shop.Order", { ttl: "-1.5s" })).toMatchObject({ ttl: { seconds: -1n, nanos: -500_000_000 } });
  });

  it("generic json - wrappers as plain values, Empty as {}", () => {
    const json = { bigWrapper: "9007199254740993", note: "", raw: "AA==", ratio: 0, nothing: {} };
    expect(roundTrip(json)).toEqual(json);
  });

  it("generic json - Struct, Value and ListValue as JSON", () => {
    const json = { meta: { a: 1, b: [true, null, "x", { c: {} }] }, anyValue: { deep: [1, 2] }, list: [1, "two", [3]] };
    expect(roundTrip(json)).toEqual(json);
  });

  it("generic json - FieldMask as comma-joined lowerCamel paths", () => {
    expect(schema.fromJson("shop.Order", { mask: "items.priceCents,id" })).toMatchObject({ mask: { paths: ["items.price_cents", "id"] } });
    expect(roundTrip({ mask: "items.priceCents,id" })).toEqual({ mask: "items.priceCents,id" });
    expect(roundTrip({ mask: "" })).toEqual({ mask: "" });
    // As Google's C++ printer and protobuf-es: any path whose lowerCamelCase reads back prints,
    // whatever its characters (a random "\u0000" once failed the conformance test); one with
    // an upper-case letter or an underscore not before a lower-case letter does not.
    expect(roundTrip({ mask: "a-b,\u0000,A,x.yZ" })).toEqual({ mask: "a-b,\u0000,A,x.yZ" });
    expect(schema.fromJson("shop.Order", { mask: "A" })).toMatchObject({ mask: { paths: ["_a"] } });
    for (const bad of ["a_", "a_1", "a__b", "aB"]) {
      expect(() => schema.toJson("shop.Order", schema.codec("shop.Order").create({ mask: { paths: [bad] } }))).toThrow(/has no JSON form/);
    }
  });

  it("generic json - Any with @type: fields inline, or the well-known type's JSON under value", () => {
    const item = { detail: { "@type": "type.googleapis.com/shop.Item", sku: "z", priceCents: "1" } };
    expect(roundTrip(item)).toEqual(item);
    const dur = { detail: { "@type": "type.googleapis.com/google.protobuf.Duration", value: "2s" } };
    expect(roundTrip(dur)).toEqual(dur);
    expect(roundTrip({ detail: {} })).toEqual({ detail: {} });
  });
});

describe("generic json - bad input names the field", () => {
  const cases: [string, unknown, string, RegExp][] = [
    ["wrong type", { id: 5 }, ".id", /expected a string, got 5/],
    ["wrong type deep", { items: [{}, { count: "x" }] }, ".items[1].count", /expected an integer, got "x"/],
    ["unknown field", { items: [{ colour: "red" }] }, ".items[0].colour", /unknown field "colour": shop.Item has sku, priceCents, .*ignoreUnknownFields/],
    ["uint32 out of range", { items: [{ count: -1 }] }, ".items[0].count", /out of range for uint32/],
    ["int64 out of range", { items: [{ priceCents: "9223372036854775808" }] }, ".items[0].priceCents", /out of range for int64/],
    ["uint64 negative", { items: [{ big: "-1" }] }, ".items[0].big", /out of range for uint64/],
    ["not an integer", { items: [{ count: 1.5 }] }, ".items[0].count", /not an integer/],
    ["float out of range", { items: [{ ratio: 1e39 }] }, ".items[0].ratio", /out of range for float/],
    ["bad enum name", { items: [{ status: "STATUS_PURPLE" }] }, ".items[0].status", /"STATUS_PURPLE" is not a value of enum shop.Status \(STATUS_UNKNOWN, STATUS_OPEN, STATUS_CLOSED\)/],
    ["bad base64", { items: [{ blob: "a*b" }] }, ".items[0].blob", /not valid base64/],
    ["bad timestamp", { created: "2024-02-30T00:00:00Z" }, ".created", /not a valid date and time/],
    ["timestamp without zone", { created: "2024-01-01T00:00:00" }, ".created", /expected an RFC 3339 timestamp/],
    ["bad duration", { ttl: "1.5" }, ".ttl", /expected a duration such as "1.5s"/],
    ["map key", { byLine: { one: {} } }, '.byLine["one"]', /expected an integer, got "one"/],
    ["bool map key", { flags: { yes: "x" } }, '.flags["yes"]', /expected a bool map key/],
    ["two oneof members", { card: "1", voucher: "2" }, ".voucher", /oneof payment has two members set: "card" and "voucher"/],
    ["same field twice", { items: [{ price_cents: 1, priceCents: 2 }] }, ".items[0].priceCents", /field price_cents is set twice, as "price_cents" and "priceCents"/],
    ["not an object", [1], "", /expected a JSON object for shop.Order, got an array/],
    ["list expected", { items: {} }, ".items", /expected an array, got an object/],
    ["null in list", { history: [null] }, ".history[0]", /null is not allowed in a list/],
    ["Any of an unknown type", { detail: { "@type": "type.googleapis.com/x.Nope" } }, ".detail", /x.Nope is not in the loaded .proto files/],
    ["Any without @type", { detail: { sku: "a" } }, ".detail", /an Any needs "@type"/],
    ["bad field mask", { mask: "items.price_cents" }, ".mask", /not lowerCamelCase/],
  ];
  for (const [name, json, path, message] of cases) {
    it(`generic json - ${name}`, () => {
      const e = jsonError(json);
      expect(e.typeName).toBe("shop.Order");
      expect(e.path).toBe(path);
      expect(e.message.startsWith(`shop.Order${path}: `)).toBe(true);
      expect(e.detail).toMatch(message);
    });
  }

  it("generic json - printing refuses what JSON cannot hold", () => {
    const order = schema.fromJson("shop.Order", {}) as Record<string, unknown>;
    const ts = schema.codec("google.protobuf.Timestamp").create({ seconds: 253402300800n });
    expect(() => schema.toJson("shop.Order", { ...order, created: ts })).toThrow(/shop.Order.created: Timestamp seconds 253402300800n is outside/);
    const v = schema.codec("google.protobuf.Value").create();
    expect(() => schema.toJson("shop.Order", { ...order, anyValue: v })).toThrow(/shop.Order.anyValue: a google.protobuf.Value has no kind set/);
    const any = schema.codec("google.protobuf.Any").create({ typeUrl: "type.googleapis.com/x.Nope", value: new Uint8Array([8, 1]) });
    expect(() => schema.toJson("shop.Order", { ...order, detail: any })).toThrow(RpcError);
  });

  it("generic json - an unknown message type is INVALID_ARGUMENT naming the types loaded", () => {
    expect(() => schema.fromJson("shop.Nope", {})).toThrow(/unknown message type shop.Nope: the .proto files loaded define .*shop.Item/);
  });
});
