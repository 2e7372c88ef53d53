import type { EmitContext, MessageRef } from "./context.js";
import { resolved, type FieldModel, type MessageModel, type OneofModel } from "../idl/model.js";
import { softUnion, typed, type Printable } from "./printer.js";
import { byNumber, isMessageField, members, requiredOf, type Required } from "../idl/shape.js";
import { WIRE_END_GROUP, WIRE_LEN, WIRE_START_GROUP, scalarWire, tagOf } from "../idl/wire.js";
import {
  PUSH_UNKNOWN,
  defaultDoc,
  defaultLiteral,
  enumKnown,
  mapKeyRead,
  mapKeyWrite,
  valueCodecOf,
  type ValueCodec,
} from "./values.js";

/**
 * Emits one message: its interface, its view interface, the private create/write/read/fieldName
 * functions, the view class and the codec constant of the same name as the interface. The shape
 * is the hand-tuned one of bench/codec/gen/feed.ts: one switch on the whole tag, fields written
 * in number order, unknown fields kept raw and re-emitted last.
 *
 * The layout is written once for every target: TypeScript prints all of it, JavaScript (and a
 * run-time unit) the code without its typed() parts, declarations (dts) the interfaces and the
 * codec constant's type.
 */
export function emitMessage(ctx: EmitContext, msg: MessageModel): void {
  const { f } = ctx;
  if (ctx.types) {
    emitInterface(ctx, msg);
    f.print();
    emitViewInterface(ctx, msg);
    f.print();
  }
  if (!ctx.code) {
    const t = msg.tsName;
    f.print`export declare const ${t}: ${ctx.rtType("MessageCodec")}<${t}, ${msg.viewName}>;`;
    return;
  }
  if (usesEmptyBytes(msg) && !ctx.emptyBytesDeclared) {
    f.print`const ${ctx.declareEmptyBytes()} = new Uint8Array(0);`;
    f.print();
  }
  emitCreate(ctx, msg);
  f.print();
  emitWrite(ctx, msg);
  f.print();
  emitRead(ctx, msg);
  f.print();
  if (msg.fields.length > 0) {
    emitFieldName(ctx, msg);
    f.print();
  }
  emitViewClass(ctx, msg);
  f.print();
  emitCodec(ctx, msg);
}

function messageOf(ctx: EmitContext, f: FieldModel): MessageRef {
  const t = resolved(f.type);
  if (t.kind !== "message") throw new Error(`internal: ${f.name} is not a message field`);
  return ctx.message(t.message);
}

function codecOf(ctx: EmitContext, f: FieldModel): ValueCodec {
  const c = valueCodecOf(ctx, f);
  if (c === undefined) throw new Error(`internal: ${f.name} is a message field`);
  return c;
}

/** Whether the message's code uses the shared empty byte array (see emitMessage). */
function usesEmptyBytes(msg: MessageModel): boolean {
  return msg.fields.some((f) => {
    const t = resolved(f.type);
    const bytes = t.kind === "scalar" && t.scalar === "bytes";
    if (f.cardinality === "map") return bytes || t.kind === "message";
    if (f.cardinality !== "singular" || !bytes || f.oneof !== undefined) return false;
    if (f.presence !== "explicit") return true;
    return f.default instanceof Uint8Array && f.default.length === 0;
  });
}

function fieldDoc(ctx: EmitContext, f: FieldModel): string | undefined {
  const lines: string[] = [];
  const c = normalizeComment(f.comment);
  if (c !== undefined) lines.push(c);
  if (f.default !== undefined) lines.push(`@defaultValue ${defaultDoc(ctx, f, f.default)}`);
  if (f.deprecated) lines.push("@deprecated");
  return lines.length === 0 ? undefined : lines.join("\n");
}

/**
 * A .proto comment as JSDoc text: markers gone, one common leading space removed, blank lines
 * at the ends dropped. Undefined when nothing is left.
 */
export function normalizeComment(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let lines = raw.replace(/\n$/, "").split("\n");
  if (lines.length > 0 && lines[0]!.startsWith("*") && !lines[0]!.startsWith("*/")) lines[0] = lines[0]!.slice(1);
  lines = lines.map((l) => l.replace(/\s+$/, ""));
  if (lines.every((l) => l === "" || l.startsWith(" "))) lines = lines.map((l) => l.slice(1));
  while (lines.length > 0 && lines[0] === "") lines.shift();
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.length === 0 ? undefined : lines.join("\n");
}

