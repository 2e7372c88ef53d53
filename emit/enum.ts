import type { EmitContext } from "./context.js";
import { declDoc } from "./message.js";
import type { EnumModel } from "../idl/model.js";

/**
 * Emits an enum with the .proto value names and numbers (aliases included): a TypeScript `enum`
 * (ts), its declaration (dts), or the object TypeScript compiles it to (js): each name maps to
 * its number and each number back to its last name.
 */
export function emitEnum(ctx: EmitContext, e: EnumModel): void {
  const { f } = ctx;
  f.jsDoc(declDoc(e.comment, e.deprecated));
  if (ctx.types) {
    f.print(`export ${ctx.code ? "" : "declare "}enum ${e.tsName} {`);
    f.indented(() => {
      for (const v of e.values) {
        f.jsDoc(declDoc(v.comment, v.deprecated));
        f.print(`${v.localName} = ${v.number},`);
      }
    });
    f.print("}");
    return;
  }
  const names = new Map<number, string>();
  for (const v of e.values) names.set(v.number, v.localName);
  f.print(`export const ${e.tsName} = {`);
  f.indented(() => {
    for (const v of e.values) {
      f.jsDoc(declDoc(v.comment, v.deprecated));
      f.print(`${v.localName}: ${v.number},`);
    }
    for (const [n, name] of names) f.print(`${n < 0 ? JSON.stringify(String(n)) : n}: ${JSON.stringify(name)},`);
  });
  f.print("};");
}
