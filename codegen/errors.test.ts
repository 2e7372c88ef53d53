import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../cli/main.js";
import { IdlError } from "../idl/errors.js";
import { loadProtoFiles } from "../idl/parse.js";
import { REPO_ROOT } from "./regen.js";
import { removeTestDirs, testWorkDir } from "./test-harness.js";

afterAll(removeTestDirs);

/** Loads `bad.proto` (plus helper files) and returns the error message. */
function errorOf(source: string, extra: Record<string, string> = {}): string {
  try {
    loadProtoFiles(["bad.proto"], { sources: { "bad.proto": source, ...extra }, includeDirs: [] });
  } catch (e) {
    expect(e).toBeInstanceOf(IdlError);
    return (e as IdlError).message;
  }
  throw new Error("expected an IdlError");
}

const P3 = 'syntax = "proto3";\n';

describe("errors - syntax", () => {
  it("errors - a syntax error names file, line and column", () => {
    expect(errorOf(`${P3}message A {\n  int32 x = 1\n  int32 y = 2;\n}\n`)).toBe(
      "bad.proto:4:3: syntax error: expected ';' but found 'int32'",
    );
  });

  it("errors - an unexpected character", () => {
    expect(errorOf(`${P3}message A {\n  int32 x = 1;\n  $ y;\n}\n`)).toBe("bad.proto:4:3: syntax error: unexpected token '$'");
  });

  it("errors - the end of the file inside a message", () => {
    expect(errorOf(`${P3}message A {\n  int32 x = 1;`)).toBe("bad.proto:3:15: unexpected end of file");
  });

  it("errors - an unterminated string", () => {
    expect(errorOf(`${P3}import "unterminated;\n`)).toBe("bad.proto:2:8: syntax error: unterminated string");
  });

  it("errors - an invalid map key type", () => {
    expect(errorOf(`${P3}message A {\n  map<float, string> m = 1;\n}\n`)).toBe(
      "bad.proto:3:7: invalid map key type 'float': keys are integer types, bool or string",
    );
  });

  it("errors - required in proto3", () => {
    expect(errorOf(`${P3}message A {\n  required int32 x = 1;\n}\n`)).toBe(
      "bad.proto:3:3: syntax error: unexpected token 'required' (proto3 has no required fields)",
    );
  });

  it("errors - editions are reported as unsupported", () => {
    expect(errorOf(`edition = "2023";\nmessage A {}\n`)).toMatch(/^bad\.proto:1:1: editions .* are not supported yet/);
  });
});

