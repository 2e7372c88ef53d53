/**
 * Regenerates every generated file committed in the repository (`npm run gen:fixtures`): the
 * directories of TARGETS below, and each example's `examples/<name>/gen` from its `proto/`.
 *
 * codegen/fixtures.test.ts runs the same generation into a temporary directory and fails on any
 * difference, and on any file carrying Meridian's `@generated` header that no target produces,
 * so neither a generator change nor a .proto change can land without its regenerated output.
 *
 * Usage: node --conditions=meridian-source --import tsx codegen/regen.ts [outRoot]
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, posix, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { moduleFor } from "../emit/context.js";
import { emitFile } from "../emit/file.js";
import type { Int64Mode } from "../idl/model.js";
import { loadProtoFiles } from "../idl/parse.js";
import { generateThrift } from "./thrift/generate.js";
import { VERSION } from "../emit/version.js";

/** The repository root (the parent of codegen/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** One output directory of generated code and how it is generated. Paths are repository-relative. */
export interface Target {
  /** The output directory; regen owns its whole content (stale files in it are removed). */
  readonly out: string;
  /** The import root (`-I`): output names are the sources' paths relative to it. */
  readonly include: string;
  /** The .proto files to generate, relative to `include`; default: every .proto under it. */
  readonly protos?: readonly string[];
  /**
   * The .thrift files to generate instead (relative to `include`): each and every file it
   * includes gives one module. `int64` does not apply (Thrift's i64 is bigint).
   */
  readonly thrift?: readonly string[];
  readonly int64: Int64Mode;
  /**
   * For outputs that are part of Meridian's own sources, built by tsc where the package cannot
   * import itself by name: the runtime module they import relatively (`--runtime <path>`). Message
   * code needs only runtime/codec; a service descriptor needs runtime/index.ts.
   */
  readonly runtime?: string;
  /** Whether outputs go directly into `out`, without the sources' subdirectories. */
  readonly flatten?: boolean;
}

// What message code imports at run time; the plugin's own codecs take it from here, so codegen/
// needs nothing of runtime/ above the codec.
const CODEC_MODULE = "./runtime/codec/index.ts";

/** The directories of committed generated code outside examples/ (see targets()). */
export const TARGETS: readonly Target[] = [
  { out: "bench/codec/gen", include: "bench/codec/proto", protos: ["feed.proto"], int64: "bigint" },
  { out: "bench/codec/gen-number", include: "bench/codec/proto", protos: ["feed.proto"], int64: "number" },
  // runtime/wkt/index.ts, re-exporting these, is added by generateAll().
  { out: "runtime/wkt", include: "idl/wkt", int64: "bigint", runtime: CODEC_MODULE, flatten: true },
  {
    out: "codegen/plugin/gen",
    include: "codegen/plugin/proto",
    protos: ["google/protobuf/descriptor.proto", "google/protobuf/compiler/plugin.proto"],
    int64: "bigint",
    runtime: CODEC_MODULE,
  },
  {
    out: "runtime/registry/embedded/gen",
    include: "runtime/registry/embedded",
    protos: ["registry.proto"],
    int64: "number",
    runtime: "./runtime/index.ts",
  },
  { out: "test/fixtures/gen", include: "codegen/testdata", int64: "bigint" },
  { out: "test/fixtures/gen-number", include: "codegen/testdata", protos: ["proto3_all.proto"], int64: "number" },
  { out: "test/fixtures/gen-string", include: "codegen/testdata", protos: ["proto3_all.proto"], int64: "string" },
  { out: "test/codec/gen", include: "test/protos", int64: "bigint" },
  { out: "test/codec/gen-number", include: "test/protos", int64: "number" },
  { out: "test/registry/gen", include: "test/registry/protos", protos: ["accounts.proto"], int64: "number" },
  { out: "test/rpc/gen", include: "test/rpc/proto", protos: ["echo.proto"], int64: "bigint" },
  { out: "test/grpc/gen", include: "test/grpc/proto", protos: ["interop.proto"], int64: "bigint" },
  { out: "test/thrift/interop/gen-ts", include: "test/thrift/interop", thrift: ["interop.thrift"], int64: "bigint" },
  { out: "bench/codec/thrift/gen", include: "bench/codec/thrift", thrift: ["feed.thrift"], int64: "bigint" },
];

/**
 * Every target of `repo`: TARGETS, then each example that has `gen/` and either `proto/` or
 * `thrift/` (`examples/<name>/proto/**.proto`, or `thrift/**.thrift`, generated into
 * `examples/<name>/gen` with the defaults, as `meridian gen -I proto --out gen` does).
 */
export function targets(repo: string = REPO_ROOT): Target[] {
  const out = [...TARGETS];
  const examples = join(repo, "examples");
  if (!existsSync(examples)) return out;
  for (const e of readdirSync(examples, { withFileTypes: true })) {
    if (!e.isDirectory() || !existsSync(join(examples, e.name, "gen"))) continue;
    if (existsSync(join(examples, e.name, "proto"))) out.push({ out: `examples/${e.name}/gen`, include: `examples/${e.name}/proto`, int64: "bigint" });
    else if (existsSync(join(examples, e.name, "thrift"))) {
      const include = `examples/${e.name}/thrift`;
      out.push({ out: `examples/${e.name}/gen`, include, thrift: idlFiles(join(repo, include), ".thrift"), int64: "bigint" });
    }
  }
  return out.sort((a, b) => (a.out < b.out ? -1 : a.out > b.out ? 1 : 0));
}

