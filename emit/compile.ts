/**
 * The run-time target of the emitter: message codecs compiled from the model while a program
 * runs (generic calls, runtime/generic), from the same layout that `meridian gen` prints
 * (emit/message.ts), printed as JavaScript and evaluated with `new Function`. The wire output,
 * the in-memory representation (int64 mode, `jstype`, oneofs, maps, unknown fields) and the
 * DecodeErrors are those of the generated code for the same message.
 */
import { resolved, type EnumModel, type EnumValueModel, type FileModel, type Int64Mode, type MessageModel } from "../idl/model.js";
import { WKT_MODULE } from "../idl/wkt.js";
import { DecodeError } from "../runtime/codec/errors.js";
import { readerFor } from "../runtime/codec/reader.js";
import type { AnyMessageCodec } from "../runtime/codec/types.js";
import { messageRecord } from "../runtime/codec/record.js";
import { MessageView, setEntry, viewState } from "../runtime/codec/view.js";
import { Writer, sharedWriter } from "../runtime/codec/writer.js";
import { EmitContext, type LocalMessageNames, type MessageRef } from "./context.js";
import { emitUnknownEnumHelper } from "./file.js";
import { emitMessage } from "./message.js";
import { GeneratedFile } from "./printer.js";

/**
 * The int64 representation of the messages of `file` in a schema of representation `mode`: the
 * well-known types are always bigint, as generated code imports them from "meridian-rpc/wkt",
 * which is generated with the default.
 */
export function int64Of(file: FileModel, mode: Int64Mode): Int64Mode {
  return file.moduleOverride === WKT_MODULE ? "bigint" : mode;
}

/**
 * Compiles and caches the codecs of messages for one int64 representation. A message is compiled
 * on first use together with every message it reaches that has no codec yet (so recursive types
 * compile in one unit, as in one generated file); messages compiled earlier are reached through
 * their codec's `$write` / `$read` / `$view`, as generated files reach another file's messages.
 */
export class CodecCompiler {
  private readonly codecs = new Map<MessageModel, AnyMessageCodec>();

  constructor(readonly int64: Int64Mode) {}

  /** The codec of `msg`, compiled on first use. */
  codec(msg: MessageModel): AnyMessageCodec {
    const hit = this.codecs.get(msg);
    if (hit !== undefined) return hit;
    const unit = new UnitContext(this.int64, this.codecs, reachable(msg, this.codecs));
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

/** The runtime values a unit's code uses, passed to its function under these names. */
const RUNTIME = { MessageView, DecodeError, Writer, messageRecord, readerFor, sharedWriter, setEntry, viewState } as const;

/**
 * One compilation unit: messages compiled together into one function. Its own messages' private
 * functions are numbered (`write0`, `View0`, `codec0`), so no name of the schema can clash with
 * them; other units' codecs are constants `x0`, `x1`, ...; enum values are their numbers.
 */
class UnitContext extends EmitContext {
  readonly target = "runtime";
  readonly f: GeneratedFile;
  private readonly index = new Map<MessageModel, number>();
  private readonly ext: AnyMessageCodec[] = [];
  private readonly extIndex = new Map<MessageModel, number>();

  constructor(
    private readonly mode: Int64Mode,
    private readonly compiled: ReadonlyMap<MessageModel, AnyMessageCodec>,
    readonly messages: readonly MessageModel[],
  ) {
    super();
    // The sourceURL names the first message, for stack traces.
    this.f = new GeneratedFile(`meridian-generic/${messages[0]!.fullName}.js`, false);
    messages.forEach((m, i) => this.index.set(m, i));
  }

  /** Evaluates the unit; returns the codecs of `messages`, in order. */
  compile(): AnyMessageCodec[] {
    for (const m of this.messages) emitMessage(this, m);
    if (this.needsUnknownEnumHelper) emitUnknownEnumHelper(this);
    const body = [
      '"use strict";',
      ...this.ext.map((_, j) => `const x${j} = ext[${j}];`),
      this.f.render(),
      `return [${this.messages.map((m) => this.localNames(m).codec).join(", ")}];`,
      `//# sourceURL=${this.f.name}`,
    ].join("\n");
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const make = new Function(...Object.keys(RUNTIME), "ext", body) as (...args: unknown[]) => AnyMessageCodec[];
    return make(...Object.values(RUNTIME), this.ext);
  }

  rt(name: string): string {
    // A name outside RUNTIME is used in typed() parts only (`r: Reader`), which a unit leaves out.
    return name;
  }

  rtType(name: string): string {
    return name;
  }

  localNames(m: MessageModel): LocalMessageNames {
    const i = this.index.get(m);
    if (i === undefined) throw new Error(`internal: ${m.fullName} is not in the unit`);
    return { record: `Record${i}`, create: `create${i}`, write: `write${i}`, read: `read${i}`, fieldName: `fieldName${i}`, viewImpl: `View${i}`, codec: `codec${i}` };
  }

  message(m: MessageModel): MessageRef {
    if (this.index.has(m)) {
      const local = this.localNames(m);
      return { type: m.tsName, view: m.viewName, codec: local.codec, local };
    }
    let j = this.extIndex.get(m);
    if (j === undefined) {
      const codec = this.compiled.get(m);
      if (codec === undefined) throw new Error(`internal: ${m.fullName} is neither in the unit nor compiled`);
      j = this.ext.length;
      this.ext.push(codec);
      this.extIndex.set(m, j);
    }
    return { type: m.tsName, view: m.viewName, codec: `x${j}`, local: undefined };
  }

  enumRef(): string {
    return "number";
  }

  enumValue(_e: EnumModel, v: EnumValueModel): string {
    return Object.is(v.number, -0) ? "0" : String(v.number);
  }

  int64Of(m: MessageModel): Int64Mode {
    return int64Of(m.file, this.mode);
  }

  protected takeLocal(name: string): string {
    // The unit's other names are numbered (`write0`), so the shared helpers keep theirs.
    return name;
  }
}
