/**
 * Helpers for generator tests: generate inline .proto sources into a temporary directory inside
 * the repository (so generated code resolves "meridian-rpc/runtime" like user code does) and
 * import the result.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { emitFile } from "../emit/file.js";
import type { Int64Mode } from "../idl/model.js";
import { loadProtoFiles } from "../idl/parse.js";
import { REPO_ROOT } from "./regen.js";

const created: string[] = [];

/** Removes the directories testWorkDir() made (test files call it from afterAll). */
export function removeTestDirs(): void {
  for (const d of created.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * A fresh directory under .tmp/codegen-tests/ (inside the repository, so generated code in it
 * resolves "meridian-rpc/runtime"), removed by removeTestDirs().
 */
export function testWorkDir(prefix: string): string {
  const base = join(REPO_ROOT, ".tmp", "codegen-tests");
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, `${prefix}-`));
  created.push(dir);
  return dir;
}

/** Generated files of inline sources, in memory and on disk. */
export interface Generated {
  /** The temporary directory holding the generated .ts files. */
  readonly dir: string;
  /** Generated file contents by output name (`a/b.ts`). */
  readonly files: Map<string, string>;
  /** Imports a generated module by output name. */
  load<T = Record<string, unknown>>(name: string): Promise<T>;
}

/**
 * Generates every file of `sources` (import name -> .proto text) into a fresh directory under
 * .tmp/codegen-tests/ and returns it.
 */
export function generateSources(sources: Record<string, string>, options: { int64?: Int64Mode; only?: string[] } = {}): Generated {
  const names = options.only ?? Object.keys(sources);
  const models = loadProtoFiles(names, { sources, includeDirs: [] });
  const dir = testWorkDir("gen");
  const files = new Map<string, string>();
  for (const m of models) {
    const out = emitFile(m, { int64: options.int64 ?? "bigint" });
    files.set(out.name, out.content);
    const path = join(dir, out.name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, out.content);
  }
  return {
    dir,
    files,
    load: async <T>(name: string) => (await import(pathToFileURL(join(dir, name)).href)) as T,
  };
}

/**
 * Typechecks `consumer.ts` in `dir` (a testWorkDir) under strict settings as a user's project
 * would, resolving "meridian-rpc/..." to the sources; returns tsc's output and exit status.
 */
export function typecheckConsumer(dir: string, compilerOptions: Record<string, unknown> = {}): { output: string; status: number | null } {
  const tsconfig = {
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      customConditions: ["meridian-source"],
      strict: true,
      noEmit: true,
      types: ["node"],
      lib: ["ES2022"],
      typeRoots: [join(REPO_ROOT, "node_modules", "@types")],
      ...compilerOptions,
    },
    files: ["consumer.ts"],
  };
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
  const tsc = join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
  const run = spawnSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], { encoding: "utf8", timeout: 120_000 });
  return { output: run.stdout + run.stderr, status: run.status };
}
