import { dirname, isAbsolute, join, posix, relative, resolve, sep } from "node:path";
import type { EnumModel, EnumValueModel, FileModel, Int64Mode, MessageModel } from "../idl/model.js";
import { NameRegistry, lowerFirst } from "../idl/names.js";
import { GeneratedFile, importType, importValue, type ImportSymbol, type Printable } from "./printer.js";
import { WKT_MODULE } from "../idl/wkt.js";

/** The module generated code imports the runtime from. */
export const RUNTIME_MODULE = "meridian-rpc/runtime";

/** Options that change what is generated. */
export interface EmitOptions {
  /** Representation of 64-bit integers without a `jstype` option. Default "bigint". */
  readonly int64: Int64Mode;
  /**
   * The module specifier of the runtime for an output file (by its output name). Default:
   * "meridian-rpc/runtime". Code generated into Meridian's own sources imports it relatively.
   */
  readonly runtimeModule?: ModuleFor;
  /** The module specifier of the well-known types for an output file. Default: "meridian-rpc/wkt". */
  readonly wktModule?: ModuleFor;
}

/** A module specifier chosen per output file (by its output name, `foo/bar.ts`). */
export type ModuleFor = (outputName: string) => string;

/**
 * How generated files refer to a module given on the command line: a package specifier
 * (`meridian-rpc/runtime`) is used as it is; a path (`./runtime/index.ts`, `/abs/runtime/index.ts`,
 * relative to `cwd`) becomes a relative import from each output file under `outDir`.
 */
export function moduleFor(spec: string, outDir: string, cwd: string = process.cwd()): ModuleFor {
  if (!spec.startsWith(".") && !isAbsolute(spec)) return () => spec;
  const target = resolve(cwd, spec).replace(/\.ts$/, ".js");
  return (outputName) => {
    const rel = relative(dirname(join(resolve(cwd, outDir), outputName)), target).split(sep).join("/");
    return rel.startsWith(".") ? rel : `./${rel}`;
  };
}

/** What the emitter prints: TypeScript, JavaScript, its declarations, or a run-time codec unit. */
export type EmitTarget = "ts" | "js" | "dts" | "runtime";

/** Names of the module-private functions (and the codec constant) printed for a message. */
export interface LocalMessageNames {
  /** The constructor of the message's default objects (`messageRecord`), which `create` calls. */
  readonly record: string;
  readonly create: string;
  readonly write: string;
  readonly read: string;
  readonly fieldName: string;
  readonly viewImpl: string;
  /** The codec constant: the message's exported name in a file, a private name in a unit. */
  readonly codec: string;
}

/** How printed code refers to a message type (local or imported). */
export interface MessageRef {
  /** The message interface, in type positions. */
  readonly type: Printable;
  /** The view interface, in type positions. */
  readonly view: Printable;
  /** The codec constant, as a value. */
  readonly codec: Printable;
  /** The private functions, when the message is printed in the same output. */
  readonly local: LocalMessageNames | undefined;
}

/**
 * State shared by the emitters of one output, and how that output refers to things: a generated
 * file (FileContext: ts, js, dts) or a unit of codecs compiled at run time (emit/compile.ts).
 * The emitters lay out the code once; the context decides the names it prints.
 */
export abstract class EmitContext {
  abstract readonly f: GeneratedFile;
  abstract readonly target: EmitTarget;
  private emptyBytesName: string | undefined;
  private unknownEnumName: string | undefined;

  /** Whether declarations (interfaces, types) are printed: ts and dts. */
  get types(): boolean {
    return this.target === "ts" || this.target === "dts";
  }

  /** Whether code (functions, classes, codec objects) is printed: all but dts. */
  get code(): boolean {
    return this.target !== "dts";
  }

  /** What precedes an exported declaration: `export ` in files, nothing in a run-time unit. */
  get exportKeyword(): string {
    return this.target === "runtime" ? "" : "export ";
  }

  /** A runtime value (`sharedWriter`, `DecodeError`, ...). */
  abstract rt(name: string): Printable;
  /** A runtime type (`Writer`, `MessageCodec`, ...). */
  abstract rtType(name: string): Printable;
  /** The private names of a message printed in this output (stable per message). */
  abstract localNames(m: MessageModel): LocalMessageNames;
  /** How to refer to message `m` from this output. */
  abstract message(m: MessageModel): MessageRef;
  /** How to refer to enum `e`, as a value (`Kind`) or a type. */
  abstract enumRef(e: EnumModel, as: "value" | "type"): Printable;
  /** An enum member as a value: `Kind.A` (or its number). */
  abstract enumValue(e: EnumModel, v: EnumValueModel): Printable;
  /** The representation of 64-bit integers without `jstype` in the fields of `m`. */
  abstract int64Of(m: MessageModel): Int64Mode;
  /** Takes an output-private name, unique in the output. */
  protected abstract takeLocal(name: string): string;

  /** Whether the shared empty byte array has been declared yet. */
  get emptyBytesDeclared(): boolean {
    return this.emptyBytesName !== undefined;
  }

