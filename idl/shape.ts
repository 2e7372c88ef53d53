import { resolved, type FieldModel, type MessageModel, type OneofModel, type ScalarType } from "./model.js";

/**
 * How a message's fields are laid out for code: what both the generator's emitters
 * (emit-message.ts) and the run-time compiler of the generic codec (runtime/generic/compile.ts)
 * derive from the model, so the two produce the same code.
 */

/** A field outside any oneof, or a oneof (once, at the position of its first field). */
export type Member = { readonly kind: "field"; readonly field: FieldModel } | { readonly kind: "oneof"; readonly oneof: OneofModel };

/** The members of a message in declaration order. */
export function members(msg: MessageModel): Member[] {
  const out: Member[] = [];
  const seen = new Set<OneofModel>();
  for (const field of msg.fields) {
    if (field.oneof === undefined) out.push({ kind: "field", field });
    else if (!seen.has(field.oneof)) {
      seen.add(field.oneof);
      out.push({ kind: "oneof", oneof: field.oneof });
    }
  }
  return out;
}

/** The fields of a message in field-number order (the canonical encoding order). */
export function byNumber(msg: MessageModel): FieldModel[] {
  return [...msg.fields].sort((a, b) => a.number - b.number);
}

/** Whether a field's value type is a message (map values included). */
export function isMessageField(f: FieldModel): boolean {
  return resolved(f.type).kind === "message";
}

/** The statement that keeps the unknown field read from `at` to `r.pos`. */
export const PUSH_UNKNOWN = "(m.$unknown ??= []).push(r.buf.subarray(at, r.pos));";

/** Presence bookkeeping of proto2 required fields: a bit per field in `has` variables of 31 bits. */
export interface Required {
  readonly bits: Map<FieldModel, { readonly v: string; readonly bit: number }>;
  readonly vars: readonly { readonly name: string; readonly all: number }[];
}

/** The required-field bits of a message (none for messages without required fields). */
export function requiredOf(msg: MessageModel): Required {
  const req = byNumber(msg).filter((fl) => fl.presence === "required");
  const bits = new Map<FieldModel, { v: string; bit: number }>();
  const vars: { name: string; all: number }[] = [];
  req.forEach((fl, i) => {
    const vi = Math.floor(i / 31);
    const name = req.length <= 31 ? "has" : `has${vi}`;
    if (vars[vi] === undefined) vars[vi] = { name, all: 0 };
    const bit = 2 ** (i % 31);
    vars[vi]!.all += bit;
    bits.set(fl, { v: name, bit });
  });
  return { bits, vars };
}

/** The statement writing a map entry's key (held as a string in `key`) as type `k`. */
export function mapKeyWrite(k: ScalarType): string {
  switch (k) {
    case "string":
      return "w.string(key)";
    case "bool":
      return 'w.bool(key === "true")';
    case "int64":
    case "uint64":
    case "sint64":
    case "fixed64":
    case "sfixed64":
      return `w.${k}(BigInt(key))`;
    default:
      return `w.${k}(Number(key))`;
  }
}

/** A map entry's key: its initial (absent) value and the expression reading it, as strings. */
export function mapKeyRead(k: ScalarType, utf8: "strict" | "lenient"): { init: string; read: string } {
  switch (k) {
    case "string":
      return { init: '""', read: utf8 === "strict" ? "r.string()" : "r.stringLenient()" };
    case "bool":
      return { init: '"false"', read: "String(r.bool())" };
    default:
      return { init: '"0"', read: `String(r.${k}())` };
  }
}