/** A declaration's JSDoc: its comment, then `@deprecated`. */
export function declDoc(comment: string | undefined, deprecated: boolean): string | undefined {
  const lines: string[] = [];
  const c = normalizeComment(comment);
  if (c !== undefined) lines.push(c);
  if (deprecated) lines.push("@deprecated");
  return lines.length === 0 ? undefined : lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Types.

/** The eager TypeScript type of a field's value (element type for repeated, value for maps). */
function valueType(ctx: EmitContext, f: FieldModel): Printable {
  if (isMessageField(f)) return messageOf(ctx, f).type;
  return codecOf(ctx, f).ts;
}

/** The view type of a field's value: views for messages, eager messages for groups. */
function viewValueType(ctx: EmitContext, f: FieldModel): Printable {
  if (isMessageField(f)) return f.delimited ? messageOf(ctx, f).type : messageOf(ctx, f).view;
  return codecOf(ctx, f).ts;
}

function containerType(f: FieldModel, value: Printable): Printable {
  if (f.cardinality === "map") return ["{ [key: string]: ", value, " }"];
  if (f.cardinality === "repeated") return [value, "[]"];
  return value;
}

function oneofType(ctx: EmitContext, o: OneofModel, view: boolean): Printable {
  const items: Printable[] = o.fields.map((m) => [
    `{ case: "${m.localName}"; value: `,
    view ? viewValueType(ctx, m) : valueType(ctx, m),
    " }",
  ]);
  items.push("undefined");
  return softUnion(items);
}

function oneofDoc(o: OneofModel): string | undefined {
  const lines: string[] = [];
  const c = normalizeComment(o.comment);
  if (c !== undefined) lines.push(c);
  const memberDocs = o.fields
    .map((m) => [m.localName, normalizeComment(m.comment)] as const)
    .filter((x): x is readonly [string, string] => x[1] !== undefined);
  if (memberDocs.length > 0) {
    if (lines.length > 0) lines.push("");
    for (const [name, doc] of memberDocs) lines.push(`- \`${name}\`: ${doc.split("\n").join("\n  ")}`);
  }
  return lines.length === 0 ? undefined : lines.join("\n");
}

function emitInterface(ctx: EmitContext, msg: MessageModel): void {
  const { f } = ctx;
  f.jsDoc(declDoc(msg.comment, msg.deprecated));
  f.print(`export interface ${msg.tsName} {`);
  f.indented(() => {
    for (const mem of members(msg)) {
      if (mem.kind === "oneof") {
        f.jsDoc(oneofDoc(mem.oneof));
        f.print(`${mem.oneof.localName}?: `, oneofType(ctx, mem.oneof, false), ";");
        continue;
      }
      const fl = mem.field;
      f.jsDoc(fieldDoc(ctx, fl));
      const optional = fl.cardinality === "singular" && (fl.presence === "explicit" || isMessageField(fl));
      f.print(`${fl.localName}${optional ? "?" : ""}: `, containerType(fl, valueType(ctx, fl)), ";");
    }
    f.print`$unknown?: ${ctx.rtType("UnknownFields")};`;
  });
  f.print("}");
}

/** The type a view getter returns for a field outside a oneof. */
function viewFieldType(ctx: EmitContext, fl: FieldModel): Printable {
  const value = viewValueType(ctx, fl);
  if (fl.cardinality !== "singular") return containerType(fl, value);
  if (isMessageField(fl)) return [value, " | undefined"];
  if (fl.presence === "explicit" && fl.default === undefined) return [value, " | undefined"];
  return value;
}

function emitViewInterface(ctx: EmitContext, msg: MessageModel): void {
  const { f } = ctx;
  f.print(`/** A lazy view of {@link ${msg.tsName}}. */`);
  const list = members(msg);
  if (list.length === 0) {
    f.print(`export interface ${msg.viewName} {}`);
    return;
  }
  f.print(`export interface ${msg.viewName} {`);
  f.indented(() => {
    for (const mem of list) {
      if (mem.kind === "oneof") {
        f.jsDoc(oneofDoc(mem.oneof));
        f.print(`readonly ${mem.oneof.localName}: `, oneofType(ctx, mem.oneof, true), ";");
      } else {
        f.jsDoc(fieldDoc(ctx, mem.field));
        f.print(`readonly ${mem.field.localName}: `, viewFieldType(ctx, mem.field), ";");
      }
    }
  });
  f.print("}");
}

// ---------------------------------------------------------------------------------------------
// create

/** The value create() gives a field outside a oneof. */
function initialValue(ctx: EmitContext, fl: FieldModel): Printable {
  if (fl.cardinality === "repeated") return "[]";
  if (fl.cardinality === "map") return "{}";
  if (isMessageField(fl) || fl.presence === "explicit") return "undefined";
  if (fl.default !== undefined) return defaultLiteral(ctx, fl, fl.default);
  return codecOf(ctx, fl).zero;
}

/**
 * The message's default object: made by `new` of a record constructor rather than returned as an
 * object literal, so that V8 never decides to make them all in the old generation (see
 * runtime/codec/record.ts).
 */
function emitCreate(ctx: EmitContext, msg: MessageModel): void {
  const { f } = ctx;
  const names = ctx.localNames(msg);
  const head: Printable[] = [`const ${names.record} = `, ctx.rt("messageRecord"), typed(`<${msg.tsName}>`), "(function (", typed(`this: ${msg.tsName}`), ") {"];
  const fields = members(msg);
  if (fields.length === 0) f.print(...head, "});");
  else {
    f.print(...head);
    f.indented(() => {
      for (const mem of fields) {
        if (mem.kind === "oneof") f.print(`this.${mem.oneof.localName} = undefined;`);
        else f.print(`this.${mem.field.localName} = `, initialValue(ctx, mem.field), ";");
      }
    });
    f.print("});");
  }
  f.print();
  f.print(`function ${names.create}()`, typed(`: ${msg.tsName}`), " {");
  f.indented(() => f.print(`return new ${names.record}();`));
  f.print("}");
}

// ---------------------------------------------------------------------------------------------
// write

function writeMessageCall(ctx: EmitContext, fl: FieldModel, value: Printable): Printable {
  const ref = messageOf(ctx, fl);
  return ref.local !== undefined ? [`${ref.local.write}(`, value, ", w)"] : [ref.codec, ".$write(", value, ", w)"];
}

/**
 * The statement writing a field's tag, known when generating: a one- or two-byte tag (field
 * numbers up to 2047) takes the writer's small unchecked methods, larger ones the varint. An
 * unchecked tag relies on the room the writer's previous checked write left (Writer's SLACK),
 * so every one of them is followed by a checked write (the value, or the length's `fork`).
 * A group's tags are checked (`uint32`): an empty group would put its two tags and the next
 * field's in a row, and empty groups can nest.
 */
function writeTag(tag: number): string {
  if (tag < 0x80) return `w.tag(${tag});`;
  if (tag < 0x4000) return `w.tag2(${tag});`;
  return `w.uint32(${tag});`;
}

/** Statements writing one value of `fl` (tag included), for a value known to be present. */
function writeValue(ctx: EmitContext, fl: FieldModel, value: Printable): void {
  const { f } = ctx;
  if (isMessageField(fl)) {
    if (fl.delimited) {
      f.print`w.uint32(${tagOf(fl.number, WIRE_START_GROUP)});`;
      f.print(writeMessageCall(ctx, fl, value), ";");
      f.print`w.uint32(${tagOf(fl.number, WIRE_END_GROUP)});`;
    } else {
      f.print(writeTag(tagOf(fl.number, WIRE_LEN)));
      f.print("const k = w.fork();");
      f.print(writeMessageCall(ctx, fl, value), ";");
      f.print("w.join(k);");
    }
    return;
  }
  const c = codecOf(ctx, fl);
  f.print(writeTag(tagOf(fl.number, c.wire)));
  f.print(c.write(value), ";");
}

function emitWriteField(ctx: EmitContext, fl: FieldModel): void {
  const { f } = ctx;
  const acc = `m.${fl.localName}`;
  if (fl.cardinality === "map") {
    f.print(`for (const key of Object.keys(${acc})) {`);
    f.indented(() => {
      const key = fl.mapKey!;
      f.print(writeTag(tagOf(fl.number, WIRE_LEN)));
      f.print("const k = w.fork();");
      f.print(writeTag(tagOf(1, scalarWire(key))));
      f.print(mapKeyWrite(key), ";");
      const value: Printable = [acc, "[key]", typed("!")];
      if (isMessageField(fl)) {
        f.print(writeTag(tagOf(2, WIRE_LEN)));
        f.print("const k2 = w.fork();");
        f.print(writeMessageCall(ctx, fl, value), ";");
        f.print("w.join(k2);");
      } else {
        const c = codecOf(ctx, fl);
        f.print(writeTag(tagOf(2, c.wire)));
        f.print(c.write(value), ";");
      }
      f.print("w.join(k);");
    });
    f.print("}");
    return;
  }
  if (fl.cardinality === "repeated") {
    const c = isMessageField(fl) ? undefined : codecOf(ctx, fl);
    if (c !== undefined && fl.packed && c.packable) {
      f.print(`if (${acc}.length > 0) {`);
      f.indented(() => {
        f.print(writeTag(tagOf(fl.number, WIRE_LEN)));
        if (c.packed !== undefined) {
          f.print(c.packed.write(acc), ";");
          return;
        }
        f.print("const k = w.fork();");
        f.print(`for (const v of ${acc}) `, c.write("v"), ";");
        f.print("w.join(k);");
      });
      f.print("}");
      return;
    }
    if (isMessageField(fl) && !fl.delimited) {
      // Each element reserves what the previous one's length took: no shift per element in a
      // list of messages of 128 bytes or more.
      f.print(`for (let i = 0, lengthSize = 1; i < ${acc}.length; i++) {`);
      f.indented(() => {
        f.print(writeTag(tagOf(fl.number, WIRE_LEN)));
        f.print("const k = w.forkSized(lengthSize);");
        f.print(writeMessageCall(ctx, fl, [acc, "[i]", typed("!")]), ";");
        f.print("lengthSize = w.joinSized(k, lengthSize);");
      });
      f.print("}");
      return;
    }
    f.print(`for (const v of ${acc}) {`);
    f.indented(() => writeValue(ctx, fl, "v"));
    f.print("}");
    return;
  }
  if (fl.presence === "required" && !isMessageField(fl)) {
    writeValue(ctx, fl, acc);
    return;
  }
  const cond: Printable =
    isMessageField(fl) || fl.presence !== "implicit" ? `${acc} !== undefined` : codecOf(ctx, fl).nonZero(acc);
  f.print("if (", cond, ") {");
  f.indented(() => writeValue(ctx, fl, acc));
  f.print("}");
}

function emitWriteOneofRun(ctx: EmitContext, o: OneofModel, run: readonly FieldModel[]): void {
  const { f } = ctx;
  const acc = `m.${o.localName}`;
  f.print(`switch (${acc}?.case) {`);
  f.indented(() => {
    for (const fl of run) {
      const braces = isMessageField(fl) && !fl.delimited;
      f.print(`case "${fl.localName}":${braces ? " {" : ""}`);
      f.indented(() => {
        writeValue(ctx, fl, `${acc}.value`);
        f.print("break;");
      });
      if (braces) f.print("}");
    }
  });
  f.print("}");
}

function emitWrite(ctx: EmitContext, msg: MessageModel): void {
  const { f } = ctx;
  const names = ctx.localNames(msg);
  f.print(`function ${names.write}(m`, typed(`: ${msg.tsName}`), ", w", typed(": ", ctx.rtType("Writer")), ")", typed(": void"), " {");
  f.indented(() => {
    const sorted = byNumber(msg);
    for (let i = 0; i < sorted.length; ) {
      const fl = sorted[i]!;
      if (fl.oneof === undefined) {
        emitWriteField(ctx, fl);
        i++;
        continue;
      }
      let j = i;
      while (j < sorted.length && sorted[j]!.oneof === fl.oneof) j++;
      emitWriteOneofRun(ctx, fl.oneof, sorted.slice(i, j));
      i = j;
    }
    f.print("if (m.$unknown !== undefined) for (const u of m.$unknown) w.raw(u);");
  });
  f.print("}");
}

// ---------------------------------------------------------------------------------------------
// read

function readMessageCall(ctx: EmitContext, fl: FieldModel, depth: string, into?: Printable, endTag?: number): Printable {
  const ref = messageOf(ctx, fl);
  let args: Printable = `r, ${depth}`;
  if (endTag !== undefined) args = [args, ", ", into ?? "undefined", `, ${endTag}`];
  else if (into !== undefined) args = [args, ", ", into];
  return ref.local !== undefined ? [`${ref.local.read}(`, args, ")"] : [ref.codec, ".$read(", args, ")"];
}

function createCall(ctx: EmitContext, fl: FieldModel): Printable {
  const ref = messageOf(ctx, fl);
  return ref.local !== undefined ? `${ref.local.create}()` : [ref.codec, ".create()"];
}

/** Statements run once a value of `fl` was read (required-field bookkeeping). */
function afterRead(req: Required, fl: FieldModel): string[] {
  const b = req.bits.get(fl);
  return b === undefined ? [] : [`${b.v} |= ${b.bit};`];
}

/**
 * Prints `if (known(v)) <stmts> else <unknown>` for a closed enum value in `v`, or just the
 * statements for an open enum/scalar.
 */
function printGuarded(ctx: EmitContext, c: ValueCodec, stmts: readonly Printable[], unknown: string): void {
  const { f } = ctx;
  if (c.closed === undefined) {
    for (const s of stmts) f.print(s);
    return;
  }
  const cond = enumKnown(c.closed, "v");
  if (stmts.length === 1) {
    f.print(`if (${cond}) `, stmts[0]!);
    f.print("else ", unknown);
    return;
  }
  f.print(`if (${cond}) {`);
  f.indented(() => {
    for (const s of stmts) f.print(s);
  });
  f.print("} else ", unknown);
}

function emitReadCase(ctx: EmitContext, fl: FieldModel, req: Required): void {
  const { f } = ctx;
  const acc = `m.${fl.localName}`;
  const after = afterRead(req, fl);
  const o = fl.oneof;
  const oacc = o === undefined ? "" : `m.${o.localName}`;

  if (fl.cardinality === "map") {
    emitReadMapCase(ctx, fl);
    return;
  }
  if (isMessageField(fl)) {
    const endTag = fl.delimited ? tagOf(fl.number, WIRE_END_GROUP) : undefined;
    const tag = fl.delimited ? tagOf(fl.number, WIRE_START_GROUP) : tagOf(fl.number, WIRE_LEN);
    let assign: Printable;
    let prev: string | undefined;
    if (fl.cardinality === "repeated") {
      assign = [`${acc}.push(`, readMessageCall(ctx, fl, "depth + 1", undefined, endTag), ");"];
    } else if (o !== undefined) {
      prev = `const prev = ${oacc}?.case === "${fl.localName}" ? ${oacc}.value : undefined;`;
      assign = [`${oacc} = { case: "${fl.localName}", value: `, readMessageCall(ctx, fl, "depth + 1", "prev", endTag), " };"];
    } else {
      assign = [`${acc} = `, readMessageCall(ctx, fl, "depth + 1", acc, endTag), ";"];
    }
    if (fl.delimited) {
      f.print(`case ${tag}:${prev === undefined ? "" : " {"}`);
      f.indented(() => {
        if (prev !== undefined) f.print(prev);
        f.print(assign);
        for (const s of after) f.print(s);
        f.print("break;");
      });
      if (prev !== undefined) f.print("}");
    } else {
      f.print(`case ${tag}: {`);
      f.indented(() => {
        if (prev !== undefined) f.print(prev);
        f.print("const saved = r.limit();");
        f.print(assign);
        f.print("r.end = saved;");
        for (const s of after) f.print(s);
        f.print("break;");
      });
      f.print("}");
    }
    return;
  }

  const c = codecOf(ctx, fl);
  const tag = tagOf(fl.number, c.wire);
  if (fl.cardinality === "repeated") {
    // Unpacked.
    if (c.closed === undefined) {
      f.print(`case ${tag}:`);
      f.indented(() => {
        f.print(`${acc}.push(`, c.read, ");");
        f.print("break;");
      });
    } else {
      f.print(`case ${tag}: {`);
      f.indented(() => {
        f.print("const v = ", c.read, ";");
        printGuarded(ctx, c, [`${acc}.push(v);`], PUSH_UNKNOWN);
        f.print("break;");
      });
      f.print("}");
    }
    if (!c.packable) return;
    // Packed: accepted whatever the declaration says.
    const packed = c.packed;
    if (packed !== undefined) {
      f.print(`case ${tagOf(fl.number, WIRE_LEN)}:`);
      f.indented(() => {
        f.print(packed.read(acc), ";");
        f.print("break;");
      });
      return;
    }
    f.print(`case ${tagOf(fl.number, WIRE_LEN)}: {`);
    f.indented(() => {
      f.print("const saved = r.limit();");
      if (c.closed === undefined) {
        f.print(`while (r.pos < r.end) ${acc}.push(`, c.read, ");");
      } else {
        f.print("while (r.pos < r.end) {");
        f.indented(() => {
          f.print("const v = ", c.read, ";");
          printGuarded(ctx, c, [`${acc}.push(v);`], `(m.$unknown ??= []).push(${ctx.unknownEnumHelper()}(${fl.number}, v));`);
        });
        f.print("}");
      }
      f.print("r.end = saved;");
      f.print("break;");
    });
    f.print("}");
    return;
  }
  const assign = (value: Printable): Printable =>
    o === undefined ? [`${acc} = `, value, ";"] : [`${oacc} = { case: "${fl.localName}", value: `, value, " };"];
  if (c.closed === undefined) {
    f.print(`case ${tag}:`);
    f.indented(() => {
      f.print(assign(c.read));
      for (const s of after) f.print(s);
      f.print("break;");
    });
    return;
  }
  f.print(`case ${tag}: {`);
  f.indented(() => {
    f.print("const v = ", c.read, ";");
    printGuarded(ctx, c, [assign("v"), ...after], PUSH_UNKNOWN);
    f.print("break;");
  });
  f.print("}");
}

/**
 * Prints the loop reading one map entry into `key`/`value` at `r` (a limited reader); `depth` is
 * the depth of the message holding the map.
 */
function printEntryLoop(ctx: EmitContext, fl: FieldModel, depth: string, view: boolean): void {
  const { f } = ctx;
  const key = mapKeyRead(fl.mapKey!, fl.utf8);
  const keyTag = tagOf(1, scalarWire(fl.mapKey!));
  f.print("let key", key.type === undefined ? "" : typed(": ", key.type), ` = ${key.init};`);
  if (isMessageField(fl)) {
    const ref = messageOf(ctx, fl);
    f.print("let value", typed(": ", view ? ref.view : ref.type, " | undefined"), ";");
  } else {
    const c = codecOf(ctx, fl);
    const t = resolved(fl.type);
    if (t.kind === "scalar" && t.scalar === "string") f.print("let value = ", c.zero, ";");
    else f.print("let value", typed(": ", c.ts), " = ", c.zero, ";");
  }
  f.print("while (r.pos < r.end) {");
  f.indented(() => {
    f.print("const t = r.tag();");
    f.print(`if (t === ${keyTag}) key = ${key.read};`);
    if (isMessageField(fl)) {
      f.print(`else if (t === ${tagOf(2, WIRE_LEN)}) {`);
      f.indented(() => {
        if (view) {
          f.print("const n = r.length();");
          f.print("value = ", messageOf(ctx, fl).codec, `.$view(r.buf, r.pos, r.pos + n, ${depth} + 2);`);
          f.print("r.pos += n;");
        } else {
          f.print("const s = r.limit();");
          f.print("value = ", readMessageCall(ctx, fl, `${depth} + 2`, "value"), ";");
          f.print("r.end = s;");
        }
      });
      f.print(`} else r.skip(t, ${depth} + 1);`);
    } else {
      const c = codecOf(ctx, fl);
      f.print(`else if (t === ${tagOf(2, c.wire)}) value = `, c.read, ";");
      f.print(`else r.skip(t, ${depth} + 1);`);
    }
  });
  f.print("}");
  f.print("r.end = saved;");
}

/**
 * The statement storing a read map entry (`key`) into `map`: a plain store for a 32-bit integer
 * key, which is never `__proto__`; `setEntry`, which guards that key, for the others.
 */
function storeEntry(ctx: EmitContext, fl: FieldModel, map: string, value: Printable): Printable {
  if (mapKeyRead(fl.mapKey!, fl.utf8).numeric) return [map, "[key] = ", value, ";"];
  return [ctx.rt("setEntry"), "(", map, ", key, ", value, ");"];
}

function emitReadMapCase(ctx: EmitContext, fl: FieldModel): void {
  const { f } = ctx;
  const acc = `m.${fl.localName}`;
  f.print(`case ${tagOf(fl.number, WIRE_LEN)}: {`);
  f.indented(() => {
    f.print("const saved = r.limit();");
    printEntryLoop(ctx, fl, "depth", false);
    if (isMessageField(fl)) {
      f.print(storeEntry(ctx, fl, acc, ["value ?? ", createCall(ctx, fl)]));
    } else {
      const c = codecOf(ctx, fl);
      if (c.closed !== undefined) {
        f.print`if (${enumKnown(c.closed, "value")}) ${storeEntry(ctx, fl, acc, "value")}`;
        f.print("else ", PUSH_UNKNOWN);
      } else {
        f.print(storeEntry(ctx, fl, acc, "value"));
      }
    }
    f.print("break;");
  });
  f.print("}");
}

function emitRequiredChecks(ctx: EmitContext, req: Required): void {
  const { f } = ctx;
  for (const v of req.vars) {
    f.print(`if (${v.name} !== ${v.all}) {`);
    f.indented(() => {
      for (const [fl, b] of req.bits) {
        if (b.v === v.name) f.print(`if ((${b.v} & ${b.bit}) === 0) r.missingRequired("${fl.localName}");`);
      }
    });
    f.print("}");
  }
}

function emitRead(ctx: EmitContext, msg: MessageModel): void {
  const { f } = ctx;
  const names = ctx.localNames(msg);
  const req = requiredOf(msg);
  const sorted = byNumber(msg);
  f.print(
    `function ${names.read}(r`,
    typed(": ", ctx.rt("Reader")),
    ", depth",
    typed(": number"),
    ", into",
    typed(`?: ${msg.tsName}`),
    ", endTag = 0)",
    typed(`: ${msg.tsName}`),
    " {",
  );
  f.indented(() => {
    f.print(`const m = into ?? ${names.create}();`);
    f.print("r.checkDepth(depth);");
    for (const v of req.vars) f.print(`let ${v.name} = into === undefined ? 0 : ${v.all};`);
    f.print("let tag = 0;");
    f.print("try {");
    f.indented(() => {
      f.print("while (r.pos < r.end) {");
      f.indented(() => {
        f.print("const at = r.pos;");
        f.print("tag = 0;");
        f.print("tag = r.tag();");
        f.print("switch (tag) {");
        f.indented(() => {
          for (const fl of sorted) emitReadCase(ctx, fl, req);
          f.print("default:");
          f.indented(() => {
            if (req.vars.length === 0) {
              f.print("if (tag === endTag) return m;");
            } else {
              f.print("if (tag === endTag) {");
              f.indented(() => {
                f.print("tag = 0;");
                emitRequiredChecks(ctx, req);
                f.print("return m;");
              });
              f.print("}");
            }
            if (sorted.length > 0) {
              f.print("switch (tag >>> 3) {");
              f.indented(() => {
                for (const fl of sorted) f.print(`case ${fl.number}:`);
                f.indented(() => f.print('r.wrongWireType(tag, "the declared type");'));
              });
              f.print("}");
            }
            f.print("(m.$unknown ??= []).push(r.unknown(tag, at, depth));");
          });
        });
        f.print("}");
      });
      f.print("}");
      // Past the loop no field is being read: errors belong to the message (or its group field).
      f.print("tag = 0;");
      f.print("if (endTag !== 0) r.truncated(`group ended by tag ${endTag}`);");
      if (req.vars.length > 0) emitRequiredChecks(ctx, req);
    });
    f.print("} catch (e) {");
    f.indented(() => {
      const fieldName = sorted.length === 0 ? "undefined" : `${names.fieldName}(tag >>> 3${needsMessageInFieldName(msg) ? ", m" : ""})`;
      f.print`if (e instanceof ${ctx.rt("DecodeError")}) e.within("${msg.fullName}", ${fieldName});`;
      f.print("throw e;");
    });
    f.print("}");
    f.print("return m;");
  });
  f.print("}");
}

function needsMessageInFieldName(msg: MessageModel): boolean {
  return msg.fields.some((fl) => fl.cardinality === "repeated");
}

function emitFieldName(ctx: EmitContext, msg: MessageModel): void {
  const { f } = ctx;
  const names = ctx.localNames(msg);
  const withM = needsMessageInFieldName(msg);
  f.print(`function ${names.fieldName}(no`, typed(": number"), withM ? [", m", typed(`: ${msg.tsName}`)] : "", ")", typed(": string | undefined"), " {");
  f.indented(() => {
    f.print("switch (no) {");
    f.indented(() => {
      for (const fl of byNumber(msg)) {
        f.print(`case ${fl.number}:`);
        f.indented(() => {
          if (fl.cardinality === "repeated") f.print(`return \`${fl.localName}[\${m.${fl.localName}.length}]\`;`);
          else f.print(`return "${fl.localName}";`);
        });
      }
    });
    f.print("}");
    f.print("return undefined;");
  });
  f.print("}");
}

// ---------------------------------------------------------------------------------------------
// view

function emitViewClass(ctx: EmitContext, msg: MessageModel): void {
  const { f } = ctx;
  const names = ctx.localNames(msg);
  const max = msg.fields.reduce((n, fl) => Math.max(n, fl.number), 0);
  f.print(`class ${names.viewImpl} extends `, ctx.rt("MessageView"), typed(` implements ${msg.viewName}`), " {");
  f.indented(() => {
    // Made here, per class, so that the stores stay monomorphic (see MessageView); through
    // Object.create rather than a constructor calling super(), which tsx's keep-names wrapping
    // of classes makes ten times slower to `new`.
    f.print(`static of(buf`, typed(": Uint8Array"), ", start", typed(": number"), ", end", typed(": number"), ", depth", typed(": number"), ")", typed(`: ${names.viewImpl}`), " {");
    f.indented(() => {
      f.print(`const v = Object.create(${names.viewImpl}.prototype)`, typed(` as ${names.viewImpl}`), ";");
      f.print("v.$s = ", ctx.rt("viewState"), "(buf, start, end, depth);");
      f.print("v.$depth = depth;");
      f.print("return v;");
    });
    f.print("}");
    f.print(typed("protected "), "get $maxField()", typed(": number"), " {");
    f.indented(() => f.print(`return ${max};`));
    f.print("}");
    for (const mem of members(msg)) {
      if (mem.kind === "oneof") emitOneofGetter(ctx, mem.oneof);
      else emitFieldGetter(ctx, mem.field);
    }
  });
  f.print("}");
}

/** The value a view getter returns for an absent singular scalar/enum field. */
function absentValue(ctx: EmitContext, fl: FieldModel): Printable {
  if (fl.default !== undefined) return defaultLiteral(ctx, fl, fl.default);
  if (fl.presence === "explicit") return "undefined";
  return codecOf(ctx, fl).zero;
}

function emitFieldGetter(ctx: EmitContext, fl: FieldModel): void {
  const { f } = ctx;
  f.print(`get ${fl.localName}()`, typed(": ", viewFieldType(ctx, fl)), " {");
  f.indented(() => {
    if (fl.cardinality === "map") emitMapGetterBody(ctx, fl);
    else if (fl.cardinality === "repeated") emitRepeatedGetterBody(ctx, fl);
    else if (isMessageField(fl)) {
      const ref = messageOf(ctx, fl);
      if (fl.delimited) {
        printGroupMerge(ctx, fl);
        f.print("return out;");
      } else {
        f.print("return this.$message", typed("<", ref.view, ">"), `(${fl.number}, ${tagOf(fl.number, WIRE_LEN)}, `, ref.codec, ");");
      }
    } else {
      const c = codecOf(ctx, fl);
      f.print(`const r = this.$field(${fl.number}, ${tagOf(fl.number, c.wire)});`);
      const absent = absentValue(ctx, fl);
      if (c.closed === undefined) {
        f.print("return r === undefined ? ", absent, " : ", c.read, ";");
      } else {
        f.print("if (r === undefined) return ", absent, ";");
        f.print("const v = ", c.read, ";");
        // An unknown value of a closed enum is an unknown field: the field reads as absent.
        f.print(`return ${enumKnown(c.closed, "v")} ? v : `, absent, ";");
      }
    }
  });
  f.print("}");
}

/**
 * Prints a view getter's eager decoding of group field `fl` into `out`: every occurrence merged,
 * as protobuf requires for a message seen more than once. With `after` (the name of a variable
 * holding a position), occurrences before it are skipped: a oneof member is merged only with the
 * occurrences since another member last cleared the oneof.
 */
function printGroupMerge(ctx: EmitContext, fl: FieldModel, after?: string): void {
  const { f } = ctx;
  f.print("let out", typed(": ", messageOf(ctx, fl).type, " | undefined"), ";");
  f.print(`this.$each(${fl.number}, (r, tag${after === undefined ? "" : ", pos"}) => {`);
  f.indented(() => {
    f.print(`if (tag !== ${tagOf(fl.number, WIRE_START_GROUP)}) r.wrongWireType(tag, "wire type 3");`);
    const read: Printable = ["out = ", readMessageCall(ctx, fl, "this.$depth + 1", "out", tagOf(fl.number, WIRE_END_GROUP)), ";"];
    if (after === undefined) f.print(read);
    else {
      f.print(`if (pos < ${after}) r.skip(tag, this.$depth);`);
      f.print("else ", read);
    }
  });
  f.print("});");
}

function emitRepeatedGetterBody(ctx: EmitContext, fl: FieldModel): void {
  const { f } = ctx;
  const elem = viewValueType(ctx, fl);
  f.print("const out", typed(": ", elem, "[]"), " = [];");
  f.print(`this.$each(${fl.number}, (r, tag) => {`);
  f.indented(() => {
    if (isMessageField(fl)) {
      const ref = messageOf(ctx, fl);
      if (fl.delimited) {
        f.print(`if (tag !== ${tagOf(fl.number, WIRE_START_GROUP)}) r.wrongWireType(tag, "wire type 3");`);
        f.print("out.push(", readMessageCall(ctx, fl, "this.$depth + 1", "undefined", tagOf(fl.number, WIRE_END_GROUP)), ");");
      } else {
        f.print(`if (tag !== ${tagOf(fl.number, WIRE_LEN)}) r.wrongWireType(tag, "wire type 2");`);
        f.print("const n = r.length();");
        f.print("out.push(", ref.codec, ".$view(r.buf, r.pos, r.pos + n, this.$depth + 1));");
        f.print("r.pos += n;");
      }
      return;
    }
    const c = codecOf(ctx, fl);
    const unpacked = tagOf(fl.number, c.wire);
    if (!c.packable) {
      f.print(`if (tag !== ${unpacked}) r.wrongWireType(tag, "wire type ${c.wire}");`);
      f.print("out.push(", c.read, ");");
      return;
    }
    const packed = tagOf(fl.number, WIRE_LEN);
    const closed = c.closed;
    if (closed === undefined) {
      f.print(`if (tag === ${unpacked}) out.push(`, c.read, ");");
      f.print(`else if (tag === ${packed}) {`);
    } else {
      f.print(`if (tag === ${unpacked}) {`);
      f.indented(() => {
        f.print("const v = ", c.read, ";");
        f.print(`if (${enumKnown(closed, "v")}) out.push(v);`);
      });
      f.print(`} else if (tag === ${packed}) {`);
    }
    f.indented(() => {
      if (c.packed !== undefined) {
        f.print(c.packed.read("out"), ";");
        return;
      }
      f.print("const saved = r.limit();");
      if (closed === undefined) f.print("while (r.pos < r.end) out.push(", c.read, ");");
      else {
        f.print("while (r.pos < r.end) {");
        f.indented(() => {
          f.print("const v = ", c.read, ";");
          f.print(`if (${enumKnown(closed, "v")}) out.push(v);`);
        });
        f.print("}");
      }
      f.print("r.end = saved;");
    });
    f.print(`} else r.wrongWireType(tag, "wire type ${c.wire} or 2");`);
  });
  f.print("});");
  f.print("return out;");
}

function emitMapGetterBody(ctx: EmitContext, fl: FieldModel): void {
  const { f } = ctx;
  const type = containerType(fl, viewValueType(ctx, fl));
  f.print("const out", typed(": ", type), " = {};");
  f.print(`this.$each(${fl.number}, (r, tag) => {`);
  f.indented(() => {
    f.print(`if (tag !== ${tagOf(fl.number, WIRE_LEN)}) r.wrongWireType(tag, "wire type 2");`);
    f.print("const saved = r.limit();");
    printEntryLoop(ctx, fl, "this.$depth", true);
    if (isMessageField(fl)) {
      const ref = messageOf(ctx, fl);
      f.print(storeEntry(ctx, fl, "out", ["value ?? ", ref.codec, ".$view(", ctx.emptyBytes, ", 0, 0, this.$depth + 2)"]));
    } else {
      const c = codecOf(ctx, fl);
      if (c.closed !== undefined) f.print`if (${enumKnown(c.closed, "value")}) ${storeEntry(ctx, fl, "out", "value")}`;
      else f.print(storeEntry(ctx, fl, "out", "value"));
    }
  });
  f.print("});");
  f.print("return out;");
}

function emitOneofGetter(ctx: EmitContext, o: OneofModel): void {
  const { f } = ctx;
  f.print(`get ${o.localName}()`, typed(": ", oneofType(ctx, o, true)), " {");
  f.indented(() => {
    // The member that occurs last in the data wins. Each occurrence of another member clears the
    // oneof, so a message member merges only its occurrences after the last of the others.
    const merges = o.fields.some(isMessageField);
    f.print("let no = 0;");
    f.print("let at = -1;");
    if (merges) f.print("let others = -1;");
    f.print(`for (const n of [${o.fields.map((fl) => fl.number).join(", ")}]) {`);
    f.indented(() => {
      f.print("const p = this.$position(n);");
      f.print("if (p > at) {");
      f.indented(() => {
        if (merges) f.print("others = at;");
        f.print("at = p;");
        f.print("no = n;");
      });
      if (merges) f.print("} else if (p > others) others = p;");
      else f.print("}");
    });
    f.print("}");
    f.print("switch (no) {");
    f.indented(() => {
      for (const fl of o.fields) {
        const ret = (value: Printable): Printable => [`return { case: "${fl.localName}", value: `, value, " };"];
        if (isMessageField(fl) && !fl.delimited) {
          const ref = messageOf(ctx, fl);
          f.print(`case ${fl.number}:`);
          f.indented(() =>
            f.print(ret(["this.$message", typed("<", ref.view, ">"), `(${fl.number}, ${tagOf(fl.number, WIRE_LEN)}, `, ref.codec, ", others)", typed("!")])),
          );
          continue;
        }
        f.print(`case ${fl.number}: {`);
        f.indented(() => {
          if (isMessageField(fl)) {
            printGroupMerge(ctx, fl, "others");
            f.print(ret(["out", typed("!")]));
          } else {
            const c = codecOf(ctx, fl);
            f.print(`const r = this.$field(${fl.number}, ${tagOf(fl.number, c.wire)})`, typed("!"), ";");
            if (c.closed === undefined) f.print(ret(c.read));
            else {
              f.print("const v = ", c.read, ";");
              f.print(`return ${enumKnown(c.closed, "v")} ? { case: "${fl.localName}", value: v } : undefined;`);
            }
          }
        });
        f.print("}");
      }
    });
    f.print("}");
    f.print("return undefined;");
  });
  f.print("}");
}

// ---------------------------------------------------------------------------------------------
// codec

function emitCodec(ctx: EmitContext, msg: MessageModel): void {
  const { f } = ctx;
  const names = ctx.localNames(msg);
  const t = msg.tsName;
  const v = msg.viewName;
  // Without the interfaces (js), the message's documentation goes on its codec.
  if (!ctx.types && ctx.target !== "runtime") f.jsDoc(declDoc(msg.comment, msg.deprecated));
  f.print(`${ctx.exportKeyword}const ${names.codec}`, typed(": ", ctx.rtType("MessageCodec"), `<${t}, ${v}>`), " = {");
  f.indented(() => {
    f.print(`typeName: "${msg.fullName}",`);
    f.print("create(partial", typed(`?: Partial<${t}>`), ")", typed(`: ${t}`), " {");
    f.indented(() => {
      f.print(`const m = ${names.create}();`);
      f.print("return partial === undefined ? m : Object.assign(m, partial);");
    });
    f.print("},");
    f.print("encode(msg", typed(`: ${t}`), ")", typed(": Uint8Array"), " {");
    f.indented(() => {
      f.print`const w = ${ctx.rt("sharedWriter")}();`;
      f.print(`${names.write}(msg, w);`);
      f.print("return w.finish();");
    });
    f.print("},");
    f.print("encodeTo(msg", typed(`: ${t}`), ", w", typed(": ", ctx.rtType("Writer")), ")", typed(": void"), " {");
    f.indented(() => f.print(`${names.write}(msg, w);`));
    f.print("},");
    f.print("decode(bytes", typed(": Uint8Array"), ")", typed(`: ${t}`), " {");
    f.indented(() => f.print`return ${names.read}(${ctx.rt("readerFor")}(bytes), 0);`);
    f.print("},");
    f.print("view(bytes", typed(": Uint8Array"), ")", typed(`: ${v}`), " {");
    f.indented(() => f.print(`return ${names.viewImpl}.of(bytes, 0, bytes.length, 0);`));
    f.print("},");
    f.print(`$write: ${names.write},`);
    f.print(`$read: ${names.read},`);
    f.print("$view(buf", typed(": Uint8Array"), ", start", typed(": number"), ", end", typed(": number"), ", depth", typed(": number"), ")", typed(`: ${v}`), " {");
    f.indented(() => f.print(`return ${names.viewImpl}.of(buf, start, end, depth);`));
    f.print("},");
  });
  f.print("};");
}
