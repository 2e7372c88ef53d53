/**
 * `meridian gen`: .proto or .thrift files in, one generated module per file (and target) out.
 * Synchronous and light: it loads the code generator only, never the runtime's network side or
 * a transport.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import {
  generate,
  generateThrift,
  IdlError,
  loadProtoFiles,
  type GeneratedOutput,
  type GenerateTarget,
} from "../codegen/index.js";
import { oneOf, parseArgs, UsageError } from "./args.js";
import { GEN } from "./commands.js";
import type { CliIo } from "./io.js";

const TARGETS: readonly GenerateTarget[] = ["ts", "js", "dts"];

/** The targets of every --target (repeated or comma-separated), each once, in order; default ts. */
function targetsOf(values: readonly string[]): GenerateTarget[] {
  const out: GenerateTarget[] = [];
  for (const v of values.flatMap((x) => x.split(","))) {
    const t = oneOf("--target", v.trim(), TARGETS);
    if (!out.includes(t)) out.push(t);
  }
  return out.length === 0 ? ["ts"] : out;
}

/** The IDL of the files given: all .proto or all .thrift (by extension). Throws UsageError otherwise. */
function idlOf(files: readonly string[]): "proto" | "thrift" {
  const thrift = files.filter((f) => f.endsWith(".thrift"));
  if (thrift.length === 0) return "proto";
  if (thrift.length === files.length) return "thrift";
  throw new UsageError(`give either .proto or .thrift files, not both (${thrift[0]} and ${files.find((f) => !f.endsWith(".thrift"))}): run meridian gen once for each`);
}

/**
 * Runs `meridian gen <args>` and returns its exit status: 0 written, 1 for an error in the IDL
 * (printed as `file:line:column: message`, nothing written). Throws UsageError for bad usage.
 */
export function genCommand(args: readonly string[], io: CliIo): number {
  const parsed = parseArgs(args, GEN.options);
  if (parsed.positional.length === 0) throw new UsageError("no .proto or .thrift files given");
  const idl = idlOf(parsed.positional);
  const int64 = oneOf("--int64", parsed.value("--int64") ?? "bigint", ["bigint", "number", "string"]);
  const targets = targetsOf(parsed.values("--target"));
  const out = parsed.value("--out")!;
  const includeDirs = parsed.values("--proto_path");
  const runtime = parsed.value("--runtime");
  const wkt = parsed.value("--wkt");
  if (idl === "thrift") {
    if (targets.some((t) => t !== "ts")) throw new UsageError(`.thrift files generate TypeScript only (--target ts), not ${targets.filter((t) => t !== "ts").join(", ")}`);
    if (int64 !== "bigint") throw new UsageError(`--int64 ${int64} applies to .proto files only: Thrift's i64 values are always bigint`);
    if (wkt !== undefined) throw new UsageError("--wkt applies to .proto files only: Thrift has no well-known types");
  }
  try {
    const roots = [...parsed.positional];
    const include = includeDirs.length === 0 ? ["."] : [...includeDirs];
    // Everything is generated before anything is written: a bad file leaves no partial output.
    const outputs: GeneratedOutput[] =
      idl === "thrift"
        ? generateThrift(roots, { includeDirs: include, outDir: out, ...(runtime === undefined ? {} : { runtime }) })
        : generate(loadProtoFiles(roots, { includeDirs: include }), {
            int64,
            targets,
            outDir: out,
            ...(runtime === undefined ? {} : { runtime }),
            ...(wkt === undefined ? {} : { wkt }),
          });
    for (const o of outputs) {
      const path = join(resolve(out), o.name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, o.content);
    }
    return 0;
  } catch (e) {
    if (e instanceof IdlError) {
      io.stderr(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
