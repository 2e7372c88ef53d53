import type { EmitContext } from "./context.js";
import { declDoc } from "./message.js";
import { resolvedMessage, type ServiceModel } from "../idl/model.js";
import { softObject, typed } from "./printer.js";

/**
 * Emits a service descriptor constant: the fully qualified name and, keyed by lowerCamelCase
 * method name, each method's wire name, streaming kind, input/output codecs and idempotency
 * level, checked against the runtime's ServiceDescriptor type (ts); the same object without the
 * check (js); or its type, as TypeScript infers it from the `as const` object (dts).
 */
export function emitService(ctx: EmitContext, s: ServiceModel): void {
  const { f } = ctx;
  const decl = !ctx.code;
  // In a declaration, the same object as a type: `readonly` members, `typeof` the codecs.
  const member = (name: string, value: string): string => (decl ? `readonly ${name}: ${value}` : `${name}: ${value}`);
  const end = decl ? ";" : ",";
  f.jsDoc(declDoc(s.comment, s.deprecated));
  f.print(decl ? `export declare const ${s.tsName}: {` : `export const ${s.tsName} = {`);
  f.indented(() => {
    f.print(member("typeName", `"${s.fullName}"`), end);
    if (s.methods.length === 0) {
      f.print(member("methods", "{}"), end);
      return;
    }
    f.print(member("methods", "{"));
    f.indented(() => {
      for (const m of s.methods) {
        f.jsDoc(declDoc(m.comment, m.deprecated));
        const codec = (t: typeof m.input) => (decl ? ["typeof ", ctx.message(resolvedMessage(t)).codec] : ctx.message(resolvedMessage(t)).codec);
        const entry = softObject([
          member("name", `"${m.name}"`),
          member("kind", `"${m.kind}"`),
          [member("input", ""), codec(m.input)],
          [member("output", ""), codec(m.output)],
          member("idempotency", `"${m.idempotency}"`),
        ]);
        f.print(member(m.localName, ""), entry, end);
      }
    });
    f.print("}", end);
  });
  if (decl) f.print("};");
  else f.print("}", typed(" as const satisfies ", ctx.rtType("ServiceDescriptor")), ";");
}
