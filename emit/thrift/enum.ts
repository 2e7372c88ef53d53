import type { ThriftEnum } from "../../idl/thrift/ast.js";
import { checkPropertyName, propertyKey, type ThriftFileContext } from "./context.js";

/**
 * Emits a Thrift enum as a constant object of its values (numbers at run time, as the codec
 * reads and writes them) and the union of those numbers as its type:
 * `export const Color = { RED: 1 } as const; export type Color = (typeof Color)[keyof typeof Color];`.
 */
export function emitThriftEnum(ctx: ThriftFileContext, e: ThriftEnum): void {
  const { f } = ctx;
  const name = ctx.nameOf({ def: e, file: ctx.file });
  f.jsDoc(e.doc);
  if (e.values.length === 0) {
    f.print(`export const ${name} = {} as const;`);
    f.print(`export type ${name} = never;`);
    return;
  }
  f.block(`export const ${name} = {`, () => {
    for (const v of e.values) {
      checkPropertyName(v.name, v.loc, ctx.file, `enum ${e.name}: value ${v.name}`);
      f.jsDoc(v.doc);
      f.print(`${propertyKey(v.name)}: ${v.value},`);
    }
  }, "} as const;");
  f.print(`export type ${name} = (typeof ${name})[keyof typeof ${name}];`);
}