describe("errors - semantics", () => {
  it("errors - an unknown type points at the type name", () => {
    expect(errorOf(`${P3}package p;\nmessage A {\n  Missing m = 1;\n}\n`)).toBe('bad.proto:4:3: unknown type "Missing"');
  });

  it("errors - an unknown method input type", () => {
    expect(errorOf(`${P3}message M {}\nservice S {\n  rpc X(Nope) returns (M);\n}\n`)).toBe(
      'bad.proto:4:9: unknown type "Nope"',
    );
  });

  it("errors - a duplicate field number points at the second number", () => {
    expect(errorOf(`${P3}package p;\nmessage A {\n  int32 x = 1;\n  string y = 1;\n}\n`)).toBe(
      "bad.proto:5:14: field number 1 is already used in A",
    );
  });

  it("errors - a duplicate field name", () => {
    expect(errorOf(`${P3}message A {\n  int32 x = 1;\n  string x = 2;\n}\n`)).toBe("bad.proto:4:10: x is already defined in A");
  });

  it("errors - a duplicate message", () => {
    expect(errorOf(`${P3}message A {}\n\nmessage A {}\n`)).toBe("bad.proto:4:9: A is already defined at file level");
  });

  it("errors - a type defined in two files", () => {
    expect(errorOf(`${P3}import "a.proto";\nmessage A {}\n`, { "a.proto": `${P3}message A {}\n` })).toBe(
      'bad.proto:3:9: "A" is already defined in a.proto',
    );
  });

  it("errors - an import that is not found", () => {
    expect(errorOf(`${P3}import "nope/missing.proto";\n`)).toBe('bad.proto:2:8: import "nope/missing.proto" was not found');
  });

  it("errors - a type from a file that is not imported", () => {
    const extra = { "other.proto": `${P3}import "deep.proto";\n`, "deep.proto": `${P3}message Hidden {}\n` };
    expect(errorOf(`${P3}import "other.proto";\nmessage A {\n  Hidden h = 1;\n}\n`, extra)).toBe(
      'bad.proto:4:3: "Hidden" is defined in deep.proto, which is not imported by bad.proto; add the import',
    );
  });

  it("errors - types through `import public` are visible", () => {
    const extra = { "other.proto": `${P3}import public "deep.proto";\n`, "deep.proto": `${P3}message Hidden {}\n` };
    expect(() =>
      loadProtoFiles(["bad.proto"], {
        sources: { "bad.proto": `${P3}import "other.proto";\nmessage A {\n  Hidden h = 1;\n}\n`, ...extra },
        includeDirs: [],
      }),
    ).not.toThrow();
  });

  it("errors - an import cycle", () => {
    expect(errorOf(`${P3}import "cyc.proto";\n`, { "cyc.proto": `${P3}import "bad.proto";\n` })).toMatch(
      /^cyc\.proto:2:8: import cycle: bad\.proto -> cyc\.proto -> bad\.proto$/,
    );
  });

  it("errors - a reserved number", () => {
    expect(errorOf(`${P3}message A {\n  reserved 2 to 4;\n  int32 x = 3;\n}\n`)).toBe("bad.proto:4:13: number 3 is reserved in A");
  });

  it("errors - a reserved name", () => {
    expect(errorOf(`${P3}message A {\n  reserved "x";\n  int32 x = 3;\n}\n`)).toBe("bad.proto:4:9: name x is reserved in A");
  });

  it("errors - field numbers out of range", () => {
    expect(errorOf(`${P3}message A {\n  int32 x = 0;\n}\n`)).toBe("bad.proto:3:13: field number 0 of x is out of range (1 to 536870911)");
    expect(errorOf(`${P3}message A {\n  int32 x = 19001;\n}\n`)).toMatch(/^bad\.proto:3:13: field numbers 19000 to 19999 are reserved/);
  });

  it("errors - defaults in proto3", () => {
    expect(errorOf(`${P3}message A {\n  int32 x = 3 [default = 4];\n}\n`)).toBe(
      "bad.proto:3:9: explicit default values are not allowed in proto3 (field x)",
    );
  });

  it("errors - defaults out of range or not a value", () => {
    const P2 = 'syntax = "proto2";\n';
    expect(errorOf(`${P2}message A {\n  optional int32 x = 3 [default = 5000000000];\n}\n`)).toBe(
      "bad.proto:3:18: invalid default value for x: 5000000000 is out of range for int32",
    );
    expect(errorOf(`${P2}enum E { A = 1; }\nmessage A {\n  optional E e = 3 [default = B];\n}\n`)).toBe(
      "bad.proto:4:14: invalid default value for e: B is not a value of enum E",
    );
  });

  it("errors - the first value of a proto3 enum must be zero", () => {
    expect(errorOf(`${P3}enum E {\n  A = 1;\n}\n`)).toBe("bad.proto:3:3: the first value of the open (proto3) enum E must be zero");
  });

  it("errors - duplicate enum numbers without allow_alias", () => {
    expect(errorOf(`${P3}enum E {\n  A = 0;\n  B = 0;\n}\n`)).toBe(
      'bad.proto:4:7: enum number 0 is already used in E; set "option allow_alias = true;" to allow aliases',
    );
  });

  it("errors - a closed enum in a proto3 message", () => {
    expect(errorOf(`${P3}import "p2.proto";\nmessage A {\n  Closed c = 1;\n}\n`, { "p2.proto": 'syntax = "proto2";\nenum Closed { C = 1; }\n' })).toBe(
      "bad.proto:4:3: enum Closed is a proto2 (closed) enum and cannot be used in the proto3 message A",
    );
  });

  it("errors - a method taking an enum", () => {
    expect(errorOf(`${P3}enum E { A = 0; }\nmessage M {}\nservice S {\n  rpc X(E) returns (M);\n}\n`)).toBe(
      'bad.proto:5:9: "E" is not a message type; methods take and return messages',
    );
  });

  it("errors - an unknown idempotency level", () => {
    expect(errorOf(`${P3}message M {}\nservice S {\n  rpc X(M) returns (M) { option idempotency_level = SOMETIMES; }\n}\n`)).toMatch(
      /^bad\.proto:4:7: invalid idempotency_level SOMETIMES/,
    );
  });
});

describe("errors - cli", () => {
  it("errors - a bad file exits non-zero, prints file:line:column and writes nothing", () => {
    const dir = testWorkDir("errors");
    const src = join(dir, "proto");
    mkdirSync(src);
    writeFileSync(join(src, "good.proto"), `${P3}message Good { int32 x = 1; }\n`);
    writeFileSync(join(src, "bad.proto"), `${P3}message Bad {\n  Nope x = 1;\n}\n`);
    const out = join(dir, "out");
    const err: string[] = [];
    const code = main(["gen", join(src, "good.proto"), join(src, "bad.proto"), "-I", src, "--out", out], {
      stdout: () => undefined,
      stderr: (t) => err.push(t),
    });
    expect(code).toBe(1);
    expect(err.join("")).toBe('bad.proto:3:3: unknown type "Nope"\n');
    expect(existsSync(out)).toBe(false);
    // The good file alone generates.
    expect(main(["gen", join(src, "good.proto"), "-I", src, "--out", out], { stdout: () => undefined, stderr: () => undefined })).toBe(0);
    expect(readdirSync(out)).toEqual(["good.ts"]);
  });

  it("errors - usage errors exit with 2", () => {
    const err: string[] = [];
    const io = { stdout: () => undefined, stderr: (t: string) => err.push(t) };
    expect(main(["gen", "x.proto"], io)).toBe(2);
    expect(err.join("")).toContain("--out <dir> is required");
    expect(main(["gen", "x.proto", "--out", "o", "--int64", "float"], io)).toBe(2);
    expect(main(["frobnicate"], io)).toBe(2);
  });

  it("errors - a file outside every import directory", () => {
    const err: string[] = [];
    const code = main(["gen", join(REPO_ROOT, "bench/codec/proto/feed.proto"), "-I", join(REPO_ROOT, "codegen"), "--out", "/nonexistent"], {
      stdout: () => undefined,
      stderr: (t) => err.push(t),
    });
    expect(code).toBe(1);
    expect(err.join("")).toContain("is not inside any import directory");
  });
});
