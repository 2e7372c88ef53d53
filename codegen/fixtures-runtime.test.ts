import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { InputOf, OutputOf } from "meridian-rpc/runtime";
import { Timestamp as WktTimestamp } from "meridian-rpc/wkt";
import { REPO_ROOT } from "./regen.js";
import * as a from "../test/fixtures/gen/imports/a.js";
import * as b from "../test/fixtures/gen/imports/b.js";
import * as c from "../test/fixtures/gen/imports/c.js";
import * as kw from "../test/fixtures/gen/keywords.js";
import * as p2 from "../test/fixtures/gen/proto2_all.js";
import * as p3 from "../test/fixtures/gen/proto3_all.js";
import * as svc from "../test/fixtures/gen/service.js";
import * as wkt from "../test/fixtures/gen/wkt_use.js";
import * as p3num from "../test/fixtures/gen-number/proto3_all.js";
import * as p3str from "../test/fixtures/gen-string/proto3_all.js";
import * as feed from "../bench/codec/gen/feed.js";
import * as feedNum from "../bench/codec/gen-number/feed.js";

const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);

describe("fixtures - keywords", () => {
  it("fixtures - messages named after globals and prototype members round-trip", () => {
    const o = kw.Object$.create({
      constructor$: 1,
      toString$: 2,
      Proto: 3,
      valueOf$: 4,
      hasOwnProperty$: 5,
      class: "c",
      default: "d",
      protoMap: JSON.parse('{"__proto__": 7, "constructor": 8}'),
    });
    const back = kw.Object$.decode(kw.Object$.encode(o));
    expect(back).toEqual(o);
    expect(Object.getPrototypeOf(back.protoMap)).toBe(Object.prototype);
    expect(back.protoMap["__proto__"]).toBe(7);
    const v = kw.Object$.view(kw.Object$.encode(o));
    expect([v.constructor$, v.toString$, v.Proto, v.class, v.default]).toEqual([1, 2, 3, "c", "d"]);
    expect(Object.keys(v.protoMap)).toEqual(["__proto__", "constructor"]);
  });

  it("fixtures - runtime-named messages, lower-case names and view-name clashes work", () => {
    const r = kw.MessageCodec.create({ reader: { pos: 1 }, writer: { buf: new Uint8Array([1, 2]) } });
    const back = kw.MessageCodec.decode(copy(kw.MessageCodec.encode(r)));
    expect(back).toEqual(r);
    expect(kw.value$.decode(kw.value$.encode({ inner: { r: 5 } }))).toEqual({ inner: { r: 5 } });
    const fv: kw.FooView = { foo: { x: 1 } };
    expect(kw.FooView.decode(kw.FooView.encode(fv))).toEqual(fv);
    const view: kw.FooView$ = kw.Foo.view(kw.Foo.encode({ x: 9 }));
    expect(view.x).toBe(9);
    expect(kw.Outer_Inner$.decode(kw.Outer_Inner$.encode({ b: 2 }))).toEqual({ b: 2 });
    expect(kw.Outer.decode(kw.Outer.encode({ inner: { a: 1 } }))).toEqual({ inner: { a: 1 } });
  });

  it("fixtures - enum members and service keys are escaped", () => {
    expect(kw.Proto.__proto__$).toBe(0);
    expect(kw.Proto.constructor$).toBe(1);
    expect(Object.keys(kw.class$.methods)).toEqual(["constructor$", "toString$", "proto"]);
    expect(kw.class$.methods.constructor$.name).toBe("constructor");
    expect(kw.class$.methods.proto.input).toBe(kw.m$);
    const o = kw.Oneofs.create({ constructorChoice: { case: "toStringCase", value: 3 }, proto: kw.Proto.valueOf$ });
    expect(kw.Oneofs.decode(kw.Oneofs.encode(o))).toEqual(o);
  });
});

