/**
 * Per-output state of the Thrift emitter: the generated file, the TypeScript names of every
 * definition (of this file and of the files it includes), and how this output refers to them
 * (declared here, or imported from the included file's module).
 */
import { posix } from "node:path";
import { IdlError } from "../../idl/errors.js";
import { NameRegistry, RESERVED_NAMES } from "../../idl/names.js";
import type { ThriftDefinition, ThriftFunction, ThriftService, ThriftStruct } from "../../idl/thrift/ast.js";
import type { ThriftProgram } from "../../idl/thrift/link.js";
import { RUNTIME_MODULE, type ModuleFor } from "../context.js";
import { GeneratedFile, importType, importValue, type ImportSymbol, type Printable } from "../printer.js";

/** Options that change what is generated from .thrift files. */
export interface ThriftEmitOptions {
  /** The module specifier of the runtime for an output file (by its output name). Default "meridian-rpc/runtime". */
  readonly runtimeModule?: ModuleFor;
}

/** Property names that change an object's prototype when assigned: refused as field and value names. */
const PROTO_KEY = "__proto__";

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A property name as printed: the name itself, quoted when it is not an identifier (Thrift allows dots). */
export function propertyKey(name: string): string {
  return IDENTIFIER.test(name) ? name : JSON.stringify(name);
}

/** Refuses a field, enum value or function named `__proto__`: assigning it would replace an object's prototype. */
export function checkPropertyName(name: string, loc: ThriftDefinition["loc"], file: string, what: string): void {
  if (name === PROTO_KEY) throw IdlError.at(loc, file, `${what} is named __proto__, which would replace an object's prototype in JavaScript; rename it (on the wire only its id counts)`);
}

/** The TypeScript names of one file's declarations. */
export class ThriftFileNames {
  /** Every definition's exported name: enums, typedefs, consts, structs, unions, exception classes, services. */
  readonly definitions = new Map<ThriftDefinition, string>();
  /** Each exception's codec constant (`NotFoundCodec`): the class takes the exception's name. */
  readonly exceptionCodecs = new Map<ThriftStruct, string>();
  /** The interface of each function's arguments (`InteropService_add_args`). */
  readonly args = new Map<ThriftFunction, string>();

  constructor(definitions: readonly ThriftDefinition[]) {
    const registry = new NameRegistry();
    // Definitions first, in declaration order: their names are what users import.
    for (const d of definitions) this.definitions.set(d, registry.take(RESERVED_NAMES.has(d.name) ? `${d.name}$` : d.name));
    for (const d of definitions) {
      if (d.kind === "exception") this.exceptionCodecs.set(d, registry.take(`${this.definitions.get(d)}Codec`));
      if (d.kind === "service") {
        for (const fn of d.functions) this.args.set(fn, registry.take(`${this.definitions.get(d)}_${fn.name}_args`.replace(/\./g, "_")));
      }
    }
  }

  /** Every name this file declares at the top level. */
  all(): string[] {
    return [...this.definitions.values(), ...this.exceptionCodecs.values(), ...this.args.values()];
  }
}

/** A definition and the file (its name in the program) that defines it. */
export interface Located<D extends ThriftDefinition = ThriftDefinition> {
  readonly def: D;
  readonly file: string;
}

/** The output name of a .thrift file: `foo/bar.thrift` -> `foo/bar.ts`. */
export function thriftOutputName(file: string): string {
  return file.replace(/\.thrift$/, "") + ".ts";
}

/** The qualified name of a definition, as the runtime's schemas carry it: `<file base name>.<Name>`. */
export function qualifiedName(name: string, file: string): string {
  return `${posix.basename(file).replace(/\.thrift$/, "")}.${name}`;
}

/** The state of one generated file of a .thrift file. */
export class ThriftFileContext {
  readonly f: GeneratedFile;
  readonly names: ThriftFileNames;

