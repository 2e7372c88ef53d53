/**
 * generate()'s js and dts targets, against the ts target they are printed from:
 *
 * - js: the test protos generated as plain ESM JavaScript, next to runtime/codec transpiled to
 *   JavaScript, are imported by plain Node (a child process without tsx or loader hooks), which
 *   decodes and re-encodes random messages encoded by the committed ts fixtures: the bytes must
 *   come back unchanged, as they do through the ts codecs (encoding is canonical).
 * - dts: tsc accepts the declarations together with a small consumer that uses their messages,
 *   enums, views and service descriptors as a TypeScript user would.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import fc from "fast-check";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import { generate, loadProtoFiles, type GenerateOptions } from "./index.js";
import { REPO_ROOT } from "./regen.js";
import { removeTestDirs, testWorkDir, typecheckConsumer } from "./test-harness.js";
import { outputName } from "../emit/context.js";
import type { FileModel } from "../idl/model.js";
import { declaredMessages, GENERATED_SETS, loadGenerated, messageArb, setFiles } from "../test/generic/helpers.js";

afterAll(removeTestDirs);

/** Random messages per message type. */
const SAMPLES = 12;

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

/** Writes `generate()`'s outputs of `files` under `dir`. */
function writeGenerated(dir: string, files: readonly FileModel[], options: GenerateOptions): void {
  for (const out of generate(files, { ...options, outDir: dir })) {
    const path = join(dir, out.name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, out.content);
  }
}

/** runtime/codec as plain JavaScript modules in `dir` (what generated message code imports). */
function transpileCodecRuntime(dir: string): string {
  const src = join(REPO_ROOT, "runtime", "codec");
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(src)) {
    if (!name.endsWith(".ts") || name.endsWith(".test.ts")) continue;
    const out = ts.transpileModule(readFileSync(join(src, name), "utf8"), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(join(dir, name.replace(/\.ts$/, ".js")), out.outputText);
  }
  return join(dir, "index.js");
}

/** The well-known types generated as JavaScript into `dir`, with an index re-exporting them. */
function generateWkt(dir: string, runtime: string): string {
  const inc = join(REPO_ROOT, "idl", "wkt");
  const names = readdirSync(join(inc, "google", "protobuf")).filter((n) => n.endsWith(".proto"));
  const files = loadProtoFiles(
    names.map((n) => join(inc, "google", "protobuf", n)),
    { includeDirs: [inc] },
  );
  writeGenerated(dir, files, { targets: ["js"], runtime });
  const index = files.map((f) => `export * from "./${outputName(f.name, "js")}";`).join("\n");
  writeFileSync(join(dir, "index.js"), index + "\n");
  return join(dir, "index.js");
}

// Run by plain Node: for each case, imports the module, decodes each input and encodes it again.
const ROUND_TRIP = `
import { pathToFileURL } from "node:url";
const cases = JSON.parse(await new Promise((ok) => { let s = ""; process.stdin.on("data", (d) => (s += d)); process.stdin.on("end", () => ok(s)); }));
const out = [];
for (const c of cases) {
  const mod = await import(pathToFileURL(c.module).href);
  const codec = Object.values(mod).find((v) => v !== null && typeof v === "object" && v.typeName === c.type);
  if (codec === undefined) { out.push({ type: c.type, error: "no codec" }); continue; }
  out.push({ type: c.type, hex: c.hex.map((h) => Buffer.from(codec.encode(codec.decode(Buffer.from(h, "hex")))).toString("hex")) });
}
process.stdout.write(JSON.stringify(out));
`;

describe("targets - js", () => {
  const dir = testWorkDir("targets-js");
  const runtime = transpileCodecRuntime(join(dir, "rt"));
  const wkt = generateWkt(join(dir, "wkt"), runtime);
  const sets = GENERATED_SETS.filter((s) => s.genDir.startsWith("test/"));

  for (const [i, set] of sets.entries()) {
    it(`targets - js: ${set.name} runs under plain Node and round-trips the ts codecs' bytes`, async () => {
      const out = join(dir, `set${i}`);
      const files = loadProtoFiles(setFiles(set), { includeDirs: [join(REPO_ROOT, set.includeDir)] });
      writeGenerated(out, files, { targets: ["js"], int64: set.int64, runtime, wkt });
      const generated = await loadGenerated(set.genDir);
      const cases = declaredMessages(files).map((m) => {
        const codec = generated.get(m.fullName)!;
        // Canonical bytes (decoded and encoded again by the ts codec): the random values follow the
        // set's int64 mode even inside well-known types, which are always bigint.
        const samples = fc.sample(messageArb(m, { int64: set.int64, maxDepth: 3, unknownFields: true }), { numRuns: SAMPLES, seed: 16 });
        return { module: join(out, outputName(m.file.name, "js")), type: m.fullName, hex: samples.map((s) => hex(codec.encode(codec.decode(codec.encode(s))))) };
      });
      expect(cases.length).toBeGreaterThan(0);
      const run = spawnSync(process.execPath, ["--input-type=module", "-e", ROUND_TRIP], {
        input: JSON.stringify(cases),
        encoding: "utf8",
        timeout: 60_000,
        // Plain Node: no loader hooks inherited from the test runner.
        env: { ...process.env, NODE_OPTIONS: "" },
      });
      expect(run.stderr, "plain node stderr").toBe("");
      expect(run.status).toBe(0);
      const results = JSON.parse(run.stdout) as { type: string; hex?: string[]; error?: string }[];
      expect(results.map((r) => ({ type: r.type, hex: r.hex }))).toEqual(cases.map((c) => ({ type: c.type, hex: c.hex })));
    });
  }
});

