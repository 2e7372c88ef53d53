import { IdlError } from "../../idl/errors.js";
import type { ThriftFunction, ThriftService } from "../../idl/thrift/ast.js";
import { checkPropertyName, propertyKey, qualifiedName, type ThriftFileContext } from "./context.js";
import { defaultsObject, printFieldProperties, printSchema, schemaFields, type SchemaField } from "./struct.js";
import { tsType } from "./values.js";

const IDEMPOTENCY = ["IDEMPOTENCY_UNKNOWN", "NO_SIDE_EFFECTS", "IDEMPOTENT"];

/** The annotation that gives a function an idempotency level (Thrift has none of its own). */
export const IDEMPOTENCY_ANNOTATION = "meridian.idempotency";

/**
 * Emits a service: an interface of each function's arguments (`<Service>_<fn>_args`, every
 * field optional: arguments are never required on the wire), then the descriptor,
 * `thriftService("<file>.<Service>", { ...Base.methods, fn: thriftMethod<Args, Returns>({...}) })`,
 * keyed by the functions' IDL names, the base service's functions first. Each method carries its
 * `<fn>_args` and `<fn>_result` schemas, and when they apply `oneway`, the declared exceptions
 * (`throws`, by result field and class), the idempotency level of a
 * `(meridian.idempotency = "...")` annotation, and the arguments' default values.
 */
export function emitThriftService(ctx: ThriftFileContext, s: ThriftService): void {
  const { f } = ctx;
  const name = ctx.nameOf({ def: s, file: ctx.file });
  const self = { def: s, file: ctx.file };
  for (const fn of s.functions) {
    checkPropertyName(fn.name, fn.loc, ctx.file, `service ${s.name}: function ${fn.name}`);
    for (const p of fn.params) checkPropertyName(p.name, p.loc, ctx.file, `${s.name}.${fn.name}: argument ${p.name}`);
    const args = ctx.names.args.get(fn)!;
    f.jsDoc(`The arguments of {@link ${name}}.${fn.name}.`);
    if (fn.params.length === 0) f.print(`export interface ${args} {}`);
    else f.block(`export interface ${args} {`, () => printFieldProperties(ctx, fn.params, () => true));
    f.print();
  }
  f.jsDoc(s.doc);
  f.print(`export const ${name} = `, ctx.rt("thriftService"), `("${qualifiedName(s.name, ctx.file)}", {`);
  f.indented(() => {
    if (s.extends !== undefined) f.print("...", ctx.ref(ctx.program.service(s.extends, ctx.file, s.extendsLoc), "value"), ".methods,");
    for (const fn of s.functions) {
      f.jsDoc(fn.doc);
      const returns = fn.returns === undefined ? "void" : tsType(ctx, fn.returns, ctx.file);
      f.print(propertyKey(fn.name), ": ", ctx.rt("thriftMethod"), "<", ctx.argsRef(self, fn), ", ", returns, ">({");
      f.indented(() => emitMethodSpec(ctx, s, fn));
      f.print("}),");
    }
  });
  f.print("});");
}

/** The members of one function's `thriftMethod({...})`. */
function emitMethodSpec(ctx: ThriftFileContext, s: ThriftService, fn: ThriftFunction): void {
  const { f } = ctx;
  f.print(`name: ${JSON.stringify(fn.name)},`);
  printSchema(ctx, { name: `${s.name}.${fn.name}_args`, kind: "struct", fields: schemaFields(ctx, fn.params, ctx.file, true) }, "args: ", ",");
  const result: SchemaField[] = schemaFields(ctx, fn.throws, ctx.file, true);
  if (fn.returns !== undefined) result.unshift({ id: 0, name: "success", type: ctx.program.resolve(fn.returns, ctx.file), requiredness: "optional" });
  printSchema(ctx, { name: `${s.name}.${fn.name}_result`, kind: "struct", fields: result }, "result: ", ",");
  if (fn.oneway) f.print("oneway: true,");
  if (fn.throws.length > 0) {
    const items = fn.throws.map((t) => {
      const type = ctx.program.resolve(t.type, ctx.file);
      if (type.kind !== "struct") throw new Error(`internal: ${s.name}.${fn.name} throws a ${type.kind}`);
      return ["{ field: ", JSON.stringify(t.name), ", type: ", ctx.ref({ def: type.def, file: type.file }, "value"), " }"];
    });
    f.print("throws: [", ...items.flatMap((item, i) => (i === 0 ? [item] : [", ", item])), "],");
  }
  const level = fn.annotations[IDEMPOTENCY_ANNOTATION];
  if (level !== undefined && !IDEMPOTENCY.includes(level)) {
    throw IdlError.at(fn.loc, ctx.file, `${s.name}.${fn.name}: ${IDEMPOTENCY_ANNOTATION} must be ${IDEMPOTENCY.join(", ")}, not "${level}"`);
  }
  if (level !== undefined && level !== "IDEMPOTENCY_UNKNOWN") f.print(`idempotency: "${level}",`);
  const defaults = defaultsObject(ctx, fn.params);
  if (defaults !== undefined) f.print("argDefaults: () => (", defaults, "),");
}
