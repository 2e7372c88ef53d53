/**
 * Compiles message codecs at run time from the codegen model: for each message the same
 * create / write / read / fieldName functions and view class that `meridian gen` prints (see
 * codegen/emit-message.ts), as JavaScript source evaluated with `new Function`. The wire output,
 * the in-memory representation (int64 mode, `jstype`, oneofs, maps, unknown fields) and the
 * DecodeErrors are those of the generated code for the same message; test/generic/codec.test.ts
 * checks the two against each other.
 *
 * How each scalar and enum is written, read and defaulted comes from codegen/values.ts, the
 * generator's own table; this file only arranges it the way emit-message.ts does, without types.
 */
import type { EmitContext } from "../../codegen/context.js";
import { resolved, type FieldModel, type FileModel, type Int64Mode, type MessageModel, type OneofModel } from "../../codegen/model.js";
import type { Printable } from "../../codegen/printer.js";
import {
  WIRE_END_GROUP,
  WIRE_LEN,
  WIRE_START_GROUP,
  defaultLiteral,
  enumKnown,
  scalarWire,
  tagOf,
  valueCodecOf,
  type ValueCodec,
} from "../../codegen/values.js";
import { PUSH_UNKNOWN, byNumber, isMessageField, mapKeyRead, mapKeyWrite, members, requiredOf, type Required } from "../../codegen/shape.js";
import { WKT_MODULE } from "../../codegen/wkt.js";
import { DecodeError } from "../codec/errors.js";
import { readerFor } from "../codec/reader.js";
import type { AnyMessageCodec } from "../codec/types.js";
import { MessageView, setEntry } from "../codec/view.js";
import { Writer, sharedWriter } from "../codec/writer.js";

/** The part of the generator's EmitContext that codegen/values.ts reads. */
type ValueContext = Pick<EmitContext, "options" | "emptyBytes" | "enumRef" | "enumValue">;

/**
 * The int64 representation of the messages of `file` in a schema of representation `mode`: the
 * well-known types are always bigint, as generated code imports them from "meridian-rpc/wkt",
 * which is generated with the default.
 */
export function int64Of(file: FileModel, mode: Int64Mode): Int64Mode {
  return file.moduleOverride === WKT_MODULE ? "bigint" : mode;
}

/** The generator's value context for representation `int64`. */
function valueContext(int64: Int64Mode): EmitContext {
  const ctx: ValueContext = {
    options: { int64 },
    emptyBytes: "EMPTY_BYTES",
    enumRef: () => "number",
    enumValue: (_e, v) => (Object.is(v.number, -0) ? "0" : String(v.number)),
  };
  return ctx as EmitContext;
}

/** Prints a Printable of codegen/values.ts as JavaScript (symbols by their name). */
function js(p: Printable): string {
  if (typeof p === "string") return p;
  if (typeof p === "number") return String(p);
  if (isPrintableList(p)) return p.map(js).join("");
  if (p.kind === "import") return p.name;
  return p.items.map(js).join(", ");
}

function isPrintableList(p: Printable): p is readonly Printable[] {
  return Array.isArray(p);
}

/** A JavaScript property access on `obj`. */
function prop(obj: string, name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? `${obj}.${name}` : `${obj}[${JSON.stringify(name)}]`;
}

/** A string literal. */
const str = (s: string): string => JSON.stringify(s);

/** The value contexts of a compiler: its representation's, and bigint's for the well-known types. */
interface Contexts {
  readonly schema: EmitContext;
  readonly bigint: EmitContext;
  readonly int64: Int64Mode;
}

/** How compiled code refers to a message's functions: its own, or another unit's codec. */
interface Ref {
  write: string;
  read: string;
  create: string;
  codec: string;
}

/**
 * Compiles and caches the codecs of messages for one int64 representation. A message is compiled
 * on first use together with every message it reaches that has no codec yet (so recursive types
 * compile in one unit, as in one generated file); messages compiled earlier are reached through
 * their codec's `$write` / `$read` / `$view`, as generated files reach another file's messages.
 */
