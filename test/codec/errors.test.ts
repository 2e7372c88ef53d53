/**
 * One or more inputs per DecodeError code, through generated decoders and views, asserting the
 * code, the byte offset and the field path.
 *
 * Offsets: the start of the offending tag (INVALID_TAG, INVALID_WIRE_TYPE), of the value whose
 * wire type is wrong (WRONG_WIRE_TYPE: right after its tag), of the varint (VARINT_TOO_LONG), of
 * the length prefix (LENGTH_OUT_OF_RANGE), of the string body (INVALID_UTF8), of the message body
 * one level too deep (DEPTH_EXCEEDED); the position after the stray end-group tag
 * (INVALID_GROUP); the end of the enclosing data (TRUNCATED, MISSING_REQUIRED).
 */
import { describe, expect, it } from "vitest";
import type { DecodeErrorCode } from "meridian-rpc/runtime";
import {
  bytes,
  codecOf,
  DECODE_ERROR_CODES,
  decodeError,
  errorFacts,
  field,
  GEN_DIRS,
  loadCodecs,
  loadSchema,
  materializeView,
  type Piece,
  tag,
  varint,
  WT,
} from "./helpers.js";

const root = loadSchema();
const codecs = await loadCodecs(GEN_DIRS.bigint);

interface Case {
  readonly name: string;
  readonly type: string;
  readonly input: Piece[];
  readonly code: DecodeErrorCode;
  readonly offset: number;
  readonly path: string;
}

/** Lengths of pieces, to compute offsets readably. */
const len = (...p: Piece[]): number => bytes(...p).length;

const eleven = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
const item0 = field.len(3, field.len(1, "A"));

