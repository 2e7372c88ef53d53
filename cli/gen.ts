/**
 * `meridian gen`: .proto files in, one generated module per file and target out. Synchronous
 * and light: it loads the code generator only, never the runtime's network side or a transport.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { generate, IdlError, loadProtoFiles, type GenerateTarget } from "../codegen/index.js";
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

/**
 * Runs `meridian gen <args>` and returns its exit status: 0 written, 1 for an error in the IDL
 * (printed as `file:line:column: message`, nothing written). Throws UsageError for bad usage.
 */
export function genCommand(args: readonly string[], io: CliIo): number {
  const parsed = parseArgs(args, GEN.options);
  if (parsed.positional.length === 0) throw new UsageError("no .proto files given");
  const int64 = oneOf("--int64", parsed.value("--int64") ?? "bigint", ["bigint", "number", "string"]);
  const targets = targetsOf(parsed.values("--target"));
  const out = parsed.value("--out")!;
  const includeDirs = parsed.values("--proto_path");
  const runtime = parsed.value("--runtime");
  const wkt = parsed.value("--wkt");
  try {
    const files = loadProtoFiles([...parsed.positional], { includeDirs: includeDirs.length === 0 ? ["."] : [...includeDirs] });
    // Everything is generated before anything is written: a bad file leaves no partial output.
    const outputs = generate(files, {
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
