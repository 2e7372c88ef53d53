/**
 * The codec schemas of linked Thrift IDL: what runtime/codec/thrift's struct codec needs to
 * encode and decode a struct, a union, an exception, or a function's arguments and result.
 */
import type { ThriftStructSchema, ThriftTypeSchema } from "../../runtime/codec/thrift/struct.js";
import type { ThriftField, ThriftFunction, ThriftStruct } from "./ast.js";
import type { ResolvedType, ThriftProgram } from "./link.js";

/** Builds codec schemas from a linked program; one schema per definition, shared by every use. */
export class ThriftSchemas {
  private readonly structs = new Map<ThriftStruct, ThriftStructSchema>();

  /**
   * `make`, when given, says how a decode makes the empty value of a struct, union or exception
   * (by qualified name and kind): run-time loaders make exceptions instances of their classes.
   */
  constructor(
    private readonly program: ThriftProgram,
    private readonly make?: (name: string, kind: ThriftStruct["kind"]) => (() => object) | undefined,
  ) {}

  /** The schema of the struct, union or exception `name` defined in `file`. */
  struct(name: string, file: string): ThriftStructSchema {
    const def = this.program.documents.get(file)?.definitions.find((d) => d.name === name);
    if (def === undefined || (def.kind !== "struct" && def.kind !== "union" && def.kind !== "exception")) {
      throw new Error(`${file} defines no struct, union or exception named ${name}`);
    }
    return this.ofStruct(def, file);
  }

  /**
   * The schemas of a function's wire structs, as Apache Thrift names them: `<fn>_args` (the
   * parameters) and `<fn>_result` (field 0 `success` for a non-void result, then one field per
   * declared exception).
   */
  functionStructs(fn: ThriftFunction, file: string, service: string): { args: ThriftStructSchema; result: ThriftStructSchema } {
    const args: ThriftStructSchema = { name: `${service}.${fn.name}_args`, kind: "struct", fields: fn.params.map((p) => this.field(p, file, true)) };
    const resultFields = fn.throws.map((t) => this.field(t, file, true));
    if (fn.returns !== undefined) {
      resultFields.unshift({ id: 0, name: "success", type: this.type(this.program.resolve(fn.returns, file)), requiredness: "optional" });
    }
    return { args, result: { name: `${service}.${fn.name}_result`, kind: "struct", fields: resultFields } };
  }

  private ofStruct(def: ThriftStruct, file: string): ThriftStructSchema {
    const known = this.structs.get(def);
    if (known !== undefined) return known;
    const fields: ThriftStructSchema["fields"][number][] = [];
    const name = qualified(def.name, file);
    const make = this.make?.(name, def.kind);
    const schema: ThriftStructSchema = make === undefined ? { name, kind: def.kind, fields } : { name, kind: def.kind, fields, make };
    this.structs.set(def, schema);
    for (const f of def.fields) fields.push(this.field(f, file, def.kind === "union"));
    return schema;
  }

  /** A field; union members and function parameters are never required on the wire. */
  private field(f: ThriftField, file: string, neverRequired: boolean): ThriftStructSchema["fields"][number] {
    return {
      id: f.id,
      name: f.name,
      type: this.type(this.program.resolve(f.type, file)),
      requiredness: neverRequired && f.requiredness === "required" ? "default" : f.requiredness,
    };
  }

  private type(t: ResolvedType): ThriftTypeSchema {
    switch (t.kind) {
      case "base":
        return { t: t.name === "i8" ? "byte" : t.name };
      case "list":
      case "set":
        return { t: t.kind, elem: this.type(t.element) };
      case "map":
        return { t: "map", key: this.type(t.key), value: this.type(t.value) };
      case "enum":
        return { t: "enum", name: qualified(t.def.name, t.file) };
      case "struct": {
        const { def, file } = t;
        return { t: "struct", struct: () => this.ofStruct(def, file) };
      }
    }
  }
}

/** A definition's name qualified by its file's include name (`shared.Base`). */
function qualified(name: string, file: string): string {
  const base = file.replace(/^.*\//, "").replace(/\.thrift$/, "");
  return `${base}.${name}`;
}
