/**
 * Meridian's code generator: .proto files in, TypeScript (or JavaScript and .d.ts) modules out
 * (message types, codecs, lazy views and service descriptors that use "meridian-rpc/runtime");
 * .thrift files in, TypeScript modules out (generateThrift, docs/thrift-gen.md).
 *
 * ```ts
 * const files = loadProtoFiles(["feed.proto"], { includeDirs: ["proto"] });
 * for (const out of generate(files, { int64: "bigint" })) writeFileSync(out.name, out.content);
 * for (const out of generateThrift(["idl/feed.thrift"], { includeDirs: ["idl"] })) writeFileSync(out.name, out.content);
 * ```
 */
import { moduleFor } from "../emit/context.js";
import { emitFile, type GeneratedOutput } from "../emit/file.js";
import type { FileModel, Int64Mode } from "../idl/model.js";

/** What generate() prints: typed TypeScript, or plain JavaScript and its type declarations. */
export type GenerateTarget = "ts" | "js" | "dts";

const TARGETS: readonly string[] = ["ts", "js", "dts"] satisfies GenerateTarget[];

/** Options of generate(). */
export interface GenerateOptions {
  /**
   * Representation of 64-bit integer fields without a `jstype` option: "bigint" (the default),
   * "number" (precision beyond 2^53 is lost) or "string" (decimal text).
   */
  readonly int64?: Int64Mode;
  /** The outputs per file: `foo/bar.ts`, `foo/bar.js`, `foo/bar.d.ts`. Default ["ts"]. */
  readonly targets?: readonly GenerateTarget[];
  /**
   * Where generated code imports the runtime from: a package specifier (default
   * meridian-rpc/runtime) or, starting with . or /, the path of the runtime's index module,
   * imported relatively from each output (needs `outDir`).
   */
  readonly runtime?: string;
  /** The same for the well-known types (default meridian-rpc/wkt). */
  readonly wkt?: string;
  /** The output directory, against which relative `runtime` and `wkt` paths are resolved. */
  readonly outDir?: string;
}

/**
 * Generates the modules of each file, named after it (`foo/bar.proto` -> `foo/bar.ts`), for
 * each target: "ts" (typed TypeScript), "js" (plain ESM JavaScript, for projects without a
 * TypeScript build step) and "dts" (its declarations). The three come from the same emitter, so
 * the js module behaves as the ts one and the dts declares the ts one's types.
 */
export function generate(files: readonly FileModel[], options: GenerateOptions = {}): GeneratedOutput[] {
  const int64 = options.int64 ?? "bigint";
  const targets = options.targets ?? ["ts"];
  const unknown = targets.filter((t) => !TARGETS.includes(t));
  if (unknown.length > 0) throw new TypeError(`generate: unknown target ${unknown.map((t) => JSON.stringify(t)).join(", ")}; the targets are ${TARGETS.join(", ")}`);
  const outDir = options.outDir ?? ".";
  const runtimeModule = options.runtime === undefined ? undefined : moduleFor(options.runtime, outDir);
  const wktModule = options.wkt === undefined ? undefined : moduleFor(options.wkt, outDir);
  const emitOptions = { int64, ...(runtimeModule === undefined ? {} : { runtimeModule }), ...(wktModule === undefined ? {} : { wktModule }) };
  return files.flatMap((file) => targets.map((target) => emitFile(file, emitOptions, target)));
}

export type { GeneratedOutput } from "../emit/file.js";
export { IdlError } from "../idl/errors.js";
export { loadProtoFiles, type LoadOptions } from "../idl/parse.js";
export { filesFromDescriptors } from "./descriptor.js";
export { VERSION } from "../emit/version.js";
export type * from "../idl/model.js";
export { generateThrift, type GenerateThriftOptions } from "./thrift/generate.js";
