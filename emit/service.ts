import type { EmitContext } from "./context.js";
import { declDoc } from "./emit-message.js";
import { resolvedMessage, type ServiceModel } from "./model.js";
import { softObject } from "./printer.js";

/**
 * Emits a service descriptor constant: the fully qualified name and, keyed by lowerCamelCase
 * method name, each method's wire name, streaming kind, input/output codecs and idempotency
 * level, checked against the runtime's ServiceDescriptor type.
 */
export function emitService(ctx: EmitContext, s: ServiceModel): void {
  const { f } = ctx;
  f.jsDoc(declDoc(s.comment, s.deprecated));
  f.print(`export const ${s.tsName} = {`);
  f.indented(() => {
    f.print(`typeName: "${s.fullName}",`);
    if (s.methods.length === 0) {
      f.print("methods: {},");
      return;
    }
    f.print("methods: {");
    f.indented(() => {
      for (const m of s.methods) {
        f.jsDoc(declDoc(m.comment, m.deprecated));
        const entry = softObject([
          `name: "${m.name}"`,
          `kind: "${m.kind}"`,
          ["input: ", ctx.message(resolvedMessage(m.input)).codec],
          ["output: ", ctx.message(resolvedMessage(m.output)).codec],
          `idempotency: "${m.idempotency}"`,
        ]);
        f.print(`${m.localName}: `, entry, ",");
      }
    });
    f.print("},");
  });
  f.print`} as const satisfies ${ctx.rtType("ServiceDescriptor")};`;
}
