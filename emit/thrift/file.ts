import { IdlError } from "../../idl/errors.js";
import type { ThriftConst, ThriftDefinition, ThriftTypedef } from "../../idl/thrift/ast.js";
import type { ThriftProgram } from "../../idl/thrift/link.js";
import { printPreamble, type GeneratedOutput } from "../file.js";
import { ThriftFileContext, ThriftFileNames, type Located, type ThriftEmitOptions } from "./context.js";
import { emitThriftEnum } from "./enum.js";
import { emitThriftService } from "./service.js";
import { emitThriftException, emitThriftStruct } from "./struct.js";
import { constValue, tsType, valueDependencies } from "./values.js";

/**
 * Generates the TypeScript module of every file of a linked Thrift program (the files asked
 * for and every file they include), named after it (`foo/bar.thrift` -> `foo/bar.ts`). Throws
 * IdlError for what the IDL allows and generated code cannot express (a field named
 * `__proto__`, an exception field named `name`, constants that refer to each other, ...).
 */
export function emitThriftProgram(program: ThriftProgram, options: ThriftEmitOptions = {}): GeneratedOutput[] {
  const names = new Map<string, ThriftFileNames>();
  const namesOf = (file: string): ThriftFileNames => {
    let n = names.get(file);
    if (n === undefined) names.set(file, (n = new ThriftFileNames(program.documents.get(file)!.definitions)));
    return n;
  };
  return [...program.documents.keys()].map((file) => emitThriftFile(new ThriftFileContext(program, file, namesOf, options)));
}

/**
 * Generates the module of one .thrift file: its definitions in declaration order, except that a
 * definition another needs while the module loads comes first (an enum or constant a constant's
 * value names, the base service and exception classes a service descriptor holds); everything
 * else refers to structs through thunks, so their order does not matter.
 */
export function emitThriftFile(ctx: ThriftFileContext): GeneratedOutput {
  const { f, file } = ctx;
  const doc = ctx.program.documents.get(file)!;
  printPreamble(f, file, doc.doc);
  const done = new Set<ThriftDefinition>();
  const visiting: ThriftDefinition[] = [];
  const visit = (def: ThriftDefinition): void => {
    if (done.has(def)) return;
    if (visiting.includes(def)) {
      const cycle = [...visiting.slice(visiting.indexOf(def)), def].map((d) => d.name).join(" -> ");
      throw IdlError.at(def.loc, file, `${def.name} refers to itself through ${cycle}: a constant cannot be defined by its own value`);
    }
    visiting.push(def);
    for (const dep of loadTimeDependencies(ctx, def)) visit(dep.def);
    visiting.pop();
    done.add(def);
    if (done.size > 1) f.print();
    emitDefinition(ctx, def);
  };
  for (const def of doc.definitions) visit(def);
  return { name: f.name, content: f.render() };
}

/** The definitions of this file that `def`'s declaration uses while the module loads. */
function loadTimeDependencies(ctx: ThriftFileContext, def: ThriftDefinition): Located[] {
  switch (def.kind) {
    case "const":
      return valueDependencies(ctx, def.value, ctx.program.resolve(def.type, ctx.file), ctx.file);
    case "service": {
      const out: Located[] = [];
      if (def.extends !== undefined) out.push(ctx.program.service(def.extends, ctx.file, def.extendsLoc));
      for (const fn of def.functions) {
        for (const t of fn.throws) {
          const type = ctx.program.resolve(t.type, ctx.file);
          if (type.kind === "struct") out.push({ def: type.def, file: type.file });
        }
      }
      return out.filter((d) => d.file === ctx.file);
    }
    default:
      return [];
  }
}

function emitDefinition(ctx: ThriftFileContext, def: ThriftDefinition): void {
  switch (def.kind) {
    case "enum":
      return emitThriftEnum(ctx, def);
    case "typedef":
      return emitTypedef(ctx, def);
    case "const":
      return emitConst(ctx, def);
    case "struct":
    case "union":
      return emitThriftStruct(ctx, def);
    case "exception":
      return emitThriftException(ctx, def);
    case "service":
      return emitThriftService(ctx, def);
  }
}

/** `export type Millis = bigint;`: the type as written (another typedef keeps its name). */
function emitTypedef(ctx: ThriftFileContext, t: ThriftTypedef): void {
  ctx.f.jsDoc(t.doc);
  ctx.f.print(`export type ${ctx.nameOf({ def: t, file: ctx.file })} = `, tsType(ctx, t.type, ctx.file), ";");
}

/**
 * `export const LIMIT = 7;`: a base type's constant has its literal's type; any other is
 * annotated with its declared type (`export const TAGS: string[] = ["a"];`).
 */
function emitConst(ctx: ThriftFileContext, c: ThriftConst): void {
  const name = ctx.nameOf({ def: c, file: ctx.file });
  const value = constValue(ctx, c.value, ctx.program.resolve(c.type, ctx.file), ctx.file);
  ctx.f.jsDoc(c.doc);
  if (c.type.kind === "base") ctx.f.print(`export const ${name} = `, value, ";");
  else ctx.f.print(`export const ${name}: `, tsType(ctx, c.type, ctx.file), " = ", value, ";");
}
