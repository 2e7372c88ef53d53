import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IdlError } from "meridian-rpc/codegen";
import type { ThriftService, ThriftStruct } from "../../idl/thrift/ast.js";
import { loadThriftFiles } from "../../idl/thrift/link.js";
import { parseThrift } from "../../idl/thrift/parse.js";

const dir = fileURLToPath(new URL("./idl/", import.meta.url));

/** Links in-memory files (in a folder /idl); the first one is the root. */
function link(files: Record<string, string>) {
  return loadThriftFiles([`/idl/${Object.keys(files)[0]!}`], {
    includeDirs: ["/idl"],
    readFile: (p) => {
      const name = p.replace(/^\/idl\//, "");
      const text = files[name];
      if (text === undefined) throw new Error("ENOENT");
      return text;
    },
  });
}

/** The IdlError message linking `files` throws. */
function linkError(files: Record<string, string>): string {
  try {
    link(files);
  } catch (e) {
    expect(e).toBeInstanceOf(IdlError);
    return (e as Error).message;
  }
  throw new Error("expected an IdlError");
}

describe("thrift idl", () => {
  it("thrift idl - reads the whole language: includes, namespaces, every type, requiredness, defaults, annotations, docs, oneway, extends", () => {
    const program = loadThriftFiles([`${dir}service.thrift`], { includeDirs: [dir] });
    expect([...program.documents.keys()].sort()).toEqual(["service.thrift", "shared.thrift"]);
    const doc = program.documents.get("service.thrift")!;
    expect(doc.namespaces).toEqual({ js: "meridian.feed" });
    expect(program.documents.get("shared.thrift")!.namespaces).toEqual({ go: "shared", "*": "meridian.shared" });
    expect(program.documents.get("shared.thrift")!.doc).toBe("Shared definitions, included by service.thrift.");
    const video = doc.definitions.find((d) => d.name === "Video") as ThriftStruct;
    expect(video.doc).toBe("One video of a feed.");
    expect(video.fields.map((f) => [f.id, f.name, f.requiredness])).toEqual([
      [1, "id", "required"], [2, "title", "default"], [3, "cover", "optional"], [4, "tags", "default"],
      [5, "regions", "default"], [6, "scores", "default"], [7, "status", "default"], [8, "created", "default"],
      [9, "featured", "default"], [10, "rank", "default"], [11, "width", "default"], [12, "ratio", "default"],
      [13, "key", "default"], [14, "author", "default"],
    ]);
    const title = video.fields[1]!;
    expect(title.annotations).toEqual({ "go.tag": 'json:"title"' });
    expect(title.type).toEqual({ kind: "base", name: "string", annotations: {} });
    const annotatedType = parseThrift("t.thrift", 'typedef string (max = "8") Short').definitions[0];
    expect(annotatedType).toMatchObject({ kind: "typedef", type: { annotations: { max: "8" } } });
    expect(program.resolve(video.fields[5]!.type, "service.thrift")).toEqual({
      kind: "map",
      key: { kind: "base", name: "string" },
      value: { kind: "list", element: { kind: "base", name: "double" } },
    });
    expect(program.resolve(video.fields[7]!.type, "service.thrift")).toEqual({ kind: "base", name: "i64" });
    expect(program.resolve(video.fields[6]!.type, "service.thrift")).toMatchObject({ kind: "enum", file: "shared.thrift" });
    expect(program.resolve(video.fields[9]!.type, "service.thrift")).toEqual({ kind: "base", name: "byte" });
    expect(video.fields[3]!.defaultValue).toMatchObject({ kind: "list", items: [{ kind: "string", value: "a" }, { kind: "string", value: "b" }] });
    expect(video.fields[9]!.defaultValue).toMatchObject({ kind: "int", value: -3n });
    expect(video.fields[7]!.defaultValue).toMatchObject({ kind: "int", value: 16n });
    const enumDef = program.documents.get("shared.thrift")!.definitions.find((d) => d.name === "Status");
    expect(enumDef).toMatchObject({ kind: "enum", values: [{ name: "ACTIVE", value: 1 }, { name: "DISABLED", value: 2 }, { name: "DELETED", value: 10 }] });
    const svc = doc.definitions.find((d) => d.kind === "service") as ThriftService;
    expect(svc).toMatchObject({ name: "FeedService", extends: "shared.BaseService", annotations: { "api.version": "2" } });
    expect(svc.functions.map((f) => [f.name, f.oneway, f.returns?.kind, f.params.length, f.throws.length])).toEqual([
      ["getFeed", false, "list", 2, 2],
      ["track", true, undefined, 1, 0],
      ["reset", false, undefined, 0, 0],
    ]);
    expect(svc.functions[0]!.doc).toBe("Reads one page.");
    expect(program.service(svc.extends!, "service.thrift", svc.extendsLoc).def.functions.map((f) => f.name)).toEqual(["ping"]);
    const union = doc.definitions.find((d) => d.name === "Content");
    expect(union).toMatchObject({ kind: "union" });
    expect(doc.definitions.find((d) => d.name === "Throttled")).toMatchObject({ kind: "exception", annotations: { "kitex.error": "true" } });
  });

  it("thrift idl - keywords and base types may name fields and functions, not types", () => {
    const doc = parseThrift("a.thrift", "struct S { 1: i8 i8, 2: list<string> list, 3: map<string,string> map }\nservice X { void set(1: string string) }");
    expect((doc.definitions[0] as ThriftStruct).fields.map((f) => f.name)).toEqual(["i8", "list", "map"]);
    expect((doc.definitions[1] as ThriftService).functions[0]).toMatchObject({ name: "set", params: [{ name: "string" }] });
  });

  it("thrift idl - fields without ids count down from -1, as Apache Thrift assigns them", () => {
    const doc = parseThrift("a.thrift", "struct A { string a; 5: i32 b; string c }");
    expect((doc.definitions[0] as ThriftStruct).fields.map((f) => f.id)).toEqual([-1, 5, -2]);
  });

  it("thrift idl - string escapes, hex and signed numbers, separators and comments of every kind", () => {
    const doc = parseThrift(
      "a.thrift",
      `# hash comment
       // line comment
       /* block */ const string S = "a\\"b\\n\\\\" ; const i64 H = -0x1F, const double D = -.5e-3
       const i64 BIG = 9223372036854775807`,
    );
    expect(doc.definitions.map((d) => (d.kind === "const" ? d.value : undefined))).toMatchObject([
      { kind: "string", value: 'a"b\n\\' },
      { kind: "int", value: -31n },
      { kind: "double", value: -0.0005 },
      { kind: "int", value: 9223372036854775807n },
    ]);
  });

  const errors: [string, Record<string, string>, RegExp][] = [
    ["an unknown type", { "a.thrift": "struct A {\n  1: Missing m\n}" }, /^a\.thrift:2:6: unknown name Missing$/],
    ["an include prefix that names no include", { "a.thrift": "struct A { 1: other.B b }" }, /a\.thrift:1:15: unknown name other\.B: a\.thrift includes no file named other\.thrift/],
    ["a repeated field id", { "a.thrift": "struct A {\n 1: i32 a\n 1: i32 b\n}" }, /a\.thrift:3:9: struct A: field b has id 1, already used by a/],
    ["a field id out of range", { "a.thrift": "struct A { 0: i32 a }" }, /a\.thrift:1:12: a field id must be in 1\.\.32767, found 0/],
    ["a default of the wrong type", { "a.thrift": "struct A { 1: i32 a = \"x\" }" }, /a\.thrift:1:23: the default of struct A\.a: expected an integer for i32/],
    ["a default out of range", { "a.thrift": "struct A { 1: byte a = 300 }" }, /300 does not fit in byte/],
    ["a oneway function with a result", { "a.thrift": "service S { oneway i32 f() }" }, /a\.thrift:1:24: S\.f is oneway: it must return void/],
    ["throws of a non-exception", { "a.thrift": "struct E {}\nservice S { void f() throws (1: E e) }" }, /a\.thrift:2:35: S\.f throws e, whose type is not an exception/],
    ["extends of a struct", { "a.thrift": "struct B {}\nservice S extends B {}" }, /a\.thrift:2:19: B is a struct, not a service/],
    ["a missing include", { "a.thrift": 'include "nope.thrift"' }, /a\.thrift:1:9: cannot find included file "nope\.thrift"/],
    ["an include cycle", { "a.thrift": 'include "b.thrift"', "b.thrift": 'include "a.thrift"' }, /b\.thrift:1:9: include cycle/],
    ["a typedef cycle", { "a.thrift": "typedef B A\ntypedef A B" }, /typedef cycle/],
    ["a required union field", { "a.thrift": "union U { 1: required i32 a }" }, /union U: field a cannot be required/],
    ["an unclosed struct", { "a.thrift": "struct A {\n 1: i32 a" }, /a\.thrift:2:10: unexpected end of the file: expected }/],
    ["an unknown escape", { "a.thrift": 'const string S = "\\q"' }, /a\.thrift:1:19: unknown escape \\q/],
    ["a keyword as a type's name", { "a.thrift": "struct list {}" }, /a\.thrift:1:8: list is a Thrift keyword/],
    ["a name defined twice", { "a.thrift": "struct A {}\nenum A { X }" }, /a\.thrift:2:6: A is already defined at line 1/],
    ["a repeated enum value name", { "a.thrift": "enum E { A = 1, A = 2 }" }, /a\.thrift:1:17: enum E: A is declared twice/],
    ["a base type as a type's name", { "a.thrift": "struct i32 {}" }, /a\.thrift:1:8: i32 is a Thrift keyword/],
    ["an enum default naming a value its enum lacks", { "a.thrift": "enum E { A }\nenum F { B }\nstruct S { 1: E e = F.B }" }, /F\.B is not a constant or an enum value of the field's type/],
    ["a constant of another type", { "a.thrift": 'const string S = "x"\nstruct T { 1: i32 n = S }' }, /S is not a constant or an enum value/],
    ["an unexpected character", { "a.thrift": "struct A { 1: i32 a } @" }, /a\.thrift:1:23: unexpected character "@"/],
    ["senum", { "a.thrift": "senum S { \"a\" }" }, /senum is deprecated/],
  ];
  for (const [what, files, message] of errors) {
    it(`thrift idl - ${what} is a located IdlError`, () => {
      expect(linkError(files)).toMatch(message);
    });
  }

  it("thrift idl - any text either parses or fails with an IdlError, never anything else", () => {
    const pieces = ["struct", "union", "service", "enum", "const", "typedef", "include", "{", "}", "(", ")", "<", ">", "[", "]", ",", ";", ":", "=", "1", "-2", "0x", "1.5e", '"s', '"s"', "'", "i32", "list", "map", "A", "a.b", "/*", "*/", "//", "#", "\n", " ", "oneway", "void", "throws", "extends", "required"];
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 3 })), { maxLength: 40 }), (parts) => {
        try {
          parseThrift("f.thrift", parts.join(" "));
        } catch (e) {
          if (!(e instanceof IdlError)) throw e;
          expect(e.message).toMatch(/^f\.thrift:\d+:\d+: /);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
