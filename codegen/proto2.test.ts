import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DecodeError, type MessageCodec } from "meridian-rpc/runtime";
import { generateSources, removeTestDirs } from "./test-harness.js";

afterAll(removeTestDirs);

const IDL = `
syntax = "proto2";
package t2;

enum Level { LOW = 1; MID = 2; HIGH = 5; }
enum Zero { Z_NONE = 0; Z_ONE = 1; }

message Inner { optional int32 x = 1; }

message Req {
  required int32 id = 1;
  required string name = 2;
  required Level level = 3;
  required Inner inner = 4;
  optional int32 extra = 5;
}

message Defaults {
  optional int32 i = 1 [default = -42];
  optional int64 big = 2 [default = -9223372036854775808];
  optional uint64 ubig = 3 [default = 18446744073709551615];
  optional float f = 4 [default = 0.1];
  optional double d = 5 [default = -inf];
  optional bool b = 6 [default = true];
  optional string s = 7 [default = "caf\\303\\251"];
  optional bytes y = 8 [default = "\\000\\377a"];
  optional Level e = 9 [default = HIGH];
  optional Level plain_enum = 10;
  optional int32 plain = 11;
  optional int64 num = 12 [default = 77, jstype = JS_NUMBER];
}

message Groups {
  optional group Result = 1 {
    optional string url = 2;
    optional group Deep = 3 { optional int32 d = 4; }
  }
  repeated group Item = 5 {
    required int32 id = 6;
  }
  optional int32 after = 7;
}

message Closed {
  optional Level one = 1;
  repeated Level many = 2;
  repeated Level packed = 3 [packed = true];
  map<string, Zero> by_name = 4;
  oneof pick { Level chosen = 5; string other = 6; }
}

message Limits { required int32 max_count = 1; }
message Holder { repeated Limits limits = 1; }

message Strings {
  optional string s = 1;
  repeated int32 loose = 2;
  repeated int32 tight = 3 [packed = true];
}
`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
let mod: Record<string, Any>;
const codec = (name: string): MessageCodec<Any, Any> => mod[name];
let root: protobuf.Root;

beforeAll(async () => {
  const g = generateSources({ "t2.proto": IDL });
  mod = await g.load("t2.ts");
  root = protobuf.parse(IDL, { keepCase: false }).root;
});

describe("proto2 - required", () => {
  it("proto2 - create fills required fields with zero values (first value for enums)", () => {
    const m = codec("Req").create();
    expect(m).toEqual({ id: 0, name: "", level: 1, inner: undefined, extra: undefined });
  });

  it("proto2 - required fields are always written, byte-identical to protobufjs", () => {
    const Req = codec("Req");
    const m = Req.create({ id: 0, name: "", level: 2, inner: { x: undefined } });
    const ours = Req.encode(m);
    const P = root.lookupType("t2.Req");
    const theirs = P.encode(P.fromObject({ id: 0, name: "", level: 2, inner: {} })).finish();
    expect(Buffer.from(ours).toString("hex")).toBe(Buffer.from(theirs).toString("hex"));
    expect(Req.decode(ours)).toEqual(m);
  });

  it("proto2 - a missing required field is MISSING_REQUIRED", () => {
    const Req = codec("Req");
    const bytes = new Uint8Array([8, 1, 18, 0, 24, 1]); // no inner
    let err: unknown;
    try {
      Req.decode(bytes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).code).toBe("MISSING_REQUIRED");
    expect((err as DecodeError).message).toContain("inner");
    expect((err as DecodeError).fieldPath()).toBe("t2.Req.inner");
  });

  it("proto2 - a missing required field inside a group is reported with its path", () => {
    const G = codec("Groups");
    // Item group (5) without its required id.
    const bytes = new Uint8Array([43, 44]);
    expect(() => G.decode(bytes)).toThrow(expect.objectContaining({ code: "MISSING_REQUIRED" }));
    expect(() => G.decode(bytes)).toThrow("in t2.Groups.item[0].id");
  });

  it("proto2 - a missing required field is named by its property name, as every path is", () => {
    const H = codec("Holder");
    // limits { max_count: 1 }, limits {}
    expect(() => H.decode(new Uint8Array([10, 2, 8, 1, 10, 0]))).toThrow("in t2.Holder.limits[1].maxCount");
  });
});

describe("proto2 - defaults", () => {
  it("proto2 - eager messages leave optional fields undefined", () => {
    const m = codec("Defaults").create();
    expect(Object.values(m).every((v) => v === undefined)).toBe(true);
    expect(codec("Defaults").encode(m).length).toBe(0);
  });

  it("proto2 - views return declared defaults for absent fields", () => {
    const v = codec("Defaults").view(new Uint8Array(0));
    expect(v.i).toBe(-42);
    expect(v.big).toBe(-9223372036854775808n);
    expect(v.ubig).toBe(18446744073709551615n);
    expect(v.f).toBe(Math.fround(0.1));
    expect(v.d).toBe(-Infinity);
    expect(v.b).toBe(true);
    expect(v.s).toBe("café");
    expect([...v.y]).toEqual([0, 255, 97]);
    expect(v.e).toBe(5);
    expect(v.plainEnum).toBeUndefined();
    expect(v.plain).toBeUndefined();
    expect(v.num).toBe(77);
  });

  it("proto2 - present fields override defaults, zero included", () => {
    const D = codec("Defaults");
    const bytes = D.encode(D.create({ i: 0, b: false, s: "" }));
    const v = D.view(bytes);
    expect([v.i, v.b, v.s]).toEqual([0, false, ""]);
    expect(D.decode(bytes)).toMatchObject({ i: 0, b: false, s: "" });
  });
});

