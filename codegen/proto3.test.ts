import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DecodeError, type MessageCodec } from "meridian-rpc/runtime";
import { generateSources, removeTestDirs } from "./test-harness.js";

afterAll(removeTestDirs);

// protobufjs is the reference encoder: same IDL, same values, the bytes must match (64-bit
// values reach it as decimal strings, which it parses with Long).

const IDL = `
syntax = "proto3";
package t3;

enum Color { COLOR_UNSPECIFIED = 0; RED = 1; GREEN = 2; NEG = -3; }

message Leaf { string name = 1; int32 n = 2; }

message All {
  double f_double = 1;
  float f_float = 2;
  int64 f_int64 = 3;
  uint64 f_uint64 = 4;
  int32 f_int32 = 5;
  fixed64 f_fixed64 = 6;
  fixed32 f_fixed32 = 7;
  bool f_bool = 8;
  string f_string = 9;
  bytes f_bytes = 10;
  uint32 f_uint32 = 13;
  sfixed32 f_sfixed32 = 15;
  sfixed64 f_sfixed64 = 16;
  sint32 f_sint32 = 17;
  sint64 f_sint64 = 18;
  Color f_enum = 19;
  Leaf f_leaf = 20;
  optional int32 o_int32 = 21;
  optional string o_string = 22;
  repeated int32 r_int32 = 23;
  repeated string r_string = 24;
  repeated Leaf r_leaf = 25;
  repeated double r_double = 26;
  repeated Color r_enum = 27;
  repeated sint64 r_sint64 = 28;
  repeated int32 r_unpacked = 29 [packed = false];
  map<string, int32> m_str = 30;
  map<int32, string> m_int = 31;
  map<bool, Leaf> m_bool = 32;
  map<int64, bytes> m_i64 = 33;
  map<string, Color> m_enum = 34;
  oneof pick {
    int32 p_int = 35;
    string p_str = 36;
    Leaf p_leaf = 37;
  }
}

message Node { Node child = 1; repeated Node kids = 2; int32 v = 3; }
`;

