/**
 * `meridian gen` for .thrift files: inline IDL in, the emitted lines or the generated module's
 * run-time behaviour out; the CLI's files and errors; the committed fixture
 * (test/thrift/interop/gen-ts, from interop.thrift) regenerated without a diff, round-tripping
 * over both protocols; and tsc over the output of test/thrift/idl with a typed client and
 * handlers.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { DecodeError, EncodeError } from "meridian-rpc";
import { generateThrift, IdlError } from "meridian-rpc/codegen";
import { ThriftException, ThriftStructCodec, Writer, type ThriftStructSchema, type ThriftTypeSchema } from "meridian-rpc/runtime";
import { main } from "../../cli/main.js";
import { diffGenerated, generateAll, REPO_ROOT } from "../../codegen/regen.js";
import { removeTestDirs, testWorkDir, typecheckConsumer } from "../../codegen/test-harness.js";
import { loadThriftFiles } from "../../idl/thrift/link.js";
import { ThriftSchemas } from "../../idl/thrift/schema.js";
import { meridianChild } from "../support/meridian-cli.js";
import { Color, Everything, Invalid, InvalidCodec, InteropService, NotFound, NotFoundCodec, Shape } from "./interop/gen-ts/interop.js";

afterAll(removeTestDirs);

/** Options that read in-memory files of a folder /idl. */
function inMemory(files: Record<string, string>) {
  return {
    includeDirs: ["/idl"],
    readFile: (p: string) => {
      const text = files[p.replace(/^\/idl\//, "")];
      if (text === undefined) throw new Error("ENOENT");
      return text;
    },
  };
}

/** The first of in-memory `files`, as the file asked for. */
const root = (files: Record<string, string>): string => `/idl/${Object.keys(files)[0]!}`;

/** The linked program of in-memory `files` (the reference schemas are built from it). */
function link(files: Record<string, string>) {
  return loadThriftFiles([root(files)], inMemory(files));
}

/** The generated modules of `files`, by output name. */
function gen(files: Record<string, string>): Map<string, string> {
  return new Map(generateThrift([root(files)], inMemory(files)).map((o) => [o.name, o.content]));
}

/** The IdlError message generating `files` throws. */
function genError(files: Record<string, string>): string {
  try {
    gen(files);
  } catch (e) {
    expect(e).toBeInstanceOf(IdlError);
    return (e as Error).message;
  }
  throw new Error("expected an IdlError");
}

/** A generated module, loosely typed: the tests read what they need off it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Module = Record<string, any>;

/**
 * Generates `files` into a fresh directory inside the repository (so "meridian-rpc/runtime"
 * resolves as for a user) and imports the module of the first one.
 */
async function load(files: Record<string, string>): Promise<Module> {
  const dir = testWorkDir("thrift-gen");
  for (const [name, content] of gen(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return (await import(pathToFileURL(join(dir, Object.keys(files)[0]!.replace(/\.thrift$/, ".ts"))).href)) as Module;
}

/** A schema with its struct thunks replaced by the struct's name, and no `make`: comparable with toEqual. */
function plain(schema: ThriftStructSchema): unknown {
  const type = (t: ThriftTypeSchema): unknown => {
    switch (t.t) {
      case "struct":
        return { t: "struct", name: t.struct().name };
      case "list":
      case "set":
        return { t: t.t, elem: type(t.elem) };
      case "map":
        return { t: "map", key: type(t.key), value: type(t.value) };
      default:
        return t;
    }
  };
  return { name: schema.name, kind: schema.kind, fields: schema.fields.map((f) => ({ ...f, type: type(f.type) })) };
}

/** Constants of every type, referring to enums, other constants and an included file. */
const CONSTS: Record<string, string> = {
  "c.thrift": [
    'include "other.thrift"',
    "const i32 SUM = LIMIT",
    "const i32 LIMIT = 7",
    "const i64 BIG = 9223372036854775807",
    "const i8 TINY = -3",
    "const double RATIO = 1.5e3",
    "const double WHOLE = 2",
    "const bool ON = true",
    "const bool OFF = 0",
    'const string HELLO = "hi \\"there\\""',
    'const binary BYTES = "é"',
    'const uuid ID = "{00112233-4455-6677-8899-AABBCCDDEEFF}"',
    "const list<i32> NUMBERS = [1, LIMIT]",
    "const set<string> TAGS = []",
    'const map<string, list<i64>> GROUPS = { "a": [1, 2], "b": [] }',
    "const map<Color, string> NAMES = { Color.RED: \"red\" }",
    'const Point ORIGIN = { "x": 0, "label": other.WORD, "color": Color.BLUE }',
    "const Color FAVORITE = Color.BLUE",
    "const Color SECOND = 2",
    "const other.Kind KIND = other.Kind.B",
    "const map<string, string> NONE = {}",
    "const double NEG = -0.0",
    'const Oops OOPS = { "message": "no" }',
    "enum Color { RED = 1, GREEN, BLUE }",
    "exception Oops { 1: string message }",
    "struct Point { 1: i32 x; 2: i32 y; 3: string label; 4: Color color }",
  ].join("\n"),
  "other.thrift": 'const string WORD = "w"\nenum Kind { A, B }',
};

/** Names that clash with JavaScript, TypeScript, the runtime and each other. */
const NAMES: Record<string, string> = {
  "n.thrift": [
    "struct Map { 1: map<string, i32> m }",
    "struct number { 1: i32 x }",
    "struct NotFoundCodec { 1: i32 y }",
    "exception NotFound {}",
    "struct ThriftException { 1: i32 z }",
    "struct S { 1: Map a; 2: number b; 3: ThriftException c; 4: NotFound d }",
    "exception Failed { 1: string cause }",
  ].join("\n"),
};

/** A service extending a service that extends an included one; exceptions local and included. */
const SERVICES: Record<string, string> = {
  "svc.thrift": [
    'include "base.thrift"',
    "exception Oops { 1: string message }",
    "/** The service. */",
    "service Svc extends Mid {",
    '  i64 add(1: i32 a, 2: required i64 b = 5) (meridian.idempotency = "NO_SIDE_EFFECTS")',
    "  void fail() throws (1: Oops oops, 2: base.Gone gone)",
    "  oneway void note(1: string text)",
    '  string put(1: string v) (meridian.idempotency = "IDEMPOTENT")',
    "}",
    "service Mid extends base.Root { void mid() }",
  ].join("\n"),
  "base.thrift": "exception Gone {}\nservice Root { string ping() }",
};

describe("thrift gen - constructs", () => {
  it("thrift gen - provenance header, file and definition docs as JSDoc, runtime imports from meridian-rpc/runtime", () => {
    const out = gen({
      "a.thrift": "/** The file. */\nnamespace js a\n\n/** A point.\n * Second line. */\nstruct P {\n  /** Across. */\n  1: i32 x\n}\n/** Colors. */\nenum C {\n  /** Red. */\n  RED = 1\n}\nservice S {\n  /** Pings. */\n  void ping()\n}\n",
    }).get("a.ts")!;
    expect(out.split("\n").slice(0, 2)).toEqual([expect.stringMatching(/^\/\/ @generated by meridian v\d+\.\d+\.\d+ from a\.thrift\. DO NOT EDIT\.$/), "/* eslint-disable */"]);
    expect(out).toContain("/**\n * The file.\n *\n * @packageDocumentation\n */");
    expect(out).toContain('import { thriftMethod, thriftService, thriftStruct, type ThriftStructCodec } from "meridian-rpc/runtime";');
    expect(out).toContain("/**\n * A point.\n * Second line.\n */\nexport interface P {\n  /** Across. */\n  x?: number;\n}");
    expect(out).toContain("/** Colors. */\nexport const C = {\n  /** Red. */\n  RED: 1,\n} as const;");
    expect(out).toContain("  /** Pings. */\n  ping: thriftMethod<S_ping_args, void>({");
  });

  it("thrift gen - enum: a constant object of numbers and the union of its values as the type", async () => {
    const files = { "e.thrift": "enum Color { RED = 1, GREEN, BLUE = 10 }\nenum Empty {}" };
    const out = gen(files).get("e.ts")!;
    expect(out).toContain("export const Color = {\n  RED: 1,\n  GREEN: 2,\n  BLUE: 10,\n} as const;\nexport type Color = (typeof Color)[keyof typeof Color];");
    expect(out).toContain("export const Empty = {} as const;\nexport type Empty = never;");
    const m = await load(files);
    expect(m.Color).toEqual({ RED: 1, GREEN: 2, BLUE: 10 });
  });

  it("thrift gen - typedef: a type alias of the type as written; fields keep the typedef's name", () => {
    const out = gen({
      "t.thrift": "typedef i64 Millis\ntypedef Millis Stamp\ntypedef list<map<string, binary>> Blobs\nstruct S { 1: Stamp at; 2: Blobs blobs }",
    }).get("t.ts")!;
    expect(out).toContain("export type Millis = bigint;");
    expect(out).toContain("export type Stamp = Millis;");
    expect(out).toContain("export type Blobs = Map<string, Uint8Array>[];");
    expect(out).toContain("  at?: Stamp;\n  blobs?: Blobs;");
    expect(out).toContain('{ id: 1, name: "at", type: { t: "i64" }, requiredness: "default" },');
  });

  it("thrift gen - const: each type's JavaScript value, enum values and other constants by name", async () => {
    const files = CONSTS;
    const out = gen(files).get("c.ts")!;
    for (const line of [
      'import { Kind, WORD } from "./other.js";',
      "export const BIG = 9223372036854775807n;",
      "export const TINY = -3;",
      "export const RATIO = 1500;",
      "export const WHOLE = 2;",
      "export const OFF = false;",
      'export const HELLO = "hi \\"there\\"";',
      "export const BYTES = new Uint8Array([195, 169]);",
      'export const ID = "00112233-4455-6677-8899-aabbccddeeff";',
      "export const NUMBERS: number[] = [1, LIMIT];",
      "export const TAGS: string[] = [];",
      'export const GROUPS: Map<string, bigint[]> = new Map([["a", [1n, 2n]], ["b", []]]);',
      'export const NAMES: Map<Color, string> = new Map([[Color.RED, "red"]]);',
      "export const ORIGIN: Point = { x: 0, label: WORD, color: Color.BLUE };",
      "export const FAVORITE: Color = Color.BLUE;",
      "export const SECOND: Color = 2;",
      "export const KIND: Kind = Kind.B;",
      "export const NONE: Map<string, string> = new Map();",
      "export const NEG = -0;",
      'export const OOPS: Oops = new Oops({ message: "no" });',
    ]) {
      expect(out).toContain(line);
    }
    // What a constant needs while the module loads comes first: LIMIT before SUM, Color before NAMES.
    expect(out.indexOf("export const LIMIT")).toBeLessThan(out.indexOf("export const SUM"));
    expect(out.indexOf("export const Color")).toBeLessThan(out.indexOf("export const NAMES"));
    expect(out.indexOf("export class Oops")).toBeLessThan(out.indexOf("export const OOPS"));
    const m = await load(files);
    expect(m.SUM).toBe(7);
    expect(m.BIG).toBe(2n ** 63n - 1n);
    expect(m.BYTES).toEqual(new Uint8Array([0xc3, 0xa9]));
    expect(m.NUMBERS).toEqual([1, 7]);
    expect(m.GROUPS).toEqual(new Map([["a", [1n, 2n]], ["b", []]]));
    expect(m.NAMES).toEqual(new Map([[1, "red"]]));
    expect(m.ORIGIN).toEqual({ x: 0, label: "w", color: 3 });
    expect([m.FAVORITE, m.SECOND, m.KIND]).toEqual([3, 2, 1]);
    expect(Object.is(m.NEG, -0)).toBe(true);
    expect(m.OOPS).toBeInstanceOf(m.Oops);
    expect(m.OOPS.message).toBe("no");
    // A constant is a value of its type: the codec takes it.
    expect((m.Point as ThriftStructCodec<object>).decode(m.Point.encode(m.ORIGIN))).toEqual(m.ORIGIN);
  });

  it("thrift gen - const: constants defined by each other are a located error", () => {
    expect(genError({ "c.thrift": "const i32 A = B\nconst i32 B = A\n" })).toBe("c.thrift:1:11: A refers to itself through A -> B -> A: a constant cannot be defined by its own value");
  });

  it("thrift gen - struct: an interface (required fields always set, others absent when unset) and a codec whose create() fills in the defaults", async () => {
    const files = {
      "s.thrift": [
        "struct Item {",
        "  1: required string id",
        "  2: optional i32 count = 3",
        "  3: list<string> tags = [\"a\"]",
        "  4: map<i32, Item> children",
        "  5: set<i64> seen",
        "  6: uuid key",
        "  7: binary data",
        "  8: double ratio",
        "  9: bool on = true",
        "  10: i16 small",
        "  11: byte tiny",
        "}",
        "struct Empty {}",
      ].join("\n"),
    };
    const out = gen(files).get("s.ts")!;
    expect(out).toContain(
      [
        "export interface Item {",
        "  id: string;",
        "  count?: number;",
        "  tags?: string[];",
        "  children?: Map<number, Item>;",
        "  seen?: bigint[];",
        "  key?: string;",
        "  data?: Uint8Array;",
        "  ratio?: number;",
        "  on?: boolean;",
        "  small?: number;",
        "  tiny?: number;",
        "}",
      ].join("\n"),
    );
    expect(out).toContain("export const Item: ThriftStructCodec<Item> = thriftStruct<Item>(\n  {\n    name: \"s.Item\",\n    kind: \"struct\",");
    expect(out).toContain('  { defaults: () => ({ count: 3, tags: ["a"], on: true }) },\n);');
    expect(out).toContain('export interface Empty {}\n\nexport const Empty: ThriftStructCodec<Empty> = thriftStruct({ name: "s.Empty", kind: "struct", fields: [] });');
    const m = await load(files);
    const Item = m.Item as ThriftStructCodec<Record<string, unknown>>;
    const a = Item.create({ id: "x" });
    expect(a).toEqual({ count: 3, tags: ["a"], on: true, id: "x" });
    (a.tags as string[]).push("b");
    expect(Item.create().tags).toEqual(["a"]); // a fresh default per call
    const value = { id: "p", children: new Map([[1, { id: "c" }]]), seen: [1n], key: "00112233-4455-6677-8899-aabbccddeeff", data: new Uint8Array([1]) };
    expect(Item.decode(Item.encode(value))).toEqual(value);
    expect(() => Item.encode({})).toThrow(EncodeError);
    expect(plain(Item.schema)).toEqual(plain(new ThriftSchemas(link(files)).struct("Item", "s.thrift")));
  });

  it("thrift gen - union: every field optional, and the codec refuses other than one field set", async () => {
    const files = { "u.thrift": "union Shape { 1: i32 side; 2: string label }" };
    expect(gen(files).get("u.ts")).toContain("/** A union: exactly one field is set. */\nexport interface Shape {\n  side?: number;\n  label?: string;\n}");
    const m = await load(files);
    expect(m.Shape.decode(m.Shape.encode({ label: "x" }))).toEqual({ label: "x" });
    expect(() => m.Shape.encode({ side: 1, label: "x" })).toThrow(EncodeError);
    expect(plain(m.Shape.schema)).toEqual(plain(new ThriftSchemas(link(files)).struct("Shape", "u.thrift")));
  });

  it("thrift gen - exception: a ThriftException class named after it, whose codec decodes instances; a message field is the Error's message", async () => {
    const files = {
      "x.thrift": "/** Not there. */\nexception NotFound {\n  /** Why. */\n  1: string message\n  2: required string key\n  3: i32 code = 404\n}\nexception Bare {}",
    };
    const out = gen(files).get("x.ts")!;
    expect(out).toContain(
      [
        "/** Not there. */",
        "export class NotFound extends ThriftException {",
        "  /** Why. */",
        "  declare message: string;",
        "  declare key: string;",
        "  declare code?: number;",
        "",
        "  /** The exception with the fields given (`create()` of its codec also fills in the IDL's defaults). */",
        '  constructor(fields?: Partial<Pick<NotFound, "message" | "key" | "code">>) {',
        "    super(fields);",
        "  }",
        "}",
        'Object.defineProperty(NotFound.prototype, "name", { value: "NotFound", writable: true, configurable: true });',
      ].join("\n"),
    );
    expect(out).toContain("export const NotFoundCodec: ThriftStructCodec<NotFound> = thriftStruct<NotFound>(");
    expect(out).toContain("    make: () => new NotFound(),");
    expect(out).toContain("export class Bare extends ThriftException {}");
    const m = await load(files);
    const e = new m.NotFound({ message: "gone", key: "k" });
    expect(e).toBeInstanceOf(ThriftException);
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.message, e.key, String(e)]).toEqual(["NotFound", "gone", "k", "NotFound: gone"]);
    const back = m.NotFoundCodec.decode(m.NotFoundCodec.encode(e));
    expect(back).toBeInstanceOf(m.NotFound);
    expect([back.message, back.key, back.code]).toEqual(["gone", "k", undefined]);
    const created = m.NotFoundCodec.create({ key: "k" });
    expect(created).toBeInstanceOf(m.NotFound);
    expect(created.code).toBe(404);
    expect(new m.Bare().name).toBe("Bare");
  });

  it("thrift gen - exception: a field named like an Error's or object's own property is a located error", () => {
    expect(genError({ "x.thrift": "exception E {\n  1: string name\n}" })).toBe(
      "x.thrift:2:13: exception E: a field named name would replace the Error's own name; rename the field (on the wire only its id counts)",
    );
    expect(genError({ "x.thrift": "exception E { 1: string stack }" })).toMatch(/^x\.thrift:1:25: exception E: a field named stack would replace the Error's own stack/);
    expect(genError({ "x.thrift": "exception E { 1: i32 toString }" })).toMatch(/^x\.thrift:1:22: exception E: a field named toString would replace the object's own toString/);
    expect(genError({ "x.thrift": "exception E { 1: i32 message }" })).toBe(
      "x.thrift:1:22: exception E: a field named message is the Error's message and must be a string; rename the field or make it a string",
    );
    // The same names are plain properties of a struct.
    expect(gen({ "x.thrift": "struct S { 1: string name; 2: i32 message; 3: string stack }" }).get("x.ts")).toContain("  name?: string;\n  message?: number;");
  });

  it("thrift gen - a field, enum value or function named __proto__ is a located error", () => {
    expect(genError({ "p.thrift": "struct S {\n  1: i32 __proto__\n}" })).toBe(
      "p.thrift:2:10: struct S: field __proto__ is named __proto__, which would replace an object's prototype in JavaScript; rename it (on the wire only its id counts)",
    );
    expect(genError({ "p.thrift": "enum E { __proto__ }" })).toMatch(/^p\.thrift:1:10: enum E: value __proto__ is named __proto__/);
    expect(genError({ "p.thrift": "service S { void __proto__() }" })).toMatch(/^p\.thrift:1:18: service S: function __proto__ is named __proto__/);
    expect(genError({ "p.thrift": "service S { void f(1: i32 __proto__) }" })).toMatch(/^p\.thrift:1:27: S\.f: argument __proto__ is named __proto__/);
  });

  it("thrift gen - names: reserved words and globals get a $ suffix, derived names yield to definitions, runtime imports are aliased", async () => {
    const files = NAMES;
    const out = gen(files).get("n.ts")!;
    expect(out).toContain("export interface Map$ {\n  m?: Map<string, number>;\n}");
    expect(out).toContain("export interface number$ {");
    expect(out).toContain("export interface NotFoundCodec {");
    expect(out).toContain("export const NotFoundCodec$: ThriftStructCodec<NotFound> = thriftStruct({");
    expect(out).toContain('import { ThriftException as ThriftException$1, thriftStruct, type ThriftStructCodec } from "meridian-rpc/runtime";');
    expect(out).toContain("export class NotFound extends ThriftException$1 {}");
    expect(out).toContain("  a?: Map$;\n  b?: number$;\n  c?: ThriftException;\n  d?: NotFound;");
    expect(out).toContain('{ id: 4, name: "d", type: { t: "struct", struct: () => NotFoundCodec$.schema }, requiredness: "default" },');
    expect(out).toContain("export class Failed extends ThriftException$1 {\n  declare cause?: string;");
    const m = await load(files);
    expect(m.S.decode(m.S.encode({ a: { m: new Map([["k", 1]]) }, d: new m.NotFound() })).d).toBeInstanceOf(m.NotFound);
    expect(new m.Failed({ cause: "disk" }).cause).toBe("disk");
  });

  it("thrift gen - include: definitions of included files are imported from their modules, by relative path", () => {
    const out = gen({
      "app/main.thrift": 'include "../common/shared.thrift"\ninclude "local.thrift"\nstruct M { 1: shared.Base base; 2: local.Id id; 3: shared.Kind kind = shared.Kind.B }\nservice S extends shared.Svc {}',
      "common/shared.thrift": "struct Base {}\nenum Kind { A, B }\nservice Svc { void f() }",
      "app/local.thrift": "typedef string Id",
    });
    expect([...out.keys()].sort()).toEqual(["app/local.ts", "app/main.ts", "common/shared.ts"]);
    const main = out.get("app/main.ts")!;
    expect(main).toContain('import { Base, Kind, Svc } from "../common/shared.js";');
    expect(main).toContain('import type { Id } from "./local.js";');
    expect(main).toContain("  base?: Base;\n  id?: Id;\n  kind?: Kind;");
    expect(main).toContain("{ defaults: () => ({ kind: Kind.B }) }");
    expect(main).toContain('export const S = thriftService("main.S", {\n  ...Svc.methods,\n});');
  });

  it("thrift gen - service: args interfaces, and a descriptor with the base services' functions, oneway, throws, idempotency and argument defaults", async () => {
    const files = SERVICES;
    const out = gen(files).get("svc.ts")!;
    expect(out).toContain("/** The arguments of {@link Svc}.add. */\nexport interface Svc_add_args {\n  a?: number;\n  b?: bigint;\n}");
    expect(out).toContain("export interface Svc_fail_args {}");
    // The base service comes first: the descriptor spreads its methods while the module loads.
    expect(out.indexOf("export const Mid =")).toBeLessThan(out.indexOf("export const Svc ="));
    expect(out).toContain('/** The service. */\nexport const Svc = thriftService("svc.Svc", {\n  ...Mid.methods,\n  add: thriftMethod<Svc_add_args, bigint>({');
    expect(out).toContain('    throws: [{ field: "oops", type: Oops }, { field: "gone", type: Gone }],');
    expect(out).toContain('    idempotency: "NO_SIDE_EFFECTS",\n    argDefaults: () => ({ b: 5n }),');
    expect(out).toContain('    result: { name: "Svc.note_result", kind: "struct", fields: [] },\n    oneway: true,');
    const m = await load(files);
    const svc = m.Svc as { typeName: string; methods: Record<string, Module> };
    expect(svc.typeName).toBe("svc.Svc");
    expect(Object.keys(svc.methods)).toEqual(["ping", "mid", "add", "fail", "note", "put"]);
    expect(Object.fromEntries(Object.entries(svc.methods).map(([k, d]) => [k, [d.name, d.kind, d.idempotency, d.thrift.oneway, d.thrift.returns]]))).toEqual({
      ping: ["ping", "unary", "IDEMPOTENCY_UNKNOWN", false, true],
      mid: ["mid", "unary", "IDEMPOTENCY_UNKNOWN", false, false],
      add: ["add", "unary", "NO_SIDE_EFFECTS", false, true],
      fail: ["fail", "unary", "IDEMPOTENCY_UNKNOWN", false, false],
      note: ["note", "unary", "IDEMPOTENCY_UNKNOWN", true, false],
      put: ["put", "unary", "IDEMPOTENT", false, true],
    });
    expect(svc.methods.add!.input.create({ a: 1 })).toEqual({ a: 1, b: 5n });
    // Arguments are never required on the wire; the schemas are the linker's otherwise.
    expect(svc.methods.add!.input.schema.fields.map((f: { requiredness: string }) => f.requiredness)).toEqual(["default", "default"]);
    const schemas = new ThriftSchemas(link(files));
    const svcDef = link(files).documents.get("svc.thrift")!.definitions.find((d) => d.name === "Svc")!;
    const fail = (svcDef as { functions: readonly { name: string }[] }).functions.find((f) => f.name === "fail")!;
    const ref = schemas.functionStructs(fail as never, "svc.thrift", "Svc");
    expect(plain(svc.methods.fail!.input.schema)).toEqual(plain(ref.args));
    expect(plain(svc.methods.fail!.output.schema)).toEqual(plain(ref.result));
    const thrown = svc.methods.fail!.thrift.throws as { field: string; type: unknown }[];
    expect(thrown.map((t) => t.field)).toEqual(["oops", "gone"]);
    expect(thrown[0]!.type).toBe(m.Oops);
    // A declared exception in a result decodes as an instance of its class, imported or local.
    const output = svc.methods.fail!.output as ThriftStructCodec<Record<string, unknown>>;
    const result = output.decode(output.encode({ oops: new m.Oops({ message: "no" }) }));
    expect(result.oops).toBeInstanceOf(m.Oops);
    expect((result.oops as Error).message).toBe("no");
  });

  it("thrift gen - service: an idempotency annotation that is not a level is a located error", () => {
    expect(genError({ "s.thrift": 'service S {\n  void f() (meridian.idempotency = "SAFE")\n}' })).toBe(
      's.thrift:2:8: S.f: meridian.idempotency must be IDEMPOTENCY_UNKNOWN, NO_SIDE_EFFECTS, IDEMPOTENT, not "SAFE"',
    );
  });
});

describe("thrift gen - cli", () => {
  it("thrift gen - cli: one module per .thrift file and per file it includes, in their folders", async () => {
    const dir = testWorkDir("thrift-cli");
    mkdirSync(join(dir, "idl", "sub"), { recursive: true });
    writeFileSync(join(dir, "idl", "sub", "a.thrift"), 'include "../b.thrift"\nstruct A { 1: b.B b }\n');
    writeFileSync(join(dir, "idl", "b.thrift"), "struct B { 1: i32 x }\n");
    const res = await meridianChild(["gen", "idl/sub/a.thrift", "-I", "idl", "--out", "out"], {}, { cwd: dir });
    expect(res.stderr).toBe("");
    expect(res.status).toBe(0);
    expect(readFileSync(join(dir, "out", "sub", "a.ts"), "utf8")).toContain('import { B } from "../b.js";');
    expect(existsSync(join(dir, "out", "b.ts"))).toBe(true);
  });

  it("thrift gen - cli: bad IDL exits 1 with file:line:column on stderr and writes nothing", async () => {
    const dir = testWorkDir("thrift-cli");
    writeFileSync(join(dir, "ok.thrift"), "struct Ok {}\n");
    writeFileSync(join(dir, "bad.thrift"), "struct Bad {\n  1: i32 x\n  1: i32 y\n}\n");
    const res = await meridianChild(["gen", "ok.thrift", "bad.thrift", "--out", "out"], {}, { cwd: dir });
    expect(res.status).toBe(1);
    expect(res.stderr).toBe("bad.thrift:3:10: struct Bad: field y has id 1, already used by x\n");
    expect(existsSync(join(dir, "out"))).toBe(false);
    // What only the generator refuses is reported the same way.
    writeFileSync(join(dir, "bad.thrift"), "exception E {\n  1: string name\n}\n");
    const err: string[] = [];
    expect(main(["gen", join(dir, "ok.thrift"), join(dir, "bad.thrift"), "-I", dir, "--out", join(dir, "out")], { stdout: () => undefined, stderr: (t) => err.push(t) })).toBe(1);
    expect(err.join("")).toMatch(/^bad\.thrift:2:13: exception E: a field named name/);
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it("thrift gen - cli: mixing .proto and .thrift, --target js/dts, --int64 and --wkt with .thrift are usage errors", () => {
    const dir = testWorkDir("thrift-cli");
    writeFileSync(join(dir, "t.thrift"), "struct T {}\n");
    const run = (...args: string[]): [number | Promise<number>, string] => {
      const err: string[] = [];
      const code = main(["gen", join(dir, "t.thrift"), "-I", dir, "--out", join(dir, "out"), ...args], { stdout: () => undefined, stderr: (t) => err.push(t) });
      return [code, err.join("").split("\n")[0]!];
    };
    expect(run(join(dir, "t.proto"))).toEqual([2, `meridian gen: give either .proto or .thrift files, not both (${join(dir, "t.thrift")} and ${join(dir, "t.proto")}): run meridian gen once for each`]);
    expect(run("--target", "ts,js")).toEqual([2, "meridian gen: .thrift files generate TypeScript only (--target ts), not js"]);
    expect(run("--int64", "number")).toEqual([2, "meridian gen: --int64 number applies to .proto files only: Thrift's i64 values are always bigint"]);
    expect(run("--wkt", "x")).toEqual([2, "meridian gen: --wkt applies to .proto files only: Thrift has no well-known types"]);
    expect(existsSync(join(dir, "out"))).toBe(false);
    expect(run("--target", "ts", "--int64", "bigint")).toEqual([0, ""]);
  });

  it("thrift gen - cli: --runtime with a path imports the runtime relatively; a file outside every -I is an error", () => {
    const dir = testWorkDir("thrift-cli");
    writeFileSync(join(dir, "t.thrift"), "struct T {}\n");
    const err: string[] = [];
    const io = { stdout: () => undefined, stderr: (t: string) => err.push(t) };
    expect(main(["gen", join(dir, "t.thrift"), "-I", dir, "--out", join(dir, "gen", "deep"), "--runtime", join(dir, "rt", "index.ts")], io)).toBe(0);
    expect(readFileSync(join(dir, "gen", "deep", "t.ts"), "utf8")).toContain('from "../../rt/index.js";');
    expect(main(["gen", join(dir, "t.thrift"), "-I", join(dir, "elsewhere"), "--out", join(dir, "out")], io)).toBe(1);
    expect(err.join("")).toBe(`${join(dir, "t.thrift")}: ${join(dir, "t.thrift")} is not inside any include directory (-I); add the directory its output should be named from\n`);
  });
});

describe("thrift gen - fixtures", () => {
  it("thrift gen - fixtures: test/thrift/interop/gen-ts matches a fresh generation (run `npm run gen:fixtures`)", () => {
    const diff = diffGenerated(REPO_ROOT, generateAll(), ["test/thrift/interop/gen-ts"]);
    expect(diff.stale, "stale: run `npm run gen:fixtures`").toEqual([]);
    expect(diff.extra, "not generated: remove them or run `npm run gen:fixtures`").toEqual([]);
  }, 60_000);

  it("thrift gen - fixtures: the generated interop.ts round-trips a full Everything over Binary and Compact", () => {
    const v: Everything = {
      flag: true,
      tiny: -128,
      small: -32768,
      medium: 2 ** 31 - 1,
      big: -(2n ** 63n),
      ratio: -0.5,
      text: "héllo ✓",
      blob: new Uint8Array([0, 1, 255]),
      numbers: [1, -2, 3],
      tags: ["a", "b"],
      counts: new Map([["x", 1n], ["y", -1n]]),
      pointsById: new Map([[7, { x: 1, y: 2 }]]),
      origin: { x: 0, y: -1 },
      chain: { label: "a", next: { label: "b", next: { label: "c" } } },
      color: Color.BLUE,
      shape: { point: { x: 3 } },
      id: "id-1",
      note: "n",
      limit: 9,
      greeting: "hey",
      createdAt: 1_700_000_000_000n,
      path: [{ x: 1 }, { y: 2 }],
      palette: [Color.RED, Color.GREEN],
      groups: new Map([["g", ["m", "n"]], ["e", []]]),
      extra: new Uint8Array([9]),
      defaultColor: Color.RED,
    };
    expect(Everything.decode(Everything.encode(v))).toEqual(v);
    const w = new Writer(64);
    Everything.encodeTo(v, w, "thrift-compact");
    const compact = w.finish();
    expect(Everything.decode(compact, "thrift-compact")).toEqual(v);
    expect(compact.length).toBeLessThan(Everything.encode(v).length);
    expect(Everything.create({ id: "x" })).toEqual({ id: "x", limit: 7, greeting: "hello", defaultColor: 2 });
    expect(() => Everything.decode(Everything.encode({ id: "x" }).subarray(0, 3))).toThrow(DecodeError);
    expect(Shape.decode(Shape.encode({ radius: 1.5 }))).toEqual({ radius: 1.5 });
  });

  it("thrift gen - fixtures: the interop service descriptor: args with defaults, results, exceptions as instances", () => {
    expect(InteropService.typeName).toBe("interop.InteropService");
    expect(Object.keys(InteropService.methods)).toEqual(["ping", "echo", "add", "fail", "headers", "notify", "lastNotified", "sleep"]);
    const add = InteropService.methods.add;
    expect(add.input.create({ a: 1 })).toEqual({ a: 1 });
    expect(add.input.decode(add.input.encode({ a: 1, b: 2n }))).toEqual({ a: 1, b: 2n });
    expect(add.output.decode(add.output.encode({ success: 3n }))).toEqual({ success: 3n });
    expect(InteropService.methods.notify.thrift.oneway).toBe(true);
    const fail = InteropService.methods.fail;
    expect(fail.thrift.throws).toEqual([{ field: "notFound", type: NotFound }, { field: "invalid", type: Invalid }]);
    const notFound = fail.output.decode(fail.output.encode({ notFound: new NotFound({ message: "gone" }) })).notFound;
    expect(notFound).toBeInstanceOf(NotFound);
    expect((notFound as NotFound).message).toBe("gone");
    const invalid = InvalidCodec.decode(InvalidCodec.encode(new Invalid({ reason: "bad", code: 2 })));
    expect(invalid).toBeInstanceOf(Invalid);
    expect([invalid.name, invalid.reason, invalid.code]).toEqual(["Invalid", "bad", 2]);
    expect(NotFoundCodec.decode(NotFoundCodec.encode(new NotFound()))).toBeInstanceOf(NotFound);
  });

  it("thrift gen - Apache Thrift's own test IDL (test/ThriftTest.thrift): generated, typechecked with a typed client, loaded, every default value round-tripped", async () => {
    const dir = testWorkDir("thrift-apache");
    const idl = join(REPO_ROOT, "test", "thrift", "idl", "apache");
    for (const o of generateThrift([join(idl, "ThriftTest.thrift")], { includeDirs: [idl] })) writeFileSync(join(dir, o.name), o.content);
    writeFileSync(
      join(dir, "consumer.ts"),
      [
        'import { createClient, type Client, type Handlers } from "meridian-rpc";',
        'import { ThriftTest, Xception, type Xtruct } from "./ThriftTest.js";',
        "declare const client: Client<typeof ThriftTest>;",
        'const echoed: Promise<Xtruct> = client.testStruct({ thing: { string_thing: "s", i64_thing: 1n } });',
        "const handlers: Partial<Handlers<typeof ThriftTest>> = {",
        '  testException: ({ arg }) => { if (arg === "Xception") throw new Xception({ errorCode: 1001, message: arg }); },',
        "  testOneway: () => undefined,",
        "};",
        "export { echoed, handlers, createClient };",
        "",
      ].join("\n"),
    );
    const run = typecheckConsumer(dir, { noImplicitOverride: true, verbatimModuleSyntax: true, skipLibCheck: true });
    expect(run.output, "tsc output").toBe("");
    const mod = (await import(pathToFileURL(join(dir, "ThriftTest.ts")).href)) as Record<string, unknown>;
    const service = mod.ThriftTest as { methods: Record<string, { thrift: { oneway: boolean } }> };
    expect(Object.keys(service.methods)).toContain("testMultiException");
    expect(service.methods.testOneway!.thrift.oneway).toBe(true);
    // Every struct whose defaults make a valid value (no required field or union left unset) round-trips.
    let roundTripped = 0;
    for (const codec of Object.values(mod)) {
      if (!(codec instanceof ThriftStructCodec)) continue;
      const c = codec as ThriftStructCodec<object>;
      const value = c.create();
      const valid = c.schema.kind !== "union" && c.schema.fields.every((f) => f.requiredness !== "required" || (value as Record<string, unknown>)[f.name] !== undefined);
      if (!valid) continue;
      for (const p of ["thrift-binary", "thrift-compact"] as const) {
        const w = new Writer(64);
        c.encodeTo(value, w, p);
        expect(c.decode(w.finish(), p)).toEqual(value);
      }
      roundTripped++;
    }
    expect(roundTripped).toBeGreaterThan(20);
  }, 150_000);

  it("thrift gen - fixtures: the modules of test/thrift/idl and of the IDL above typecheck, with a typed client and handlers", () => {
    const dir = testWorkDir("thrift-tsc");
    const idl = join(REPO_ROOT, "test", "thrift", "idl");
    for (const o of generateThrift([join(idl, "service.thrift")], { includeDirs: [idl] })) writeFileSync(join(dir, o.name), o.content);
    for (const [sub, files] of Object.entries({ consts: CONSTS, names: NAMES, services: SERVICES })) {
      mkdirSync(join(dir, sub));
      for (const [name, content] of gen(files)) writeFileSync(join(dir, sub, name), content);
    }
    const consumer = [
      'import type { Client, Handlers } from "meridian-rpc";',
      'import * as consts from "./consts/c.js";',
      'import * as names from "./names/n.js";',
      'import { Svc } from "./services/svc.js";',
      "declare const svc: Client<typeof Svc>;",
      "const sum: Promise<bigint> = svc.add({ a: 1 });",
      "const colors: Map<consts.Color, string> = consts.NAMES;",
      "const s: names.S = { a: { m: new Map() }, b: { x: 1 } };",
      'import { EXAMPLE, FeedService, Throttled, Video, type Content } from "./service.js";',
      'import { NotFound, Status } from "./shared.js";',
      "declare const client: Client<typeof FeedService>;",
      'const feed: Promise<Video[]> = client.getFeed({ user: "u" });',
      'const pong: Promise<string> = client.ping({ text: "x" });',
      "const none: Promise<void> = client.reset();",
      "const handlers: Handlers<typeof FeedService> = {",
      "  getFeed: async ({ user, page }) => {",
      '    if (user === "") throw new NotFound({ key: "user" });',
      "    if ((page ?? 1) > 9) throw new Throttled({ retryAfterMs: 5 });",
      "    return [Video.create({ id: 1n, status: Status.DELETED })];",
      "  },",
      "  ping: ({ text }) => text ?? \"\",",
      "  track: () => undefined,",
      "  reset: () => undefined,",
      "};",
      'const content: Content = { video: EXAMPLE };',
      "// @ts-expect-error: an i64 is a bigint",
      "Video.create({ id: 1 });",
      "// @ts-expect-error: getFeed returns a list",
      "const wrong: Promise<Video> = client.getFeed();",
      "export { feed, pong, none, handlers, content, wrong, sum, colors, s };",
      "",
    ].join("\n");
    writeFileSync(join(dir, "consumer.ts"), consumer);
    const run = typecheckConsumer(dir, { noImplicitOverride: true, verbatimModuleSyntax: true, skipLibCheck: true });
    expect(run.output, "tsc output").toBe("");
    expect(run.status).toBe(0);
  }, 150_000);
});