  /** Declares the shared empty byte array (printed by the caller where it is first needed). */
  declareEmptyBytes(): string {
    return (this.emptyBytesName ??= this.takeLocal("EMPTY_BYTES"));
  }

  /** The name of the shared empty byte array; it must have been declared. */
  get emptyBytes(): string {
    if (this.emptyBytesName === undefined) throw new Error("internal: EMPTY_BYTES used before it was declared");
    return this.emptyBytesName;
  }

  /** The helper that encodes an unknown closed-enum value as a raw varint field. */
  unknownEnumHelper(): string {
    return (this.unknownEnumName ??= this.takeLocal("unknownEnum"));
  }

  /** Whether unknownEnumHelper() was asked for (it is printed at the end of the output). */
  get needsUnknownEnumHelper(): boolean {
    return this.unknownEnumName !== undefined;
  }
}

/** The context of one generated file of a .proto file, for target ts, js or dts. */
export class FileContext extends EmitContext {
  readonly f: GeneratedFile;
  private readonly registry: NameRegistry;
  private readonly locals = new Map<MessageModel, LocalMessageNames>();

  constructor(
    readonly file: FileModel,
    readonly options: EmitOptions,
    readonly target: Exclude<EmitTarget, "runtime"> = "ts",
  ) {
    super();
    this.f = new GeneratedFile(outputName(file.name, target), target !== "js");
    // Exported names first: they are fixed by names.ts and other files rely on them.
    const exported: string[] = [];
    const walk = (msgs: readonly MessageModel[], enums: readonly EnumModel[]): void => {
      for (const e of enums) exported.push(e.tsName);
      for (const m of msgs) {
        exported.push(m.tsName, m.viewName);
        walk(m.messages, m.enums);
      }
    };
    walk(file.messages, file.enums);
    for (const s of file.services) exported.push(s.tsName);
    this.registry = new NameRegistry(exported);
    for (const n of exported) this.f.declareLocal(n);
    // Then the private functions, in declaration order, so their names do not depend on use.
    const names = (msgs: readonly MessageModel[]): void => {
      for (const m of msgs) {
        this.localNames(m);
        names(m.messages);
      }
    };
    names(file.messages);
  }

  rt(name: string): ImportSymbol {
    return importValue(name, this.runtimeModule);
  }

  rtType(name: string): ImportSymbol {
    return importType(name, this.runtimeModule);
  }

  private get runtimeModule(): string {
    return this.options.runtimeModule?.(this.f.name) ?? RUNTIME_MODULE;
  }

  /** Where this file imports the generated code of `target` from. */
  private moduleOf(target: FileModel): string {
    if (target.moduleOverride === WKT_MODULE && this.options.wktModule !== undefined) return this.options.wktModule(this.f.name);
    return moduleSpecifier(target, this.file);
  }

  protected takeLocal(name: string): string {
    const n = this.registry.take(name);
    this.f.declareLocal(n);
    return n;
  }

  localNames(m: MessageModel): LocalMessageNames {
    let names = this.locals.get(m);
    if (names === undefined) {
      names = {
        record: this.takeLocal(`${m.tsName}Record`),
        create: this.takeLocal(`create${m.tsName}`),
        write: this.takeLocal(`write${m.tsName}`),
        read: this.takeLocal(`read${m.tsName}`),
        fieldName: this.takeLocal(`${lowerFirst(m.tsName)}FieldName`),
        viewImpl: this.takeLocal(`${m.tsName}ViewImpl`),
        codec: m.tsName,
      };
      this.locals.set(m, names);
    }
    return names;
  }

  message(m: MessageModel): MessageRef {
    if (m.file === this.file) {
      return { type: m.tsName, view: m.viewName, codec: m.tsName, local: this.localNames(m) };
    }
    const from = this.moduleOf(m.file);
    return {
      type: importType(m.tsName, from),
      view: importType(m.viewName, from),
      codec: importValue(m.tsName, from),
      local: undefined,
    };
  }

  enumRef(e: EnumModel, as: "value" | "type"): Printable {
    if (e.file === this.file) return e.tsName;
    const from = this.moduleOf(e.file);
    return as === "value" ? importValue(e.tsName, from) : importType(e.tsName, from);
  }

  enumValue(e: EnumModel, v: EnumValueModel): Printable {
    return [this.enumRef(e, "value"), ".", v.localName];
  }

  int64Of(): Int64Mode {
    return this.options.int64;
  }
}

/** The output file of a .proto file for a target: `foo/bar.proto` -> `foo/bar.ts`, `.js`, `.d.ts`. */
export function outputName(protoName: string, target: Exclude<EmitTarget, "runtime"> = "ts"): string {
  return protoName.replace(/\.proto$/, "") + (target === "dts" ? ".d.ts" : `.${target}`);
}

/** The module specifier `from` uses to import the generated code of `target`. */
export function moduleSpecifier(target: FileModel, from: FileModel): string {
  if (target.moduleOverride !== undefined) return target.moduleOverride;
  const rel = posix.relative(posix.dirname(from.name), target.name.replace(/\.proto$/, "") + ".js");
  return rel.startsWith(".") ? rel : `./${rel}`;
}