describe("fixtures - imports", () => {
  it("fixtures - messages of other files and packages round-trip", () => {
    const user: b.User = { id: 5n, name: "ann", shared: { id: "s" } };
    const post = a.Post.create({
      author: user,
      likes: [user, { id: 6n, name: "bob", shared: undefined }],
      byName: { ann: user },
      role: b.Role.ROLE_ADMIN,
      shared: { id: "x" },
      flag: c.Flag.FLAG_SET,
      tag: { label: "t", role: b.Role.ROLE_ADMIN },
      tags: [{ label: "u", role: b.Role.ROLE_UNKNOWN }],
      ref: { case: "refUser", value: user },
    });
    const bytes = a.Post.encode(post);
    expect(a.Post.decode(bytes)).toEqual(post);
    const v = a.Post.view(bytes);
    expect(v.author?.shared?.id).toBe("s");
    expect(v.byName["ann"]?.name).toBe("ann");
    expect(v.ref?.case).toBe("refUser");
    expect(a.PostService.methods.getAuthor.output).toBe(b.User);
  });
});

describe("fixtures - well-known types", () => {
  it("fixtures - fields of well-known types use the codecs of meridian-rpc/wkt", () => {
    const ev = wkt.Event.create({
      at: { seconds: 1764100000n, nanos: 5 },
      took: { seconds: -1n, nanos: -500 },
      detail: { typeUrl: "type.googleapis.com/x.Y", value: new Uint8Array([1]) },
      attrs: { fields: { a: { kind: { case: "numberValue", value: 1 } }, b: { kind: { case: "nullValue", value: 0 } } } },
      value: { kind: { case: "listValue", value: { values: [{ kind: { case: "boolValue", value: true } }] } } },
      nothing: 0,
      d: { value: 1.5 },
      i64: { value: -3n },
      s: { value: "s" },
      bytes: { value: new Uint8Array([9]) },
      mask: { paths: ["a.b", "c"] },
      history: [{ seconds: 1n, nanos: 0 }],
      extra: { k: { kind: { case: "stringValue", value: "v" } } },
    });
    const bytes = wkt.Event.encode(ev);
    expect(wkt.Event.decode(copy(bytes))).toEqual(ev);
    expect(WktTimestamp.decode(WktTimestamp.encode(ev.at!))).toEqual(ev.at);
    expect(wkt.Pinger.methods.ping.input.typeName).toBe("google.protobuf.Empty");
    const text = readFileSync(join(REPO_ROOT, "test/fixtures/gen/wkt_use.ts"), "utf8");
    expect(text).toContain('from "meridian-rpc/wkt";');
  });
});

describe("fixtures - services", () => {
  it("fixtures - every kind and idempotency level", () => {
    const m = svc.Everything.methods;
    expect(svc.Everything.typeName).toBe("meridian.test.svc.Everything");
    expect(Object.fromEntries(Object.entries(m).map(([k, d]) => [k, [d.name, d.kind, d.idempotency]]))).toEqual({
      getThing: ["GetThing", "unary", "NO_SIDE_EFFECTS"],
      putThing: ["PutThing", "unary", "IDEMPOTENT"],
      doThing: ["DoThing", "unary", "IDEMPOTENCY_UNKNOWN"],
      watch: ["Watch", "server_streaming", "NO_SIDE_EFFECTS"],
      upload: ["Upload", "client_streaming", "IDEMPOTENCY_UNKNOWN"],
      chat: ["Chat", "bidi_streaming", "IDEMPOTENCY_UNKNOWN"],
    });
    expect(m.getThing.input).toBe(svc.Request);
    expect(svc.Empty.methods).toEqual({});
    expectTypeOf<InputOf<typeof m.getThing>>().toEqualTypeOf<svc.Request>();
    expectTypeOf<OutputOf<typeof m.chat>>().toEqualTypeOf<svc.Response>();
  });
});

