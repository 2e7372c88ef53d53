import type { EmitContext } from "./context.js";
import { declDoc } from "./emit-message.js";
import type { EnumModel } from "./model.js";

/** Emits a TypeScript `enum` with the .proto value names and numbers (aliases included). */
export function emitEnum(ctx: EmitContext, e: EnumModel): void {
  const { f } = ctx;
  f.jsDoc(declDoc(e.comment, e.deprecated));
  f.print(`export enum ${e.tsName} {`);
  f.indented(() => {
    for (const v of e.values) {
      f.jsDoc(declDoc(v.comment, v.deprecated));
      f.print(`${v.localName} = ${v.number},`);
    }
  });
  f.print("}");
}