interface Leaf {
  name: string;
  n: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

let mod: Record<string, Any>;
let All: MessageCodec<Any, Any>;
let Leaf: MessageCodec<Leaf, Any>;
let Node: MessageCodec<Any, Any>;
let PAll: protobuf.Type;

beforeAll(async () => {
  const g = generateSources({ "t3.proto": IDL });
  mod = await g.load("t3.ts");
  All = mod["All"];
  Leaf = mod["Leaf"];
  Node = mod["Node"];
  PAll = protobuf.parse(IDL, { keepCase: false }).root.lookupType("t3.All");
});

const full = () => ({
  fDouble: 1.5,
  fFloat: -2.25,
  fInt64: -5000000000n,
  fUint64: 18446744073709551615n,
  fInt32: -7,
  fFixed64: 9007199254740993n,
  fFixed32: 4294967295,
  fBool: true,
  fString: "héllo wörld ✓ 😀",
  fBytes: new Uint8Array([0, 1, 2, 255]),
  fUint32: 4000000000,
  fSfixed32: -123456,
  fSfixed64: -9223372036854775808n,
  fSint32: -2147483648,
  fSint64: 9223372036854775807n,
  fEnum: 2,
  fLeaf: { name: "leaf", n: 3 },
  oInt32: 0,
  oString: "",
  rInt32: [1, -1, 300, 0],
  rString: ["a", "", "ccc"],
  rLeaf: [
    { name: "x", n: 1 },
    { name: "", n: 0 },
  ],
  rDouble: [0, -0, 1e300, NaN],
  rEnum: [0, 1, 2, -3],
  rSint64: [-1n, 1n, -9223372036854775808n],
  rUnpacked: [5, 6],
  mStr: { a: 1, b: -2, "": 0 },
  mInt: { "1": "one", "-5": "minus five" },
  mBool: { true: { name: "t", n: 1 }, false: { name: "f", n: 0 } },
  mI64: { "-9223372036854775808": new Uint8Array([1]), "42": new Uint8Array(0) },
  mEnum: { x: 1, y: 0 },
  pick: { case: "pLeaf", value: { name: "picked", n: 9 } },
});

/** The same message in protobufjs's shape (Long disabled: int64 as decimal strings). */
function toPbjs(m: Any): Any {
  const conv = (v: unknown): unknown => (typeof v === "bigint" ? v.toString() : v);
  const out: Any = {};
  for (const [k, v] of Object.entries(m)) {
    if (k === "pick") {
      if (v !== undefined) out[(v as Any).case] = (v as Any).value;
    } else if (Array.isArray(v)) out[k] = v.map(conv);
    else if (v instanceof Uint8Array) out[k] = v;
    else if (v !== null && typeof v === "object") {
      const o: Any = {};
      for (const [kk, vv] of Object.entries(v)) o[kk] = conv(vv);
      out[k] = o;
    } else out[k] = conv(v);
  }
  return out;
}

describe("proto3 - encode", () => {
  it("proto3 - encodes byte-identically to protobufjs", () => {
    const m = All.create(full());
    const ours = All.encode(m);
    const theirs = PAll.encode(PAll.fromObject(toPbjs(full()))).finish();
    expect(Buffer.from(ours).toString("hex")).toBe(Buffer.from(theirs).toString("hex"));
  });

  it("proto3 - skips implicit zero values and writes explicit ones", () => {
    expect(All.encode(All.create()).length).toBe(0);
    const m = All.create({ oInt32: 0, oString: "" });
    expect([...All.encode(m)]).toEqual([21 * 8, 0, 22 * 8 + 2, 0].flatMap((b) => (b >= 128 ? [(b & 127) | 128, b >> 7] : [b])));
  });

  it("proto3 - writes -0 for float and double", () => {
    const bytes = All.encode(All.create({ fDouble: -0 }));
    expect(bytes.length).toBe(9);
    expect(Object.is(All.decode(bytes).fDouble, -0)).toBe(true);
  });

  it("proto3 - empty repeated and maps write nothing", () => {
    expect(All.encode(All.create({ rInt32: [], mStr: {} })).length).toBe(0);
  });
});

describe("proto3 - decode", () => {
  it("proto3 - round-trips every field", () => {
    const m = All.create(full());
    // A copy: decode returns bytes fields as views of its input (here a Buffer otherwise).
    const back = All.decode(new Uint8Array(All.encode(m)));
    const expected = { ...full(), fFloat: Math.fround(-2.25), fString: "héllo wörld ✓ 😀" };
    expect(back).toEqual(expected);
  });

  it("proto3 - decodes what protobufjs encodes", () => {
    const bytes = PAll.encode(PAll.fromObject(toPbjs(full()))).finish();
    expect(All.decode(bytes)).toEqual(All.decode(All.encode(All.create(full()))));
  });

  it("proto3 - accepts packed and unpacked encodings of repeated scalars", () => {
    // r_int32 (23) unpacked twice, r_unpacked (29) packed.
    const bytes = new Uint8Array([184, 1, 7, 184, 1, 8, 234, 1, 2, 1, 2]);
    const m = All.decode(bytes);
    expect(m.rInt32).toEqual([7, 8]);
    expect(m.rUnpacked).toEqual([1, 2]);
  });

  it("proto3 - last scalar wins and messages merge", () => {
    const a = Leaf.encode({ name: "a", n: 1 });
    const b = Leaf.encode({ name: "", n: 2 });
    const bytes = Buffer.concat([Buffer.from([162, 1, a.length]), a, Buffer.from([162, 1, b.length]), b]);
    expect(All.decode(bytes).fLeaf).toEqual({ name: "a", n: 2 });
  });

  it("proto3 - keeps unknown fields and re-emits them last", () => {
    const unknown = [250, 6, 3, 1, 2, 3]; // field 111, length 3
    const bytes = new Uint8Array([...unknown, 40, 5]);
    const m = All.decode(bytes);
    expect(m.fInt32).toBe(5);
    expect([...All.encode(m)]).toEqual([40, 5, ...unknown]);
  });

  it("proto3 - map entries with missing key or value get defaults; __proto__ is a plain key", () => {
    // m_str entry with only a value; m_int entry with only a key; m_bool entry without value.
    const bytes = new Uint8Array([242, 1, 2, 16, 7, 250, 1, 2, 8, 3, 130, 2, 2, 8, 1]);
    const m = All.decode(bytes);
    expect(m.mStr).toEqual({ "": 7 });
    expect(m.mInt).toEqual({ "3": "" });
    expect(m.mBool).toEqual({ true: { name: "", n: 0 } });
    const evil = All.decode(All.encode(All.create({ mStr: JSON.parse('{"__proto__": 5}') })));
    expect(Object.getPrototypeOf(evil.mStr)).toBe(Object.prototype);
    expect(Object.keys(evil.mStr)).toEqual(["__proto__"]);
    expect(evil.mStr["__proto__"]).toBe(5);
  });

  it("proto3 - open enums keep unknown numbers", () => {
    const m = All.decode(new Uint8Array([152, 1, 99]));
    expect(m.fEnum).toBe(99);
  });

  it("proto3 - strings must be valid UTF-8", () => {
    expect(() => All.decode(new Uint8Array([74, 2, 0xc3, 0x28]))).toThrow(DecodeError);
  });

  it("proto3 - oneof: last member wins, message members merge", () => {
    const leaf1 = Leaf.encode({ name: "x", n: 0 });
    const leaf2 = Leaf.encode({ name: "", n: 4 });
    const bytes = Buffer.concat([
      Buffer.from([152, 2, 1]), // p_int = 1
      Buffer.from([170, 2, leaf1.length]),
      leaf1,
      Buffer.from([170, 2, leaf2.length]),
      leaf2,
    ]);
    expect(All.decode(bytes).pick).toEqual({ case: "pLeaf", value: { name: "x", n: 4 } });
    const later = Buffer.concat([bytes, Buffer.from([162, 2, 1, 65])]); // p_str = "A"
    expect(All.decode(later).pick).toEqual({ case: "pStr", value: "A" });
    expect(All.view(later).pick).toEqual({ case: "pStr", value: "A" });
    expect(All.view(bytes).pick.value.name).toBe("x");
    expect(All.view(bytes).pick.value.n).toBe(4);
  });

  it("proto3 - oneof: a message member after another member starts afresh, in views too", () => {
    const leaf = (v: Leaf): Buffer => {
      const b = Leaf.encode(v);
      return Buffer.concat([Buffer.from([170, 2, b.length]), b]); // p_leaf
    };
    const bytes = Buffer.concat([leaf({ name: "x", n: 1 }), Buffer.from([152, 2, 1]), leaf({ name: "", n: 4 }), leaf({ name: "y", n: 0 })]);
    expect(All.decode(bytes).pick).toEqual({ case: "pLeaf", value: { name: "y", n: 4 } });
    const v = All.view(bytes).pick;
    expect([v.case, v.value.name, v.value.n]).toEqual(["pLeaf", "y", 4]);
  });

  it("proto3 - a message field seen twice merges every occurrence, whatever lies between", () => {
    const a = Node.encode({ v: 1, kids: [] });
    const b = Node.encode({ v: 0, kids: [{ v: 2, kids: [] }] });
    // child { v: 1 }, v: 3, child { kids { v: 2 } }
    const bytes = Buffer.concat([Buffer.from([10, a.length]), a, Buffer.from([24, 3]), Buffer.from([10, b.length]), b]);
    expect(Node.decode(bytes).child).toEqual({ v: 1, kids: [{ v: 2, kids: [] }] });
    const child = Node.view(bytes).child;
    expect([child.v, child.kids.length, child.kids[0].v]).toEqual([1, 1, 2]);
  });
});

describe("proto3 - errors", () => {
  it("proto3 - wrong wire type for a known field is a DecodeError with the path", () => {
    const inner = new Uint8Array([13, 0, 0, 0, 0]); // Leaf.name (1) as fixed32
    const bytes = Buffer.concat([Buffer.from([202, 1, inner.length]), inner]);
    let err: unknown;
    try {
      All.decode(bytes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).code).toBe("WRONG_WIRE_TYPE");
    expect((err as DecodeError).fieldPath()).toBe("t3.All.rLeaf[0].name");
  });

  it("proto3 - truncated data is a DecodeError", () => {
    const bytes = All.encode(All.create(full()));
    for (const cut of [1, 5, 17, bytes.length - 1]) {
      expect(() => All.decode(bytes.subarray(0, cut))).toThrow(DecodeError);
    }
  });

  it("proto3 - nesting past the depth limit is DEPTH_EXCEEDED", () => {
    let node: Any = Node.create({ v: 1 });
    for (let i = 0; i < 150; i++) node = Node.create({ child: node });
    const bytes = Node.encode(node);
    expect(() => Node.decode(bytes)).toThrow(expect.objectContaining({ code: "DEPTH_EXCEEDED" }));
    let ok: Any = Node.create({ v: 1 });
    for (let i = 0; i < 50; i++) ok = Node.create({ child: ok });
    expect(Node.decode(Node.encode(ok))).toEqual(ok);
  });
});

describe("proto3 - views", () => {
  it("proto3 - every getter agrees with decode", () => {
    const bytes = All.encode(All.create(full()));
    const eager = All.decode(bytes);
    const view = All.view(bytes);
    for (const key of Object.keys(full())) {
      const v = view[key];
      if (key === "fLeaf") expect({ name: v.name, n: v.n }).toEqual(eager.fLeaf);
      else if (key === "rLeaf") expect(v.map((x: Any) => ({ name: x.name, n: x.n }))).toEqual(eager.rLeaf);
      else if (key === "mBool") {
        expect(Object.fromEntries(Object.entries(v).map(([k, x]: [string, Any]) => [k, { name: x.name, n: x.n }]))).toEqual(eager.mBool);
      } else if (key === "pick") expect({ case: v.case, value: { name: v.value.name, n: v.value.n } }).toEqual(eager.pick);
      else expect(v).toEqual(eager[key]);
    }
  });

  it("proto3 - absent fields read as defaults", () => {
    const view = All.view(new Uint8Array(0));
    expect(view.fInt32).toBe(0);
    expect(view.fInt64).toBe(0n);
    expect(view.fString).toBe("");
    expect(view.fBytes.length).toBe(0);
    expect(view.fLeaf).toBeUndefined();
    expect(view.oInt32).toBeUndefined();
    expect(view.rInt32).toEqual([]);
    expect(view.mStr).toEqual({});
    expect(view.pick).toBeUndefined();
  });
});

describe("proto3 - property", () => {
  it("proto3 - random messages encode like protobufjs and round-trip", async () => {
    const fc = (await import("fast-check")).default;
    const i32 = fc.integer({ min: -2147483648, max: 2147483647 });
    const u32 = fc.integer({ min: 0, max: 4294967295 });
    const i64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    const f32 = fc.float({ noNaN: true }).map((x) => Math.fround(x));
    const f64 = fc.double({ noNaN: true });
    const str = fc.string({ unit: "grapheme", maxLength: 20 });
    const bytes = fc.uint8Array({ maxLength: 20 });
    const leaf = fc.record({ name: str, n: i32 });
    const color = fc.constantFrom(0, 1, 2, -3);
    const mapKey = str.filter((k) => k !== "__proto__");
    const arb = fc.record({
      fDouble: f64,
      fFloat: f32,
      fInt64: i64,
      fUint64: u64,
      fInt32: i32,
      fFixed64: u64,
      fFixed32: u32,
      fBool: fc.boolean(),
      fString: str,
      fBytes: bytes,
      fUint32: u32,
      fSfixed32: i32,
      fSfixed64: i64,
      fSint32: i32,
      fSint64: i64,
      fEnum: color,
      fLeaf: fc.option(leaf, { nil: undefined }),
      oInt32: fc.option(i32, { nil: undefined }),
      oString: fc.option(str, { nil: undefined }),
      rInt32: fc.array(i32, { maxLength: 5 }),
      rString: fc.array(str, { maxLength: 5 }),
      rLeaf: fc.array(leaf, { maxLength: 3 }),
      rDouble: fc.array(f64, { maxLength: 5 }),
      rEnum: fc.array(color, { maxLength: 5 }),
      rSint64: fc.array(i64, { maxLength: 5 }),
      rUnpacked: fc.array(i32, { maxLength: 5 }),
      // "__proto__" keys are covered in fixtures-runtime.test.ts: protobufjs's fromObject drops them.
      mStr: fc.dictionary(mapKey, i32, { maxKeys: 3 }),
      mInt: fc.dictionary(i32.map(String), str, { maxKeys: 3 }),
      mBool: fc.dictionary(fc.constantFrom("true", "false"), leaf, { maxKeys: 2 }),
      mI64: fc.dictionary(i64.map(String), bytes, { maxKeys: 3 }),
      mEnum: fc.dictionary(mapKey, color, { maxKeys: 3 }),
      pick: fc.option(
        fc.oneof(
          i32.map((value) => ({ case: "pInt", value })),
          str.map((value) => ({ case: "pStr", value })),
          leaf.map((value) => ({ case: "pLeaf", value })),
        ),
        { nil: undefined },
      ),
    });
    fc.assert(
      fc.property(arb, (value) => {
        // protobufjs writes implicit fields whenever they are set: give it only non-default ones.
        const pb: Any = {};
        for (const [k, v] of Object.entries(toPbjs(value))) {
          const zero = v === 0 || v === false || v === "" || v === "0" || (v instanceof Uint8Array && v.length === 0);
          const explicit = k.startsWith("o") || k.startsWith("p"); // optional fields, oneof members
          if (v !== undefined && (explicit || !zero || Object.is(v, -0))) pb[k] = v;
        }
        const ours = All.encode(All.create(value));
        const theirs = PAll.encode(PAll.fromObject(pb)).finish();
        expect(Buffer.from(ours).toString("hex")).toBe(Buffer.from(theirs).toString("hex"));
        const back = All.decode(new Uint8Array(ours));
        expect(All.encode(back)).toEqual(ours);
      }),
      { numRuns: 300 },
    );
  });
});
