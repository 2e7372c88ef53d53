/** `meridian gen` through the command line: the files it writes, its errors and exit statuses. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";
import { removeTestDirs, testWorkDir } from "../../codegen/test-harness.js";
import { meridianChild, type MeridianExit } from "../support/meridian-cli.js";

afterAll(removeTestDirs);

function workDir(): string {
  return testWorkDir("cli");
}

/** Runs `meridian <args>` in a child process in `cwd`, as during development. */
function meridian(args: string[], cwd: string): Promise<MeridianExit> {
  return meridianChild(args, {}, { cwd });
}

describe("cli - meridian gen", () => {
  it("cli - generates one file per input, named after it, in subdirectories", async () => {
    const dir = workDir();
    mkdirSync(join(dir, "proto", "pkg"), { recursive: true });
    writeFileSync(join(dir, "proto", "pkg", "a.proto"), 'syntax = "proto3";\npackage pkg;\nimport "b.proto";\nmessage A { B b = 1; }\n');
    writeFileSync(join(dir, "proto", "b.proto"), 'syntax = "proto3";\nmessage B { int32 x = 1; }\n');
    const res = await meridian(["gen", "proto/pkg/a.proto", "proto/b.proto", "-I", "proto", "--out", "out"], dir);
    expect(res.stderr).toBe("");
    expect(res.status).toBe(0);
    const a = readFileSync(join(dir, "out", "pkg", "a.ts"), "utf8");
    expect(a).toContain('import { B, type BView } from "../b.js";');
    expect(existsSync(join(dir, "out", "b.ts"))).toBe(true);
  });

  it("cli - bad IDL: exit code 1, file:line:column on stderr, nothing written", async () => {
    const dir = workDir();
    writeFileSync(join(dir, "ok.proto"), 'syntax = "proto3";\nmessage Ok {}\n');
    writeFileSync(join(dir, "bad.proto"), 'syntax = "proto3";\nmessage Bad {\n  int32 x = 1;\n  int32 y = 1;\n}\n');
    const res = await meridian(["gen", "ok.proto", "bad.proto", "--out", "out"], dir);
    expect(res.status).toBe(1);
    expect(res.stderr).toBe("bad.proto:4:13: field number 1 is already used in Bad\n");
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it("cli - --runtime and --wkt with a path import relatively", () => {
    const dir = workDir();
    writeFileSync(join(dir, "t.proto"), 'syntax = "proto3";\nimport "google/protobuf/empty.proto";\nmessage T { google.protobuf.Empty e = 1; }\n');
    const code = main(
      ["gen", join(dir, "t.proto"), "-I", dir, "--out", join(dir, "gen", "deep"), "--runtime", join(dir, "rt", "index.ts"), "--wkt", "my-wkt"],
      { stdout: () => undefined, stderr: () => undefined },
    );
    expect(code).toBe(0);
    const out = readFileSync(join(dir, "gen", "deep", "t.ts"), "utf8");
    expect(out).toContain('} from "../../rt/index.js";');
    expect(out).toContain('from "my-wkt";');
  });

  it("cli - --target: ts by default, repeatable and comma-separated; an unknown target is a usage error", () => {
    const dir = workDir();
    writeFileSync(join(dir, "t.proto"), 'syntax = "proto3";\nmessage T { int32 x = 1; }\n');
    const err: string[] = [];
    const io = { stdout: () => undefined, stderr: (t: string) => err.push(t) };
    expect(main(["gen", join(dir, "t.proto"), "-I", dir, "--out", join(dir, "a"), "--target", "ts"], io)).toBe(0);
    expect(main(["gen", join(dir, "t.proto"), "-I", dir, "--out", join(dir, "b"), "--target=ts,ts", "--target", "ts"], io)).toBe(0);
    expect(readFileSync(join(dir, "b", "t.ts"), "utf8")).toBe(readFileSync(join(dir, "a", "t.ts"), "utf8"));
    expect(err).toEqual([]);
    expect(main(["gen", join(dir, "t.proto"), "-I", dir, "--out", join(dir, "c"), "--target", "ts,wasm"], io)).toBe(2);
    expect(err.join("")).toContain('meridian gen: --target must be ts, js or dts, not "wasm"');
    expect(existsSync(join(dir, "c"))).toBe(false);
  });

  it("cli - --target js,dts writes plain JavaScript and its declarations, no TypeScript", () => {
    const dir = workDir();
    writeFileSync(join(dir, "t.proto"), 'syntax = "proto3";\npackage p;\nmessage T { int32 x = 1; }\nservice S { rpc Get(T) returns (T); }\n');
    const err: string[] = [];
    const io = { stdout: () => undefined, stderr: (t: string) => err.push(t) };
    expect(main(["gen", join(dir, "t.proto"), "-I", dir, "--out", join(dir, "out"), "--target", "js,dts"], io)).toBe(0);
    expect(err).toEqual([]);
    expect(existsSync(join(dir, "out", "t.ts"))).toBe(false);
    const js = readFileSync(join(dir, "out", "t.js"), "utf8");
    const dts = readFileSync(join(dir, "out", "t.d.ts"), "utf8");
    expect(js).toMatch(/export const T = /);
    expect(js).toMatch(/export const S = /);
    expect(js).not.toMatch(/\binterface\b|: number\b|import type /);
    expect(dts).toMatch(/export interface T \{/);
    expect(dts).toMatch(/export declare const T: /);
  });

  it("cli - --version and --help", () => {
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t) };
    expect(main(["--version"], io)).toBe(0);
    expect(out.join("")).toMatch(/^meridian v\d+\.\d+\.\d+/);
    expect(main(["--help"], io)).toBe(0);
    expect(out.join("")).toContain("usage: meridian gen");
    out.length = 0;
    expect(main(["gen", "--help"], io)).toBe(0);
    expect(out.join("")).toMatch(/^usage: meridian gen <file\.proto>\.\.\. --out <dir>/);
  });
});
