/**
 * Meridian's code generator: .proto files in, TypeScript modules out (message types, codecs,
 * lazy views and service descriptors that use "meridian-rpc/runtime").
 *
 * ```ts
 * const files = loadProtoFiles(["feed.proto"], { includeDirs: ["proto"] });
 * for (const out of generate(files, { int64: "bigint" })) writeFileSync(out.name, out.content);
 * ```
 */
import { emitFile, type GeneratedOutput } from "./emit-file.js";
import type { FileModel, Int64Mode } from "./model.js";

/** Options of generate(). */
export interface GenerateOptions {
  /**
   * Representation of 64-bit integer fields without a `jstype` option: "bigint" (the default),
   * "number" (precision beyond 2^53 is lost) or "string" (decimal text).
   */
  readonly int64?: Int64Mode;
}

/** Generates one TypeScript module per file (named after it: `foo/bar.proto` -> `foo/bar.ts`). */
export function generate(files: readonly FileModel[], options: GenerateOptions = {}): GeneratedOutput[] {
  const int64 = options.int64 ?? "bigint";
  return files.map((file) => emitFile(file, { int64 }));
}

export type { GeneratedOutput } from "./emit-file.js";
export { IdlError } from "./errors.js";
export { loadProtoFiles, type LoadOptions } from "./parse.js";
export { filesFromDescriptors } from "./descriptor.js";
export { VERSION } from "./version.js";
export type * from "./model.js";
