import { resolved, type FieldModel, type MessageModel, type OneofModel } from "./model.js";

/**
 * A message's layout, as every consumer of the model sees it: its members (a oneof once, where
 * its first field is declared), the canonical (field-number) order, which fields hold messages,
 * and the presence bits of proto2 required fields. The emitter (emit/) lays out code by it for
 * every target.
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
