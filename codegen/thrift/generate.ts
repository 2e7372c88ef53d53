/**
 * The Thrift side of the code generator: .thrift files in, one TypeScript module per
 * file out (enums, typedefs, constants, struct/union/exception types and codecs, service
 * descriptors), using the Thrift runtime of "meridian-rpc/runtime".
 *
 * ```ts
 * for (const out of generateThrift(["idl/feed.thrift"], { includeDirs: ["idl"] })) writeFileSync(join("gen", out.name), out.content);
 * ```
 */
import { isAbsolute } from "node:path";
import { moduleFor } from "../../emit/context.js";
import type { GeneratedOutput } from "../../emit/file.js";
import { emitThriftProgram } from "../../emit/thrift/file.js";
import { IdlError } from "../../idl/errors.js";
import { loadThriftFiles, type ThriftLoadOptions } from "../../idl/thrift/link.js";

/** Options of generateThrift(): where includes are looked for, and where the runtime is imported from. */
export interface GenerateThriftOptions extends ThriftLoadOptions {
  /**
   * Where generated code imports the runtime from: a package specifier (default
   * meridian-rpc/runtime) or, starting with . or /, the path of the runtime's index module,
   * imported relatively from each output (needs `outDir`).
   */
  readonly runtime?: string;
  /** The output directory, against which a relative `runtime` path is resolved. */
  readonly outDir?: string;
}

/**
 * Reads, links and generates `files` (.thrift paths) and every file they include: one module per
 * file, named after it (`foo/bar.thrift` -> `foo/bar.ts`, its path inside the first include
 * directory that holds it). Throws IdlError for bad IDL (`file:line:column: message`), for a file
 * outside every include directory (its output would have no name inside the output directory),
 * and for IDL that generated code cannot express.
 */
export function generateThrift(files: readonly string[], options: GenerateThriftOptions = {}): GeneratedOutput[] {
  const program = loadThriftFiles(files, options);
  for (const file of program.documents.keys()) {
    if (isAbsolute(file)) {
      throw new IdlError(file, 0, 0, `${file} is not inside any include directory (-I); add the directory its output should be named from`);
    }
  }
  const runtimeModule = options.runtime === undefined ? undefined : moduleFor(options.runtime, options.outDir ?? ".");
  return emitThriftProgram(program, runtimeModule === undefined ? {} : { runtimeModule });
}