describe("targets - dts", () => {
  it("targets - dts: tsc accepts the declarations against a consumer", () => {
    // Inside the repository, so "meridian-rpc/runtime" resolves as it does for a user.
    const dir = testWorkDir("targets-dts");
    const inc = join(REPO_ROOT, "codegen", "testdata");
    const names = ["proto3_all.proto", "proto2_all.proto", "service.proto", "keywords.proto", "wkt_use.proto", "imports/a.proto", "imports/b.proto", "imports/c.proto", "imports/sub/d.proto"];
    const files = loadProtoFiles(
      names.map((n) => join(inc, n)),
      { includeDirs: [inc] },
    );
    writeGenerated(dir, files, { targets: ["dts"] });
    expect(readFileSync(join(dir, "service.d.ts"), "utf8")).toContain("export declare const Everything: {");
    const consumer = [
      'import type { InputOf, OutputOf, MessageCodec } from "meridian-rpc/runtime";',
      'import * as p3 from "./proto3_all.js";',
      'import * as p2 from "./proto2_all.js";',
      'import * as svc from "./service.js";',
      'import * as wkt from "./wkt_use.js";',
      'import * as a from "./imports/a.js";',
      "const s: p3.Scalars = p3.Scalars.create({ fInt32: 1, fInt64: 2n, fString: \"x\" });",
      "const bytes: Uint8Array = p3.Scalars.encode(s);",
      "const back: p3.Scalars = p3.Scalars.decode(bytes);",
      "const view: p3.ScalarsView = p3.Scalars.view(bytes);",
      "const n: number = view.fInt32 + back.fInt32;",
      "const codec: MessageCodec<p2.Required, p2.RequiredView> = p2.Required;",
      "const level: p2.Level = p2.Level.HIGH;",
      "type In = InputOf<typeof svc.Everything.methods.getThing>;",
      "type Out = OutputOf<typeof svc.Everything.methods.getThing>;",
      'const req: In = { query: "q" };',
      "const res: Out = svc.Response.create();",
      'const kind: "unary" = svc.Everything.methods.getThing.kind;',
      "const e: wkt.Event | undefined = undefined;",
      "const x: a.Post | undefined = undefined;",
      "// @ts-expect-error: a string is not an int32",
      'p3.Scalars.create({ fInt32: "1" });',
      "export { bytes, codec, level, req, res, kind, e, x, n };",
      "",
    ].join("\n");
    writeFileSync(join(dir, "consumer.ts"), consumer);
    const run = typecheckConsumer(dir, { skipLibCheck: false });
    expect(run.output, "tsc output").toBe("");
    expect(run.status).toBe(0);
  }, 150_000);
});

describe("targets - generate", () => {
  const files = loadProtoFiles(["e.proto"], {
    sources: { "e.proto": 'syntax = "proto2"; enum E { option allow_alias = true; A = 0; B = 0; C = -1; } message M { optional E e = 1; }' },
  });

  it("targets - generate: one output per file and target, named for the target", () => {
    expect(generate(files, { targets: ["ts", "js", "dts"] }).map((o) => o.name)).toEqual(["e.ts", "e.js", "e.d.ts"]);
  });

  it("targets - generate: a js enum is the object TypeScript compiles the enum to", () => {
    const js = generate(files, { targets: ["js"] })[0]!.content;
    const body = js.slice(js.indexOf("export const E = {"), js.indexOf("};", js.indexOf("export const E = {")) + 2);
    const E = new Function(`${body.replace("export ", "")} return E;`)() as Record<string, unknown>;
    expect(E).toEqual({ A: 0, B: 0, C: -1, 0: "B", "-1": "C" });
  });

  it("targets - generate: an unknown target is a TypeError that names the targets", () => {
    expect(() => generate(files, { targets: ["ts", "go" as "ts"] })).toThrow(/unknown target "go"; the targets are ts, js, dts/);
  });
});