const CASES: Case[] = [
  // TRUNCATED
  { name: "a tag cut short", type: "conformance.Scalars", input: [field.varint(3, 1), [0x80]], code: "TRUNCATED", offset: 3, path: "conformance.Scalars" },
  { name: "a varint cut short", type: "conformance.Scalars", input: [tag(4, WT.VARINT), [0xff, 0xff]], code: "TRUNCATED", offset: 3, path: "conformance.Scalars.int64Value" },
  { name: "a fixed32 cut short", type: "conformance.Scalars", input: [tag(9, WT.I32), [1, 2]], code: "TRUNCATED", offset: 3, path: "conformance.Scalars.fixed32Value" },
  { name: "a double cut short", type: "conformance.Scalars", input: [tag(1, WT.I64), [1, 2, 3, 4, 5, 6, 7]], code: "TRUNCATED", offset: 8, path: "conformance.Scalars.doubleValue" },
  {
    name: "a varint cut short at the end of a nested body",
    type: "conformance.Order",
    input: [item0, tag(3, WT.LEN), varint(2), [0x10, 0x80], field.len(1, "x")],
    code: "TRUNCATED",
    offset: len(item0) + 4,
    path: "conformance.Order.items[1].quantity",
  },
  {
    name: "packed fixed32 elements cut short",
    type: "conformance.RepeatedScalars",
    input: [tag(9, WT.LEN), varint(6), [1, 0, 0, 0, 2, 0]],
    code: "TRUNCATED",
    offset: 8,
    path: "conformance.RepeatedScalars.fixed32Values[1]",
  },
  {
    name: "a group the data ends inside",
    type: "legacy.Ticket",
    input: [field.varint(1, 1), field.len(2, "t"), tag(12, WT.SGROUP), field.len(13, "a")],
    code: "TRUNCATED",
    offset: 9,
    path: "legacy.Ticket.audit",
  },
  // VARINT_TOO_LONG
  { name: "an 11-byte varint value", type: "conformance.Scalars", input: [tag(4, WT.VARINT), eleven], code: "VARINT_TOO_LONG", offset: 1, path: "conformance.Scalars.int64Value" },
  { name: "an 11-byte int32", type: "conformance.Scalars", input: [tag(3, WT.VARINT), eleven], code: "VARINT_TOO_LONG", offset: 1, path: "conformance.Scalars.int32Value" },
  { name: "an 11-byte tag", type: "conformance.Scalars", input: [field.varint(3, 1), eleven], code: "VARINT_TOO_LONG", offset: 2, path: "conformance.Scalars" },
  { name: "an 11-byte unknown varint", type: "conformance.Scalars", input: [tag(100, WT.VARINT), eleven], code: "VARINT_TOO_LONG", offset: 2, path: "conformance.Scalars" },
  // INVALID_TAG
  { name: "field number 0", type: "conformance.Scalars", input: [field.varint(3, 1), [0x00]], code: "INVALID_TAG", offset: 2, path: "conformance.Scalars" },
  { name: "field number 0 in a nested message", type: "conformance.Order", input: [field.len(1, "o"), field.len(11, field.varint(2, 1), [0x02, 0x00])], code: "INVALID_TAG", offset: 7, path: "conformance.Order.total" },
  // INVALID_WIRE_TYPE
  { name: "wire type 6", type: "conformance.Scalars", input: [[0x0e]], code: "INVALID_WIRE_TYPE", offset: 0, path: "conformance.Scalars" },
  { name: "wire type 7 in a repeated message", type: "conformance.Order", input: [item0, field.len(3, [0x0f])], code: "INVALID_WIRE_TYPE", offset: len(item0) + 2, path: "conformance.Order.items[1]" },
  // WRONG_WIRE_TYPE
  { name: "a string sent as a varint", type: "conformance.Scalars", input: [field.varint(14, 1)], code: "WRONG_WIRE_TYPE", offset: 1, path: "conformance.Scalars.stringValue" },
  { name: "a double sent as fixed32", type: "conformance.Scalars", input: [field.fixed32(1, 1)], code: "WRONG_WIRE_TYPE", offset: 1, path: "conformance.Scalars.doubleValue" },
  { name: "a message sent as a varint", type: "conformance.Order", input: [field.varint(11, 1)], code: "WRONG_WIRE_TYPE", offset: 1, path: "conformance.Order.total" },
  { name: "a packable field sent as fixed64", type: "conformance.RepeatedScalars", input: [field.fixed64(3, 1n)], code: "WRONG_WIRE_TYPE", offset: 1, path: "conformance.RepeatedScalars.int32Values[0]" },
  { name: "a group sent length-delimited", type: "legacy.Ticket", input: [field.len(12, field.len(13, "a"))], code: "WRONG_WIRE_TYPE", offset: 1, path: "legacy.Ticket.audit" },
  { name: "a message sent as a group", type: "conformance.Order", input: [field.group(11, field.varint(2, 1))], code: "WRONG_WIRE_TYPE", offset: 1, path: "conformance.Order.total" },
  { name: "a map sent as a varint", type: "conformance.Maps", input: [field.varint(12, 1)], code: "WRONG_WIRE_TYPE", offset: 1, path: "conformance.Maps.stringToMessage" },
  { name: "a oneof member with the wrong wire type", type: "conformance.Envelope", input: [field.fixed32(5, 1)], code: "WRONG_WIRE_TYPE", offset: 1, path: "conformance.Envelope.count" },
  // LENGTH_OUT_OF_RANGE
  { name: "a string longer than the data", type: "conformance.Scalars", input: [tag(14, WT.LEN), varint(10), [0x61, 0x62]], code: "LENGTH_OUT_OF_RANGE", offset: 1, path: "conformance.Scalars.stringValue" },
  { name: "a nested message longer than its parent", type: "conformance.Order", input: [item0, tag(3, WT.LEN), varint(10), field.len(1, "ab")], code: "LENGTH_OUT_OF_RANGE", offset: len(item0) + 1, path: "conformance.Order.items[1]" },
  {
    name: "a string longer than its enclosing message",
    type: "conformance.Order",
    input: [tag(11, WT.LEN), varint(3), tag(1, WT.LEN), varint(5), [0x61], field.len(1, "tail-of-order")],
    code: "LENGTH_OUT_OF_RANGE",
    offset: 3,
    path: "conformance.Order.total.currencyCode",
  },
  { name: "a length of 2^32 + 1", type: "conformance.Scalars", input: [tag(15, WT.LEN), varint(2n ** 32n + 1n), [1, 2, 3]], code: "LENGTH_OUT_OF_RANGE", offset: 1, path: "conformance.Scalars.bytesValue" },
  { name: "an unknown field longer than the data", type: "conformance.Scalars", input: [tag(100, WT.LEN), varint(4), [1]], code: "LENGTH_OUT_OF_RANGE", offset: 2, path: "conformance.Scalars" },
  // INVALID_GROUP
  { name: "an unknown group closed by another number", type: "conformance.Scalars", input: [tag(100, WT.SGROUP), field.varint(1, 1), tag(101, WT.EGROUP)], code: "INVALID_GROUP", offset: 6, path: "conformance.Scalars" },
  { name: "an end-group tag without a start", type: "conformance.Scalars", input: [field.varint(3, 1), tag(100, WT.EGROUP)], code: "INVALID_GROUP", offset: 4, path: "conformance.Scalars" },
  {
    name: "a group closed by an unrelated end tag",
    type: "legacy.Ticket",
    input: [field.varint(1, 1), field.len(2, "t"), tag(12, WT.SGROUP), field.len(13, "a"), tag(99, WT.EGROUP)],
    code: "INVALID_GROUP",
    offset: 11,
    path: "legacy.Ticket.audit",
  },
  // INVALID_UTF8 (proto3 strings)
  { name: "a string with a bad byte", type: "conformance.Scalars", input: [field.len(14, [0x61, 0xff])], code: "INVALID_UTF8", offset: 2, path: "conformance.Scalars.stringValue" },
  { name: "a long string with a surrogate", type: "conformance.Scalars", input: [field.len(14, new Array(40).fill(0x61), [0xed, 0xa0, 0x80])], code: "INVALID_UTF8", offset: 2, path: "conformance.Scalars.stringValue" },
  { name: "a repeated string", type: "conformance.RepeatedScalars", input: [field.len(14, "ok"), field.len(14, [0xc0, 0x80])], code: "INVALID_UTF8", offset: 6, path: "conformance.RepeatedScalars.stringValues[1]" },
  { name: "a map key", type: "conformance.Order", input: [field.len(6, field.len(1, [0xfe]), field.len(2, "v"))], code: "INVALID_UTF8", offset: 4, path: "conformance.Order.labels" },
  { name: "a string in a oneof in a nested message", type: "conformance.Envelope", input: [field.len(4, field.len(2, [0xf4, 0x90, 0x80, 0x80]))], code: "INVALID_UTF8", offset: 4, path: "conformance.Envelope.forwarded.text" },
  // MISSING_REQUIRED (proto2)
  { name: "a required field absent", type: "legacy.Ticket", input: [field.varint(1, 1)], code: "MISSING_REQUIRED", offset: 2, path: "legacy.Ticket.title" },
  { name: "a required field absent in a repeated message", type: "legacy.Envelope", input: [field.len(1, field.len(1, "1")), field.len(2, field.len(1, "2")), field.len(2, field.varint(2, 1))], code: "MISSING_REQUIRED", offset: 14, path: "legacy.Envelope.recipients[1].number" },
  { name: "a required field absent in a group", type: "legacy.Ticket", input: [field.varint(1, 1), field.len(2, "t"), field.group(15, field.len(17, "me"))], code: "MISSING_REQUIRED", offset: 12, path: "legacy.Ticket.comment[0].text" },
  { name: "a required message absent", type: "legacy.Envelope", input: [field.len(3, "hi")], code: "MISSING_REQUIRED", offset: 4, path: "legacy.Envelope.sender" },
];