/** Directories whose whole content regen owns (stale files in them are removed). */
export function ownedDirs(repo: string = REPO_ROOT): string[] {
  return targets(repo).map((t) => t.out);
}

/** The first line of every file Meridian generates (see emit/file.ts). */
export const GENERATED_HEADER = "// @generated by meridian v";

/** The files of one target, by path relative to the repository root, from the sources in `repo`. */
function generateTarget(repo: string, t: Target, out: Map<string, string>): void {
  const inc = join(repo, t.include);
  if (t.thrift !== undefined) {
    const runtime = t.runtime === undefined ? {} : { runtime: join(repo, t.runtime), outDir: join(repo, t.out) };
    const outputs = generateThrift(
      t.thrift.map((n) => join(inc, n)),
      { includeDirs: [inc], ...runtime },
    );
    for (const o of outputs) out.set(`${t.out}/${t.flatten ? posix.basename(o.name) : o.name}`, o.content);
    return;
  }
  const files = loadProtoFiles(
    (t.protos ?? idlFiles(inc, ".proto")).map((n) => join(inc, n)),
    { includeDirs: [inc] },
  );
  // Output names are relative to the repository root, so relative imports come out right.
  const runtime = t.runtime === undefined ? undefined : moduleFor(t.runtime, ".", repo);
  for (const f of files) {
    const ts = f.name.replace(/\.proto$/, ".ts");
    const name = `${t.out}/${t.flatten ? posix.basename(ts) : ts}`;
    const o = emitFile(f, { int64: t.int64, runtimeModule: runtime === undefined ? undefined : () => runtime(name) });
    out.set(name, o.content);
  }
}

/**
 * Every generated file, by path relative to the repository root. Generation reads the .proto
 * sources from `repo`.
 */
export function generateAll(repo: string = REPO_ROOT): Map<string, string> {
  const out = new Map<string, string>();
  for (const t of targets(repo)) generateTarget(repo, t, out);
  const modules = [...out.keys()]
    .filter((n) => n.startsWith("runtime/wkt/"))
    .map((n) => posix.basename(n, ".ts"))
    .sort();
  out.set(
    "runtime/wkt/index.ts",
    [
      `${GENERATED_HEADER}${VERSION} (codegen/regen.ts). DO NOT EDIT.`,
      "/**",
      " * The well-known types of protobuf (Timestamp, Duration, Any, Struct/Value/ListValue/NullValue,",
      " * the wrappers, Empty, FieldMask), generated by Meridian from its own definitions in",
      ' * idl/wkt. Generated code imports them from "meridian-rpc/wkt".',
      " */",
      ...modules.map((m) => `export * from "./${m}.js";`),
      "",
    ].join("\n"),
  );
  return out;
}

/** Writes `files` under `root`, first emptying the directories owned in `repo`. */
export function writeAll(root: string, files: Map<string, string>, repo: string = REPO_ROOT): void {
  for (const d of ownedDirs(repo)) rmSync(join(root, d), { recursive: true, force: true });
  for (const [rel, content] of files) {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
}

/** The IDL files (`.proto` or `.thrift`) under `dir`, relative to it. */
function idlFiles(dir: string, ext: string): string[] {
  return filesUnder(dir, "").filter((f) => f.endsWith(ext));
}

/** Directories never searched for generated files: dependencies, build output, scratch space. */
const NOT_SOURCES = new Set(["node_modules", "dist", ".git", ".tmp"]);

/** Files under `dir` of `root` (repository-relative, `/`-separated, sorted); none if it is absent. */
export function filesUnder(root: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (!NOT_SOURCES.has(e.name)) walk(p);
      } else out.push(p);
    }
  };
  if (existsSync(join(root, dir))) walk(dir);
  return out.sort();
}

/** What differs between the committed generated code under `root` and a fresh generation. */
export interface GeneratedDiff {
  /** Generated files whose committed copy differs or is missing. */
  readonly stale: string[];
  /** Files in an owned directory that generation does not produce. */
  readonly extra: string[];
  /** Files outside every owned directory that carry Meridian's generated header. */
  readonly unowned: string[];
}

/**
 * Compares the generated code committed under `root` with `fresh` (generateAll() of the
 * repository). With `dirs`, only those owned directories are compared and unowned files are not
 * searched for.
 */
export function diffGenerated(root: string, fresh: Map<string, string>, dirs?: readonly string[]): GeneratedDiff {
  const within = (f: string, list: readonly string[]): boolean => list.some((d) => f.startsWith(`${d}/`));
  const owned = ownedDirs();
  const compared = dirs ?? owned;
  const stale = [...fresh]
    .filter(([f, content]) => within(f, compared) && (!existsSync(join(root, f)) || readFileSync(join(root, f), "utf8") !== content))
    .map(([f]) => f)
    .sort();
  const extra = compared.flatMap((d) => filesUnder(root, d)).filter((f) => !fresh.has(f));
  const unowned =
    dirs !== undefined
      ? []
      : filesUnder(root, "").filter(
          (f) => f.endsWith(".ts") && !within(f, owned) && readFileSync(join(root, f), "utf8").startsWith(GENERATED_HEADER),
        );
  return { stale, extra, unowned };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = resolve(process.argv[2] ?? REPO_ROOT);
  const files = generateAll();
  writeAll(root, files);
  process.stdout.write(`regenerated ${files.size} files under ${root}\n`);
}