export class CodecCompiler {
  private readonly codecs = new Map<MessageModel, AnyMessageCodec>();
  private readonly contexts: Contexts;

  constructor(readonly int64: Int64Mode) {
    this.contexts = { schema: valueContext(int64), bigint: valueContext("bigint"), int64 };
  }

  /** The codec of `msg`, compiled on first use. */
  codec(msg: MessageModel): AnyMessageCodec {
    const hit = this.codecs.get(msg);
    if (hit !== undefined) return hit;
    const unit = new Unit(this.contexts, this.codecs, reachable(msg, this.codecs));
    const made = unit.compile();
    unit.messages.forEach((m, i) => this.codecs.set(m, made[i]!));
    return this.codecs.get(msg)!;
  }
}

/** `msg` and every message reachable from it that has no codec yet, `msg` first. */
function reachable(msg: MessageModel, done: ReadonlyMap<MessageModel, AnyMessageCodec>): MessageModel[] {
  const out: MessageModel[] = [];
  const seen = new Set<MessageModel>();
  const visit = (m: MessageModel): void => {
    if (seen.has(m) || done.has(m)) return;
    seen.add(m);
    out.push(m);
    for (const f of m.fields) {
      const t = resolved(f.type);
      if (t.kind === "message") visit(t.message);
    }
  };
  visit(msg);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helpers of the compiler (the message layout itself is codegen/shape.ts, shared with the emitters).

function messageModelOf(f: FieldModel): MessageModel {
  const t = resolved(f.type);
  if (t.kind !== "message") throw new Error(`internal: ${f.name} is not a message field`);
  return t.message;
}

/** A value codec with its Printables printed as JavaScript. */
interface JsValue {
  readonly wire: number;
  write(x: string): string;
  readonly read: string;
  readonly zero: string;
  nonZero(x: string): string;
  readonly packable: boolean;
  readonly closed: ValueCodec["closed"];
}

// ---------------------------------------------------------------------------------------------
// One compilation unit: the messages compiled together into one function.

class Unit {
  private readonly out: string[] = [];
  private readonly index = new Map<MessageModel, number>();
  private readonly ext: AnyMessageCodec[] = [];
  private readonly extIndex = new Map<MessageModel, number>();
  private unknownEnumUsed = false;

  constructor(
    private readonly contexts: Contexts,
    private readonly compiled: ReadonlyMap<MessageModel, AnyMessageCodec>,
    readonly messages: readonly MessageModel[],
  ) {
    messages.forEach((m, i) => this.index.set(m, i));
  }

  /** Evaluates the unit; returns the codecs of `messages`, in order. */
  compile(): AnyMessageCodec[] {
    const body = this.source();
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const make = new Function("MessageView", "DecodeError", "Writer", "readerFor", "sharedWriter", "setEntry", "ext", body) as (
      ...args: unknown[]
    ) => AnyMessageCodec[];
    return make(MessageView, DecodeError, Writer, readerFor, sharedWriter, setEntry, this.ext);
  }

  /** The body of the unit's function (its sourceURL names the first message, for stack traces). */
  private source(): string {
    this.out.length = 0;
    this.p('"use strict";');
    this.p("const EMPTY_BYTES = new Uint8Array(0);");
    const mark = this.out.length;
    for (const m of this.messages) this.message(m);
    if (this.unknownEnumUsed) {
      this.p("function unknownEnum(no, v) {");
      this.p("const w = new Writer(16);");
      this.p("w.uint32(no * 8);");
      this.p("w.int32(v);");
      this.p("return w.finish();");
      this.p("}");
    }
    this.p(`return [${this.messages.map((_, i) => `codec${i}`).join(", ")}];`);
    this.p(`//# sourceURL=meridian-generic/${this.messages[0]!.fullName}.js`);
    // Other units' codecs, hoisted into constants.
    this.out.splice(mark, 0, ...this.ext.map((_, j) => `const x${j} = ext[${j}];`));
    return this.out.join("\n");
  }

  private p(line: string): void {
    this.out.push(line);
  }

  private ref(m: MessageModel): Ref {
    const i = this.index.get(m);
    if (i !== undefined) return { write: `write${i}`, read: `read${i}`, create: `create${i}()`, codec: `codec${i}` };
    let j = this.extIndex.get(m);
    if (j === undefined) {
      const codec = this.compiled.get(m);
      if (codec === undefined) throw new Error(`internal: ${m.fullName} is neither in the unit nor compiled`);
      j = this.ext.length;
      this.ext.push(codec);
      this.extIndex.set(m, j);
    }
    const x = `x${j}`;
    return { write: `${x}.$write`, read: `${x}.$read`, create: `${x}.create()`, codec: x };
  }

  /** The value context of the fields of `msg`. */
  private ctx(msg: MessageModel): EmitContext {
    return int64Of(msg.file, this.contexts.int64) === "bigint" ? this.contexts.bigint : this.contexts.schema;
  }

  private value(f: FieldModel): JsValue {
    const c = valueCodecOf(this.ctx(f.parent), f);
    if (c === undefined) throw new Error(`internal: ${f.name} is a message field`);
    return {
      wire: c.wire,
      write: (x) => js(c.write(x)),
      read: js(c.read),
      zero: js(c.zero),
      nonZero: (x) => js(c.nonZero(x)),
      packable: c.packable,
      closed: c.closed,
    };
  }

  private message(msg: MessageModel): void {
    const i = this.index.get(msg)!;
    this.create(msg, i);
    this.write(msg, i);
    this.read(msg, i);
    if (msg.fields.length > 0) this.fieldName(msg, i);
    this.viewClass(msg, i);
    this.codecObject(msg, i);
  }

  // --- create

  private initialValue(fl: FieldModel): string {
    if (fl.cardinality === "repeated") return "[]";
    if (fl.cardinality === "map") return "{}";
    if (isMessageField(fl) || fl.presence === "explicit") return "undefined";
    if (fl.default !== undefined) return js(defaultLiteral(this.ctx(fl.parent), fl, fl.default));
    return this.value(fl).zero;
  }

  private create(msg: MessageModel, i: number): void {
    const items = members(msg).map((mem) =>
      mem.kind === "oneof" ? `${str(mem.oneof.localName)}: undefined` : `${str(mem.field.localName)}: ${this.initialValue(mem.field)}`,
    );
    this.p(`function create${i}() {`);
    this.p(`return { ${items.join(", ")} };`);
    this.p("}");
  }

  // --- write

  private writeMessageCall(fl: FieldModel, value: string): string {
    return `${this.ref(messageModelOf(fl)).write}(${value}, w)`;
  }

  private writeValue(fl: FieldModel, value: string): void {
    if (isMessageField(fl)) {
      if (fl.delimited) {
        this.p(`w.uint32(${tagOf(fl.number, WIRE_START_GROUP)});`);
        this.p(`${this.writeMessageCall(fl, value)};`);
        this.p(`w.uint32(${tagOf(fl.number, WIRE_END_GROUP)});`);
      } else {
        this.p(`w.uint32(${tagOf(fl.number, WIRE_LEN)});`);
        this.p("const k = w.fork();");
        this.p(`${this.writeMessageCall(fl, value)};`);
        this.p("w.join(k);");
      }
      return;
    }
    const c = this.value(fl);
    this.p(`w.uint32(${tagOf(fl.number, c.wire)});`);
    this.p(`${c.write(value)};`);
  }

  private writeField(fl: FieldModel): void {
    const acc = prop("m", fl.localName);
    if (fl.cardinality === "map") {
      const key = fl.mapKey!;
      this.p(`for (const key of Object.keys(${acc})) {`);
      this.p(`w.uint32(${tagOf(fl.number, WIRE_LEN)});`);
      this.p("const k = w.fork();");
      this.p(`w.uint32(${tagOf(1, scalarWire(key))});`);
      this.p(`${mapKeyWrite(key)};`);
      const value = `${acc}[key]`;
      if (isMessageField(fl)) {
        this.p(`w.uint32(${tagOf(2, WIRE_LEN)});`);
        this.p("const k2 = w.fork();");
        this.p(`${this.writeMessageCall(fl, value)};`);
        this.p("w.join(k2);");
      } else {
        const c = this.value(fl);
        this.p(`w.uint32(${tagOf(2, c.wire)});`);
        this.p(`${c.write(value)};`);
      }
      this.p("w.join(k);");
      this.p("}");
      return;
    }
    if (fl.cardinality === "repeated") {
      const c = isMessageField(fl) ? undefined : this.value(fl);
      if (c !== undefined && fl.packed && c.packable) {
        this.p(`if (${acc}.length > 0) {`);
        this.p(`w.uint32(${tagOf(fl.number, WIRE_LEN)});`);
        this.p("const k = w.fork();");
        this.p(`for (const v of ${acc}) ${c.write("v")};`);
        this.p("w.join(k);");
        this.p("}");
        return;
      }
      this.p(`for (const v of ${acc}) {`);
      this.writeValue(fl, "v");
      this.p("}");
      return;
    }
    if (fl.presence === "required" && !isMessageField(fl)) {
      this.writeValue(fl, acc);
      return;
    }
    const cond = isMessageField(fl) || fl.presence !== "implicit" ? `${acc} !== undefined` : this.value(fl).nonZero(acc);
    this.p(`if (${cond}) {`);
    this.writeValue(fl, acc);
    this.p("}");
  }

  private writeOneofRun(o: OneofModel, run: readonly FieldModel[]): void {
    const acc = prop("m", o.localName);
    this.p(`switch (${acc}?.case) {`);
    for (const fl of run) {
      this.p(`case ${str(fl.localName)}: {`);
      this.writeValue(fl, `${acc}.value`);
      this.p("break;");
      this.p("}");
    }
    this.p("}");
  }

  private write(msg: MessageModel, i: number): void {
    this.p(`function write${i}(m, w) {`);
    const sorted = byNumber(msg);
    for (let a = 0; a < sorted.length; ) {
      const fl = sorted[a]!;
      if (fl.oneof === undefined) {
        this.writeField(fl);
        a++;
        continue;
      }
      let b = a;
      while (b < sorted.length && sorted[b]!.oneof === fl.oneof) b++;
      this.writeOneofRun(fl.oneof, sorted.slice(a, b));
      a = b;
    }
    this.p("if (m.$unknown !== undefined) for (const u of m.$unknown) w.raw(u);");
    this.p("}");
  }

  // --- read

  private readMessageCall(fl: FieldModel, depth: string, into?: string, endTag?: number): string {
    let args = `r, ${depth}`;
    if (endTag !== undefined) args += `, ${into ?? "undefined"}, ${endTag}`;
    else if (into !== undefined) args += `, ${into}`;
    return `${this.ref(messageModelOf(fl)).read}(${args})`;
  }

  /** `if (known(v)) stmts else unknown` for a closed enum value in `v`; just `stmts` otherwise. */
  private guarded(c: JsValue, stmts: readonly string[], unknown: string): void {
    if (c.closed === undefined) {
      for (const s of stmts) this.p(s);
      return;
    }
    this.p(`if (${enumKnown(c.closed, "v")}) {`);
    for (const s of stmts) this.p(s);
    this.p(`} else ${unknown}`);
  }

  private readCase(fl: FieldModel, req: Required): void {
    const acc = prop("m", fl.localName);
    const b = req.bits.get(fl);
    const after = b === undefined ? [] : [`${b.v} |= ${b.bit};`];
    const o = fl.oneof;
    const oacc = o === undefined ? "" : prop("m", o.localName);

    if (fl.cardinality === "map") {
      this.readMapCase(fl);
      return;
    }
    if (isMessageField(fl)) {
      const endTag = fl.delimited ? tagOf(fl.number, WIRE_END_GROUP) : undefined;
      const tag = fl.delimited ? tagOf(fl.number, WIRE_START_GROUP) : tagOf(fl.number, WIRE_LEN);
      let assign: string;
      let prev: string | undefined;
      if (fl.cardinality === "repeated") {
        assign = `${acc}.push(${this.readMessageCall(fl, "depth + 1", undefined, endTag)});`;
      } else if (o !== undefined) {
        prev = `const prev = ${oacc}?.case === ${str(fl.localName)} ? ${oacc}.value : undefined;`;
        assign = `${oacc} = { case: ${str(fl.localName)}, value: ${this.readMessageCall(fl, "depth + 1", "prev", endTag)} };`;
      } else {
        assign = `${acc} = ${this.readMessageCall(fl, "depth + 1", acc, endTag)};`;
      }
      this.p(`case ${tag}: {`);
      if (prev !== undefined) this.p(prev);
      if (fl.delimited) {
        this.p(assign);
      } else {
        this.p("const saved = r.limit();");
        this.p(assign);
        this.p("r.end = saved;");
      }
      for (const s of after) this.p(s);
      this.p("break;");
      this.p("}");
      return;
    }

    const c = this.value(fl);
    const tag = tagOf(fl.number, c.wire);
    if (fl.cardinality === "repeated") {
      this.p(`case ${tag}: {`);
      if (c.closed === undefined) {
        this.p(`${acc}.push(${c.read});`);
      } else {
        this.p(`const v = ${c.read};`);
        this.guarded(c, [`${acc}.push(v);`], PUSH_UNKNOWN);
      }
      this.p("break;");
      this.p("}");
      if (!c.packable) return;
      // Packed: accepted whatever the declaration says.
      this.p(`case ${tagOf(fl.number, WIRE_LEN)}: {`);
      this.p("const saved = r.limit();");
      if (c.closed === undefined) {
        this.p(`while (r.pos < r.end) ${acc}.push(${c.read});`);
      } else {
        this.unknownEnumUsed = true;
        this.p("while (r.pos < r.end) {");
        this.p(`const v = ${c.read};`);
        this.guarded(c, [`${acc}.push(v);`], `(m.$unknown ??= []).push(unknownEnum(${fl.number}, v));`);
        this.p("}");
      }
      this.p("r.end = saved;");
      this.p("break;");
      this.p("}");
      return;
    }
    const assign = (value: string): string =>
      o === undefined ? `${acc} = ${value};` : `${oacc} = { case: ${str(fl.localName)}, value: ${value} };`;
    this.p(`case ${tag}: {`);
    if (c.closed === undefined) {
      this.p(assign(c.read));
      for (const s of after) this.p(s);
    } else {
      this.p(`const v = ${c.read};`);
      this.guarded(c, [assign("v"), ...after], PUSH_UNKNOWN);
    }
    this.p("break;");
    this.p("}");
  }

  /** The loop reading one map entry into `key` / `value`; `depth` is that of the map's message. */
  private entryLoop(fl: FieldModel, depth: string, view: boolean): void {
    const key = mapKeyRead(fl.mapKey!, fl.utf8);
    const keyTag = tagOf(1, scalarWire(fl.mapKey!));
    this.p(`let key = ${key.init};`);
    if (isMessageField(fl)) {
      this.p("let value;");
    } else {
      this.p(`let value = ${this.value(fl).zero};`);
    }
    this.p("while (r.pos < r.end) {");
    this.p("const t = r.tag();");
    this.p(`if (t === ${keyTag}) key = ${key.read};`);
    if (isMessageField(fl)) {
      const ref = this.ref(messageModelOf(fl));
      this.p(`else if (t === ${tagOf(2, WIRE_LEN)}) {`);
      if (view) {
        this.p("const n = r.length();");
        this.p(`value = ${ref.codec}.$view(r.buf, r.pos, r.pos + n, ${depth} + 2);`);
        this.p("r.pos += n;");
      } else {
        this.p("const s = r.limit();");
        this.p(`value = ${this.readMessageCall(fl, `${depth} + 2`, "value")};`);
        this.p("r.end = s;");
      }
      this.p(`} else r.skip(t, ${depth} + 1);`);
    } else {
      const c = this.value(fl);
      this.p(`else if (t === ${tagOf(2, c.wire)}) value = ${c.read};`);
      this.p(`else r.skip(t, ${depth} + 1);`);
    }
    this.p("}");
    this.p("r.end = saved;");
  }

  private readMapCase(fl: FieldModel): void {
    const acc = prop("m", fl.localName);
    this.p(`case ${tagOf(fl.number, WIRE_LEN)}: {`);
    this.p("const saved = r.limit();");
    this.entryLoop(fl, "depth", false);
    if (isMessageField(fl)) {
      this.p(`setEntry(${acc}, key, value ?? ${this.ref(messageModelOf(fl)).create});`);
    } else {
      const c = this.value(fl);
      if (c.closed !== undefined) {
        this.p(`if (${enumKnown(c.closed, "value")}) setEntry(${acc}, key, value);`);
        this.p(`else ${PUSH_UNKNOWN}`);
      } else {
        this.p(`setEntry(${acc}, key, value);`);
      }
    }
    this.p("break;");
    this.p("}");
  }

  private requiredChecks(req: Required): void {
    for (const v of req.vars) {
      this.p(`if (${v.name} !== ${v.all}) {`);
      for (const [fl, b] of req.bits) {
        if (b.v === v.name) this.p(`if ((${b.v} & ${b.bit}) === 0) r.missingRequired(${str(fl.localName)});`);
      }
      this.p("}");
    }
  }

  private read(msg: MessageModel, i: number): void {
    const req = requiredOf(msg);
    const sorted = byNumber(msg);
    this.p(`function read${i}(r, depth, into, endTag = 0) {`);
    this.p(`const m = into ?? create${i}();`);
    this.p("r.checkDepth(depth);");
    for (const v of req.vars) this.p(`let ${v.name} = into === undefined ? 0 : ${v.all};`);
    this.p("let tag = 0;");
    this.p("try {");
    this.p("while (r.pos < r.end) {");
    this.p("const at = r.pos;");
    this.p("tag = 0;");
    this.p("tag = r.tag();");
    this.p("switch (tag) {");
    for (const fl of sorted) this.readCase(fl, req);
    this.p("default:");
    if (req.vars.length === 0) {
      this.p("if (tag === endTag) return m;");
    } else {
      this.p("if (tag === endTag) {");
      this.p("tag = 0;");
      this.requiredChecks(req);
      this.p("return m;");
      this.p("}");
    }
    if (sorted.length > 0) {
      this.p("switch (tag >>> 3) {");
      for (const fl of sorted) this.p(`case ${fl.number}:`);
      this.p('r.wrongWireType(tag, "the declared type");');
      this.p("}");
    }
    this.p("(m.$unknown ??= []).push(r.unknown(tag, at, depth));");
    this.p("}");
    this.p("}");
    // Past the loop no field is being read: errors belong to the message (or its group field).
    this.p("tag = 0;");
    this.p("if (endTag !== 0) r.truncated(`group ended by tag ${endTag}`);");
    if (req.vars.length > 0) this.requiredChecks(req);
    this.p("} catch (e) {");
    const withM = msg.fields.some((fl) => fl.cardinality === "repeated");
    const fieldName = sorted.length === 0 ? "undefined" : `fieldName${i}(tag >>> 3${withM ? ", m" : ""})`;
    this.p(`if (e instanceof DecodeError) e.within(${str(msg.fullName)}, ${fieldName});`);
    this.p("throw e;");
    this.p("}");
    this.p("return m;");
    this.p("}");
  }

  private fieldName(msg: MessageModel, i: number): void {
    this.p(`function fieldName${i}(no, m) {`);
    this.p("switch (no) {");
    for (const fl of byNumber(msg)) {
      if (fl.cardinality === "repeated") {
        this.p(`case ${fl.number}: return ${str(fl.localName + "[")} + ${prop("m", fl.localName)}.length + "]";`);
      } else {
        this.p(`case ${fl.number}: return ${str(fl.localName)};`);
      }
    }
    this.p("}");
    this.p("return undefined;");
    this.p("}");
  }

  // --- view

  private viewClass(msg: MessageModel, i: number): void {
    const max = msg.fields.reduce((n, fl) => Math.max(n, fl.number), 0);
    this.p(`class View${i} extends MessageView {`);
    this.p(`get $maxField() { return ${max}; }`);
    for (const mem of members(msg)) {
      if (mem.kind === "oneof") this.oneofGetter(mem.oneof);
      else this.fieldGetter(mem.field);
    }
    this.p("}");
  }

  private absentValue(fl: FieldModel): string {
    if (fl.default !== undefined) return js(defaultLiteral(this.ctx(fl.parent), fl, fl.default));
    if (fl.presence === "explicit") return "undefined";
    return this.value(fl).zero;
  }

  private fieldGetter(fl: FieldModel): void {
    this.p(`get ${str(fl.localName)}() {`);
    if (fl.cardinality === "map") this.mapGetterBody(fl);
    else if (fl.cardinality === "repeated") this.repeatedGetterBody(fl);
    else if (isMessageField(fl)) {
      if (fl.delimited) {
        this.groupMerge(fl);
        this.p("return out;");
      } else {
        this.p(`return this.$message(${fl.number}, ${tagOf(fl.number, WIRE_LEN)}, ${this.ref(messageModelOf(fl)).codec});`);
      }
    } else {
      const c = this.value(fl);
      this.p(`const r = this.$field(${fl.number}, ${tagOf(fl.number, c.wire)});`);
      const absent = this.absentValue(fl);
      if (c.closed === undefined) {
        this.p(`return r === undefined ? ${absent} : ${c.read};`);
      } else {
        this.p(`if (r === undefined) return ${absent};`);
        this.p(`const v = ${c.read};`);
        // An unknown value of a closed enum is an unknown field: the field reads as absent.
        this.p(`return ${enumKnown(c.closed, "v")} ? v : ${absent};`);
      }
    }
    this.p("}");
  }

  /**
   * A view getter's eager decoding of group field `fl` into `out`: every occurrence merged. With
   * `after` (a variable holding a position), occurrences before it are skipped: a oneof member is
   * merged only with the occurrences since another member last cleared the oneof.
   */
  private groupMerge(fl: FieldModel, after?: string): void {
    this.p("let out;");
    this.p(`this.$each(${fl.number}, (r, tag${after === undefined ? "" : ", pos"}) => {`);
    this.p(`if (tag !== ${tagOf(fl.number, WIRE_START_GROUP)}) r.wrongWireType(tag, "wire type 3");`);
    const read = `out = ${this.readMessageCall(fl, "this.$depth + 1", "out", tagOf(fl.number, WIRE_END_GROUP))};`;
    if (after === undefined) this.p(read);
    else {
      this.p(`if (pos < ${after}) r.skip(tag, this.$depth);`);
      this.p(`else ${read}`);
    }
    this.p("});");
  }

  private repeatedGetterBody(fl: FieldModel): void {
    this.p("const out = [];");
    this.p(`this.$each(${fl.number}, (r, tag) => {`);
    if (isMessageField(fl)) {
      if (fl.delimited) {
        this.p(`if (tag !== ${tagOf(fl.number, WIRE_START_GROUP)}) r.wrongWireType(tag, "wire type 3");`);
        this.p(`out.push(${this.readMessageCall(fl, "this.$depth + 1", "undefined", tagOf(fl.number, WIRE_END_GROUP))});`);
      } else {
        this.p(`if (tag !== ${tagOf(fl.number, WIRE_LEN)}) r.wrongWireType(tag, "wire type 2");`);
        this.p("const n = r.length();");
        this.p(`out.push(${this.ref(messageModelOf(fl)).codec}.$view(r.buf, r.pos, r.pos + n, this.$depth + 1));`);
        this.p("r.pos += n;");
      }
    } else {
      const c = this.value(fl);
      const unpacked = tagOf(fl.number, c.wire);
      if (!c.packable) {
        this.p(`if (tag !== ${unpacked}) r.wrongWireType(tag, "wire type ${c.wire}");`);
        this.p(`out.push(${c.read});`);
      } else {
        const packed = tagOf(fl.number, WIRE_LEN);
        const closed = c.closed;
        const push = closed === undefined ? `out.push(${c.read});` : `{ const v = ${c.read}; if (${enumKnown(closed, "v")}) out.push(v); }`;
        this.p(`if (tag === ${unpacked}) ${push}`);
        this.p(`else if (tag === ${packed}) {`);
        this.p("const saved = r.limit();");
        this.p(`while (r.pos < r.end) ${push}`);
        this.p("r.end = saved;");
        this.p(`} else r.wrongWireType(tag, "wire type ${c.wire} or 2");`);
      }
    }
    this.p("});");
    this.p("return out;");
  }

  private mapGetterBody(fl: FieldModel): void {
    this.p("const out = {};");
    this.p(`this.$each(${fl.number}, (r, tag) => {`);
    this.p(`if (tag !== ${tagOf(fl.number, WIRE_LEN)}) r.wrongWireType(tag, "wire type 2");`);
    this.p("const saved = r.limit();");
    this.entryLoop(fl, "this.$depth", true);
    if (isMessageField(fl)) {
      this.p(`setEntry(out, key, value ?? ${this.ref(messageModelOf(fl)).codec}.$view(EMPTY_BYTES, 0, 0, this.$depth + 2));`);
    } else {
      const c = this.value(fl);
      if (c.closed !== undefined) this.p(`if (${enumKnown(c.closed, "value")}) setEntry(out, key, value);`);
      else this.p("setEntry(out, key, value);");
    }
    this.p("});");
    this.p("return out;");
  }

  private oneofGetter(o: OneofModel): void {
    this.p(`get ${str(o.localName)}() {`);
    // The member that occurs last in the data wins. Each occurrence of another member clears the
    // oneof, so a message member merges only its occurrences after the last of the others.
    const merges = o.fields.some(isMessageField);
    this.p("let no = 0;");
    this.p("let at = -1;");
    if (merges) this.p("let others = -1;");
    this.p(`for (const n of [${o.fields.map((fl) => fl.number).join(", ")}]) {`);
    this.p("const p = this.$position(n);");
    if (merges) this.p("if (p > at) { others = at; at = p; no = n; } else if (p > others) others = p;");
    else this.p("if (p > at) { at = p; no = n; }");
    this.p("}");
    this.p("switch (no) {");
    for (const fl of o.fields) {
      const ret = (value: string): string => `return { case: ${str(fl.localName)}, value: ${value} };`;
      this.p(`case ${fl.number}: {`);
      if (isMessageField(fl) && !fl.delimited) {
        this.p(ret(`this.$message(${fl.number}, ${tagOf(fl.number, WIRE_LEN)}, ${this.ref(messageModelOf(fl)).codec}, others)`));
      } else if (isMessageField(fl)) {
        this.groupMerge(fl, "others");
        this.p(ret("out"));
      } else {
        const c = this.value(fl);
        this.p(`const r = this.$field(${fl.number}, ${tagOf(fl.number, c.wire)});`);
        if (c.closed === undefined) this.p(ret(c.read));
        else {
          this.p(`const v = ${c.read};`);
          this.p(`return ${enumKnown(c.closed, "v")} ? { case: ${str(fl.localName)}, value: v } : undefined;`);
        }
      }
      this.p("}");
    }
    this.p("}");
    this.p("return undefined;");
    this.p("}");
  }

  // --- codec

  private codecObject(msg: MessageModel, i: number): void {
    this.p(`const codec${i} = {`);
    this.p(`typeName: ${str(msg.fullName)},`);
    this.p(`create(partial) { const m = create${i}(); return partial === undefined ? m : Object.assign(m, partial); },`);
    this.p(`encode(msg) { const w = sharedWriter(); write${i}(msg, w); return w.finish(); },`);
    this.p(`encodeTo(msg, w) { write${i}(msg, w); },`);
    this.p(`decode(bytes) { return read${i}(readerFor(bytes), 0); },`);
    this.p(`view(bytes) { return new View${i}(bytes, 0, bytes.length, 0); },`);
    this.p(`$write: write${i},`);
    this.p(`$read: read${i},`);
    this.p(`$view(buf, start, end, depth) { return new View${i}(buf, start, end, depth); },`);
    this.p("};");
  }
}