describe("errors - decode", () => {
  for (const c of CASES) {
    it(`errors - ${c.code} for ${c.name}`, () => {
      const e = decodeError(() => codecOf(codecs, c.type).decode(bytes(...c.input)));
      expect(errorFacts(e)).toEqual({ code: c.code, offset: c.offset, path: c.path });
      expect(e.message).toContain(String(c.offset));
    });
  }

  it("errors - every code but DEPTH_EXCEEDED (below) has a case", () => {
    const codes = new Set<string>(CASES.map((c) => c.code));
    expect(DECODE_ERROR_CODES.filter((c) => !codes.has(c))).toEqual(["DEPTH_EXCEEDED"]);
  });
});

describe("errors - depth", () => {
  const LIMIT = 100;
  /** A Category whose parent_hint chain is `levels` messages deep below the top one. */
  const chain = (levels: number): Uint8Array => {
    let body = bytes(field.len(1, "leaf"));
    for (let i = 0; i < levels; i++) body = bytes(field.len(3, body));
    return body;
  };

  it("errors - messages nested exactly to the limit decode", () => {
    const decoded = codecOf(codecs, "conformance.Category").decode(chain(LIMIT)) as { parentHint?: unknown };
    let depth = 0;
    for (let m = decoded; m.parentHint !== undefined; m = m.parentHint as { parentHint?: unknown }) depth++;
    expect(depth).toBe(LIMIT);
  });

  it("errors - DEPTH_EXCEEDED one message past the limit, with the path down to it", () => {
    const input = chain(LIMIT + 1);
    const e = decodeError(() => codecOf(codecs, "conformance.Category").decode(input));
    // The body of the 101st nested message starts after 101 tags and lengths.
    let offset = 0;
    for (let level = LIMIT + 1; level >= 1; level--) offset += 1 + varint(chain(level - 1).length).length;
    expect(errorFacts(e)).toEqual({ code: "DEPTH_EXCEEDED", offset, path: `conformance.Category${".parentHint".repeat(LIMIT + 1)}` });
  });

  it("errors - DEPTH_EXCEEDED through oneofs, repeated fields and maps", () => {
    const viaOneof = (n: number): Uint8Array => (n === 0 ? bytes(field.sint(1, 1)) : bytes(field.len(3, viaOneof(n - 1))));
    expect(errorFacts(decodeError(() => codecOf(codecs, "conformance.Expr").decode(viaOneof(LIMIT + 1)))).code).toBe("DEPTH_EXCEEDED");
    expect(() => codecOf(codecs, "conformance.Expr").decode(viaOneof(LIMIT))).not.toThrow();
    const viaRepeated = (n: number): Uint8Array => (n === 0 ? bytes() : bytes(field.len(2, viaRepeated(n - 1))));
    expect(errorFacts(decodeError(() => codecOf(codecs, "conformance.Category").decode(viaRepeated(LIMIT + 1)))).code).toBe("DEPTH_EXCEEDED");
    // A map value is one level below its entry's message, like any message field.
    const viaMap = (n: number): Uint8Array => (n === 0 ? bytes() : bytes(field.len(4, field.len(1, "k"), field.len(2, viaMap(n - 1)))));
    expect(errorFacts(decodeError(() => codecOf(codecs, "conformance.Category").decode(viaMap(LIMIT + 1)))).code).toBe("DEPTH_EXCEEDED");
  });

  it("errors - DEPTH_EXCEEDED for unknown groups nested past the limit", () => {
    const nest = (n: number): number[] => (n === 0 ? [] : field.group(100, nest(n - 1)));
    expect(() => codecOf(codecs, "conformance.Scalars").decode(bytes(nest(LIMIT)))).not.toThrow();
    const e = decodeError(() => codecOf(codecs, "conformance.Scalars").decode(bytes(nest(LIMIT + 1))));
    expect(e.code).toBe("DEPTH_EXCEEDED");
    // Unknown groups inside a nested message count that message's depth too.
    const inside = bytes(field.len(11, nest(LIMIT)));
    expect(decodeError(() => codecOf(codecs, "conformance.Order").decode(inside)).code).toBe("DEPTH_EXCEEDED");
  });

  it("errors - views raise DEPTH_EXCEEDED when reading past the limit", () => {
    const type = root.lookupType("conformance.Category");
    const codec = codecOf(codecs, "conformance.Category");
    expect(() => materializeView(type, codec.view(chain(LIMIT)) as Record<string, unknown>)).not.toThrow();
    const e = decodeError(() => materializeView(type, codec.view(chain(LIMIT + 1)) as Record<string, unknown>));
    expect(e.code).toBe("DEPTH_EXCEEDED");
  });
});

describe("errors - views", () => {
  for (const c of CASES.filter((x) => x.code !== "MISSING_REQUIRED")) {
    it(`errors - a view raises ${c.code} for ${c.name} when the getters reach it`, () => {
      const type = root.lookupType(c.type);
      const view = codecOf(codecs, c.type).view(bytes(...c.input)) as Record<string, unknown>;
      const e = decodeError(() => materializeView(type, view));
      expect({ code: e.code, offset: e.offset }).toEqual({ code: c.code, offset: c.offset });
    });
  }
});