describe("proto2 - groups", () => {
  const sample = () => ({
    result: { url: "u", deep: { d: 7 } },
    item: [{ id: 1 }, { id: 2 }],
    after: 3,
  });

  it("proto2 - groups encode as start/end tags, byte-identical to protobufjs", () => {
    const G = codec("Groups");
    const ours = G.encode(G.create(sample()));
    const P = root.lookupType("t2.Groups");
    const theirs = P.encode(P.fromObject(sample())).finish();
    expect(Buffer.from(ours).toString("hex")).toBe(Buffer.from(theirs).toString("hex"));
    expect(ours[0]).toBe((1 << 3) | 3);
    expect(G.decode(ours)).toEqual(G.create(sample()));
    expect(G.decode(theirs)).toEqual(G.create(sample()));
  });

  it("proto2 - views decode groups eagerly", () => {
    const G = codec("Groups");
    const v = G.view(G.encode(G.create(sample())));
    expect(v.result).toEqual({ url: "u", deep: { d: 7 } });
    expect(v.item).toEqual([{ id: 1 }, { id: 2 }]);
    expect(v.after).toBe(3);
  });

  it("proto2 - a group that never ends is a DecodeError", () => {
    const G = codec("Groups");
    expect(() => G.decode(new Uint8Array([11, 18, 1, 97]))).toThrow(DecodeError);
    // The error names the group, not the group's last field read.
    expect(() => G.decode(new Uint8Array([11, 18, 1, 97]))).toThrow(/^truncated .* in t2\.Groups\.result$/);
    expect(() => G.decode(new Uint8Array([11, 27, 32, 1]))).toThrow(/^truncated .* in t2\.Groups\.result\.deep$/);
    // Mismatched end tag.
    expect(() => G.decode(new Uint8Array([11, 18, 1, 97, 20]))).toThrow(DecodeError);
  });
});

describe("proto2 - closed enums", () => {
  it("proto2 - unknown values go to unknown fields and are re-emitted", () => {
    const C = codec("Closed");
    // one = 3 (unknown), many = 9 (unknown), many = 2, packed [1, 4, 5], chosen = 7 (unknown)
    const bytes = new Uint8Array([8, 3, 16, 9, 16, 2, 26, 3, 1, 4, 5, 40, 7]);
    const m = C.decode(bytes);
    expect(m.one).toBeUndefined();
    expect(m.many).toEqual([2]);
    expect(m.packed).toEqual([1, 5]);
    expect(m.pick).toBeUndefined();
    expect(m.$unknown.map((u: Uint8Array) => [...u])).toEqual([[8, 3], [16, 9], [24, 4], [40, 7]]);
    const again = C.decode(C.encode(m));
    expect(again.$unknown.length).toBe(4);
    const v = C.view(bytes);
    expect(v.one).toBeUndefined();
    expect(v.many).toEqual([2]);
    expect(v.packed).toEqual([1, 5]);
    expect(v.pick).toBeUndefined();
  });

  it("proto2 - a map entry with an unknown closed enum value is kept whole as unknown", () => {
    const C = codec("Closed");
    const bytes = new Uint8Array([34, 5, 10, 1, 97, 16, 9, 34, 5, 10, 1, 98, 16, 1]);
    const m = C.decode(bytes);
    expect(m.byName).toEqual({ b: 1 });
    expect(m.$unknown.map((u: Uint8Array) => [...u])).toEqual([[34, 5, 10, 1, 97, 16, 9]]);
  });

  it("proto2 - negative unknown values in packed data survive a round trip", () => {
    const C = codec("Closed");
    const w = [26, 11, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1, 2];
    const m = C.decode(new Uint8Array(w));
    expect(m.packed).toEqual([2]);
    expect(C.decode(C.encode(m)).$unknown.map((u: Uint8Array) => [...u])).toEqual([[24, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1]]);
  });
});

describe("proto2 - strings and packing", () => {
  it("proto2 - strings are read leniently (invalid UTF-8 becomes U+FFFD)", () => {
    const S = codec("Strings");
    expect(S.decode(new Uint8Array([10, 2, 0xc3, 0x28])).s).toBe("\uFFFD(");
  });

  it("proto2 - repeated scalars are packed only with [packed = true]", () => {
    const S = codec("Strings");
    const bytes = S.encode(S.create({ loose: [1, 2], tight: [1, 2] }));
    expect([...bytes]).toEqual([16, 1, 16, 2, 26, 2, 1, 2]);
    // Both forms are accepted for both fields.
    expect(S.decode(new Uint8Array([18, 2, 1, 2, 24, 3])).loose).toEqual([1, 2]);
    expect(S.decode(new Uint8Array([18, 2, 1, 2, 24, 3])).tight).toEqual([3]);
  });
});