describe("fixtures - int64 representations", () => {
  it("fixtures - bigint, number and string modes encode the same bytes", () => {
    const big = p3.Scalars.create({ fInt64: -5n, fUint64: 9007199254740991n, fSint64: -3n, fFixed64: 4n, fSfixed64: -6n });
    const num = p3num.Scalars.create({ fInt64: -5, fUint64: 9007199254740991, fSint64: -3, fFixed64: 4, fSfixed64: -6 });
    const str = p3str.Scalars.create({ fInt64: "-5", fUint64: "9007199254740991", fSint64: "-3", fFixed64: "4", fSfixed64: "-6" });
    const bytes = Buffer.from(p3.Scalars.encode(big)).toString("hex");
    expect(Buffer.from(p3num.Scalars.encode(num)).toString("hex")).toBe(bytes);
    expect(Buffer.from(p3str.Scalars.encode(str)).toString("hex")).toBe(bytes);
    expect(p3num.Scalars.decode(p3.Scalars.encode(big))).toEqual(num);
    expect(p3str.Scalars.decode(p3.Scalars.encode(big))).toEqual(str);
    expect(p3str.Scalars.view(p3.Scalars.encode(big)).fUint64).toBe("9007199254740991");
  });

  it("fixtures - the benchmark's bigint and number feeds encode the same bytes", () => {
    const video = (id: number) => ({
      id: BigInt(id),
      title: "t",
      url: "u",
      durationMs: 5,
      score: 0.5,
      hd: true,
      author: { id: BigInt(id * 7), name: "a", region: "r", tags: ["x"] },
      stats: [1, 2],
      labels: { k: "v" },
      cover: new Uint8Array([1]),
    });
    const big = { items: [video(1), video(2)], cursor: "c", serverTime: 1764100000000n };
    const bytes = feed.FeedResponse.encode(big);
    const num = feedNum.FeedResponse.decode(bytes);
    expect(num.serverTime).toBe(1764100000000);
    expect(num.items[1]!.author!.id).toBe(14);
    expect(Buffer.from(feedNum.FeedResponse.encode(num)).equals(Buffer.from(bytes))).toBe(true);
  });

  it("fixtures - jstype overrides the mode per field", () => {
    const m = p3.JsTypes.create({ asDefault: 1n, asNumber: 2, asString: "18446744073709551615", manyNumbers: [-1, 2], manyStrings: ["3"], maybeString: "0" });
    const back = p3.JsTypes.decode(p3.JsTypes.encode(m));
    expect(back).toEqual(m);
    expect(p3num.JsTypes.decode(p3.JsTypes.encode(m)).asDefault).toBe(1);
  });
});

describe("fixtures - proto2 defaults", () => {
  it("fixtures - views return every kind of declared default", () => {
    const v = p2.Defaults.view(new Uint8Array(0));
    expect(v.dInt32).toBe(-42);
    expect(v.dUint32).toBe(16);
    expect(v.dInt64).toBe(-9223372036854775808n);
    expect(v.dUint64).toBe(18446744073709551615n);
    expect(v.dSint64).toBe(9007199254740993n);
    expect(v.dFloat).toBe(1.5);
    expect(v.dDouble).toBe(-Infinity);
    expect(v.dNan).toBeNaN();
    expect(v.dBool).toBe(true);
    expect(v.dString).toBe('café "quoted" */');
    expect([...v.dBytes]).toEqual([0, 1, 255, 97, 98, 99]);
    expect(v.dEnum).toBe(p2.Level.HIGH);
    expect(v.dEmpty).toBe("");
    expect(v.dOctal).toBe(15);
    expect(v.dFloatInf).toBe(Infinity);
    expect(v.noDefault).toBeUndefined();
    expect(v.concat).toBe("ab");
    expect(v.dBytesEmpty.length).toBe(0);
    expect(v.dInt64Number).toBe(123);
    expect(v.dInt64String).toBe("-5");
  });

  it("fixtures - groups and required fields of the proto2 fixture", () => {
    const g = p2.WithGroups.create({ result: { url: "u", rank: 1, inner: { deep: true } }, item: [{ id: 1, label: "x" }], after: 2 });
    expect(p2.WithGroups.decode(p2.WithGroups.encode(g))).toEqual(g);
    const r = p2.Required.create({ id: 1, name: "n", level: p2.Level.MEDIUM, inner: {}, data: new Uint8Array([1]), big: 5n });
    expect(p2.Required.decode(copy(p2.Required.encode(r)))).toEqual({ ...r, inner: { x: undefined } });
  });
});
