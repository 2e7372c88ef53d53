import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { MessageCodec } from "meridian-rpc/runtime";
import { emitFile } from "../emit/file.js";
import { loadProtoFiles } from "../idl/parse.js";
import { generate, type GenerateTarget } from "./index.js";
import { REPO_ROOT } from "./regen.js";
import { removeTestDirs, testWorkDir } from "./test-harness.js";

afterAll(removeTestDirs);

const PROTOC = process.env["PROTOC"] ?? "protoc";
const hasProtoc = spawnSync(PROTOC, ["--version"]).status === 0;

/** A protoc-gen-meridian that runs codegen/plugin.ts through tsx (no build needed). */
function pluginWrapper(dir: string): string {
  const path = join(dir, "protoc-gen-meridian");
  const tsx = join(REPO_ROOT, "node_modules", "tsx", "dist", "esm", "index.mjs");
  writeFileSync(
    path,
    `#!/bin/sh\nexec "${process.execPath}" --conditions=meridian-source --import "${tsx}" "${join(REPO_ROOT, "codegen", "plugin.ts")}" "$@"\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(root, p), readFileSync(p, "utf8"));
    }
  };
  walk(root);
  return out;
}

function workDir(): string {
  return testWorkDir("protoc");
}

describe.skipIf(!hasProtoc)("plugin - protoc-gen-meridian", () => {
  const testdata = join(REPO_ROOT, "codegen", "testdata");
  const protos = [
    "comments.proto",
    "imports/a.proto",
    "imports/b.proto",
    "imports/c.proto",
    "imports/sub/d.proto",
    "keywords.proto",
    "proto2_all.proto",
    "proto3_all.proto",
    "service.proto",
    "wkt_use.proto",
  ];

  for (const opt of ["int64=bigint", "int64=number", "target=js+dts"]) {
    it(`plugin - protoc --meridian_out equals meridian gen on the fixtures (${opt})`, () => {
      const int64 = opt === "int64=number" ? "number" : "bigint";
      const targets: GenerateTarget[] = opt === "target=js+dts" ? ["js", "dts"] : ["ts"];
      const dir = workDir();
      const out = join(dir, "out");
      mkdirSync(out);
      const res = spawnSync(
        PROTOC,
        [
          `--plugin=protoc-gen-meridian=${pluginWrapper(dir)}`,
          `--meridian_out=${out}`,
          `--meridian_opt=${opt}`,
          `-I${testdata}`,
          ...protos.map((p) => join(testdata, p)),
        ],
        { encoding: "utf8", cwd: REPO_ROOT },
      );
      expect(res.stderr).toBe("");
      expect(res.status).toBe(0);
      const expected = new Map(
        generate(loadProtoFiles(protos.map((p) => join(testdata, p)), { includeDirs: [testdata] }), { int64, targets }).map((o) => [o.name, o.content] as const),
      );
      const actual = tree(out);
      expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [name, content] of expected) expect(actual.get(name), name).toBe(content);
    });
  }

  const SYSTEM = "/usr/include";
  const systemProtos = ["google/protobuf/descriptor.proto", "google/protobuf/api.proto", "google/protobuf/type.proto"];
  it.skipIf(!systemProtos.every((p) => existsSync(join(SYSTEM, p))))("plugin - protoc's own descriptor.proto, api.proto and type.proto", () => {
    const dir = workDir();
    const res = spawnSync(
      PROTOC,
      [`--plugin=protoc-gen-meridian=${pluginWrapper(dir)}`, `--meridian_out=${dir}`, `-I${SYSTEM}`, ...systemProtos.map((p) => join(SYSTEM, p))],
      { encoding: "utf8", cwd: REPO_ROOT },
    );
    expect(res.stderr).toBe("");
    const files = loadProtoFiles(systemProtos.map((p) => join(SYSTEM, p)), { includeDirs: [SYSTEM] });
    for (const f of files) {
      const o = emitFile(f, { int64: "bigint" });
      expect(readFileSync(join(dir, o.name), "utf8"), o.name).toBe(o.content);
    }
  });

  it("plugin - the benchmark's feed.proto", () => {
    const dir = workDir();
    const res = spawnSync(
      PROTOC,
      [`--plugin=protoc-gen-meridian=${pluginWrapper(dir)}`, `--meridian_out=${dir}`, "-Ibench/codec/proto", "bench/codec/proto/feed.proto"],
      { encoding: "utf8", cwd: REPO_ROOT },
    );
    expect(res.status).toBe(0);
    expect(readFileSync(join(dir, "feed.ts"), "utf8")).toBe(readFileSync(join(REPO_ROOT, "bench/codec/gen/feed.ts"), "utf8"));
  });

  // protobufjs's parser rejects a group inside a oneof; protoc accepts it.
  it("plugin - a group member of a oneof merges only its occurrences after another member", async () => {
    const dir = workDir();
    writeFileSync(
      join(dir, "og.proto"),
      'syntax = "proto2";\npackage og;\nmessage Msg {\n  oneof pick {\n    group Shape = 1 { optional int32 a = 2; optional int32 b = 3; }\n    int32 n = 4;\n  }\n}\n',
    );
    const res = spawnSync(PROTOC, [`--plugin=protoc-gen-meridian=${pluginWrapper(dir)}`, `--meridian_out=${dir}`, `-I${dir}`, join(dir, "og.proto")], {
      encoding: "utf8",
      cwd: REPO_ROOT,
    });
    expect(res.stderr).toBe("");
    const { Msg } = (await import(pathToFileURL(join(dir, "og.ts")).href)) as { Msg: MessageCodec<{ pick?: unknown }, { pick: unknown }> };
    const shapeA = [11, 16, 1, 12]; // Shape { a: 1 }
    const shapeB = [11, 24, 2, 12]; // Shape { b: 2 }
    const cases: [number[], unknown][] = [
      [[...shapeA, ...shapeB], { case: "shape", value: { a: 1, b: 2 } }],
      [[...shapeA, 32, 5, ...shapeB], { case: "shape", value: { b: 2 } }],
      [[...shapeA, 32, 5, ...shapeB, 32, 6], { case: "n", value: 6 }],
    ];
    for (const [input, pick] of cases) {
      const bytes = new Uint8Array(input);
      expect(Msg.decode(bytes).pick, `decode ${input}`).toEqual(pick);
      expect(Msg.view(bytes).pick, `view ${input}`).toEqual(pick);
    }
  });

  it("plugin - an unknown parameter fails protoc with the plugin's message", () => {
    const dir = workDir();
    const res = spawnSync(
      PROTOC,
      [`--plugin=protoc-gen-meridian=${pluginWrapper(dir)}`, `--meridian_out=${dir}`, "--meridian_opt=int64=float", "-Ibench/codec/proto", "bench/codec/proto/feed.proto"],
      { encoding: "utf8", cwd: REPO_ROOT },
    );
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain('unknown parameter "int64=float"');
  });
});