  constructor(
    readonly program: ThriftProgram,
    /** The file generated, by its name in the program. */
    readonly file: string,
    /** Names of every file, computed once per program. */
    private readonly namesOf: (file: string) => ThriftFileNames,
    readonly options: ThriftEmitOptions = {},
  ) {
    this.f = new GeneratedFile(thriftOutputName(file));
    this.names = namesOf(file);
    for (const n of this.names.all()) this.f.declareLocal(n);
  }

  /** A runtime value (`thriftStruct`, `ThriftException`, ...). */
  rt(name: string): ImportSymbol {
    return importValue(name, this.runtimeModule);
  }

  /** A runtime type (`ThriftStructCodec`, ...). */
  rtType(name: string): ImportSymbol {
    return importType(name, this.runtimeModule);
  }

  private get runtimeModule(): string {
    return this.options.runtimeModule?.(this.f.name) ?? RUNTIME_MODULE;
  }

  /** The exported name of a definition in its own file's module. */
  nameOf({ def, file }: Located): string {
    return this.namesOf(file).definitions.get(def)!;
  }

  /** A definition as a type or a value: its name here, or imported from its file's module. */
  ref(target: Located, as: "type" | "value"): Printable {
    return this.named(target.file, this.nameOf(target), as);
  }

  /** The codec constant of a struct, union (`Point`) or exception (`NotFoundCodec`). */
  codecRef({ def, file }: Located<ThriftStruct>): Printable {
    const names = this.namesOf(file);
    return this.named(file, def.kind === "exception" ? names.exceptionCodecs.get(def)! : names.definitions.get(def)!, "value");
  }

  /** The args interface of a function of the service `service`. */
  argsRef(service: Located<ThriftService>, fn: ThriftFunction): Printable {
    return this.named(service.file, this.namesOf(service.file).args.get(fn)!, "type");
  }

  private named(file: string, name: string, as: "type" | "value"): Printable {
    if (file === this.file) return name;
    const from = relativeModule(this.file, file);
    return as === "type" ? importType(name, from) : importValue(name, from);
  }

  /**
   * The definition `name` refers to as written in `file`: one of the file's own, or
   * `<include>.Name` of a file it includes (the linker has checked that it exists).
   */
  lookup(name: string, file: string): Located {
    const local = this.program.documents.get(file)?.definitions.find((d) => d.name === name);
    if (local !== undefined) return { def: local, file };
    const dot = name.indexOf(".");
    if (dot > 0) {
      const rest = name.slice(dot + 1);
      for (const target of includedFiles(this.program, file, name.slice(0, dot))) {
        const def = this.program.documents.get(target)!.definitions.find((d) => d.name === rest);
        if (def !== undefined) return { def, file: target };
      }
    }
    throw new Error(`internal: ${file} refers to ${name}, which the linker accepted and the emitter cannot find`);
  }
}

/** The module specifier `from` uses to import the generated module of `target`. */
function relativeModule(from: string, target: string): string {
  const rel = posix.relative(posix.dirname(from), thriftOutputName(target).replace(/\.ts$/, ".js"));
  return rel.startsWith(".") ? rel : `./${rel}`;
}

/**
 * The loaded files `file` may mean by the include name `prefix`, most likely first: the linker
 * looks for an include beside the including file, then in the include directories, and names
 * each file by its path inside the first include directory that holds it.
 */
function includedFiles(program: ThriftProgram, file: string, prefix: string): string[] {
  const out: string[] = [];
  const includes = program.documents.get(file)?.includes ?? [];
  // A later include of the same base name wins, as in the linker.
  for (const inc of [...includes].reverse()) {
    if (posix.basename(inc.path).replace(/\.thrift$/, "") !== prefix) continue;
    const beside = posix.normalize(posix.join(posix.dirname(file), inc.path));
    const inRoot = posix.normalize(inc.path);
    const names = [...program.documents.keys()];
    out.push(beside, inRoot, ...names.filter((n) => n.endsWith(`/${inRoot}`)));
  }
  return out.filter((n, i) => program.documents.has(n) && out.indexOf(n) === i);
}
