/**
 * Meridian's code generator: .proto files in, TypeScript modules out (message types, codecs,
 * lazy views and service descriptors that use "meridian-rpc/runtime").
 *
 * ```ts
 * const files = loadProtoFiles(["feed.proto"], { includeDirs: ["proto"] });
 * for (const out of generate(files, { int64: "bigint" })) writeFileSync(out.name, out.content);
 * ```
 */
import { moduleFor } from "../emit/context.js";
import { emitFile, type GeneratedOutput } from "../emit/file.js";
import type { FileModel, Int64Mode } from "../idl/model.js";

/** What generate() prints: typed TypeScript, or plain JavaScript and its type declarations. */
export type GenerateTarget = "ts" | "js" | "dts";

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
 * each target.
 */
export function generate(files: readonly FileModel[], options: GenerateOptions = {}): GeneratedOutput[] {
  const int64 = options.int64 ?? "bigint";
  const targets = options.targets ?? ["ts"];
  if (targets.some((t) => t !== "ts")) throw new Error("generate: only the ts target is implemented so far");
  const outDir = options.outDir ?? ".";
  const runtimeModule = options.runtime === undefined ? undefined : moduleFor(options.runtime, outDir);
  const wktModule = options.wkt === undefined ? undefined : moduleFor(options.wkt, outDir);
  return files.map((file) => emitFile(file, { int64, ...(runtimeModule === undefined ? {} : { runtimeModule }), ...(wktModule === undefined ? {} : { wktModule }) }));
}

export type { GeneratedOutput } from "../emit/file.js";
export { IdlError } from "../idl/errors.js";
export { loadProtoFiles, type LoadOptions } from "../idl/parse.js";
export { filesFromDescriptors } from "./descriptor.js";
export { VERSION } from "../emit/version.js";
export type * from "../idl/model.js";
