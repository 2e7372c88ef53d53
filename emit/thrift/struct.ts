import { IdlError } from "../../idl/errors.js";
import type { Requiredness, ThriftField, ThriftStruct } from "../../idl/thrift/ast.js";
import type { ResolvedType } from "../../idl/thrift/link.js";
import { softObject, type Printable } from "../printer.js";
import { checkPropertyName, propertyKey, qualifiedName, type ThriftFileContext } from "./context.js";
import { constValue, schemaType, tsType } from "./values.js";

/** One field of a schema as printed. */
export interface SchemaField {
  readonly id: number;
  readonly name: string;
  readonly type: ResolvedType;
  readonly requiredness: Requiredness;
}

/**
 * Prints a `ThriftStructSchema` object literal, one field a line (on one line when it has no
 * fields): `open` before its `{`, `close` after its `}`, and `make` (how a decode makes the empty
 * value) when given.
 */
export function printSchema(
  ctx: ThriftFileContext,
  schema: { readonly name: string; readonly kind: ThriftStruct["kind"]; readonly fields: readonly SchemaField[]; readonly make?: Printable },
  open: Printable,
  close: string,
): void {
  const { f } = ctx;
  if (schema.fields.length === 0 && schema.make === undefined) {
    f.print(open, softObject([`name: "${schema.name}"`, `kind: "${schema.kind}"`, "fields: []"]), close);
    return;
  }
  f.print(open, "{");
  f.indented(() => {
    f.print(`name: "${schema.name}",`);
    f.print(`kind: "${schema.kind}",`);
    if (schema.fields.length === 0) f.print("fields: [],");
    else {
      f.block("fields: [", () => {
        for (const field of schema.fields) {
          const entry = [`id: ${field.id}`, `name: ${JSON.stringify(field.name)}`, ["type: ", schemaType(ctx, field.type)], `requiredness: "${field.requiredness}"`];
          f.print(softObject(entry), ",");
        }
      }, "],");
    }
    if (schema.make !== undefined) f.print("make: ", schema.make, ",");
  });
  f.print("}", close);
}

/**
 * The fields of a definition as its schema has them. `neverRequired`: union members, function
 * arguments and result fields, which are never required on the wire.
 */
export function schemaFields(ctx: ThriftFileContext, fields: readonly ThriftField[], file: string, neverRequired: boolean): SchemaField[] {
  return fields.map((field) => ({
    id: field.id,
    name: field.name,
    type: ctx.program.resolve(field.type, file),
    requiredness: neverRequired && field.requiredness === "required" ? "default" : field.requiredness,
  }));
}

/**
 * The IDL's default values of `fields` as an object literal (`{ limit: DEFAULT_LIMIT }`), or
 * undefined when none has one.
 */
export function defaultsObject(ctx: ThriftFileContext, fields: readonly ThriftField[]): Printable | undefined {
  const items = fields
    .filter((field) => field.defaultValue !== undefined)
    .map((field) => [propertyKey(field.name), ": ", constValue(ctx, field.defaultValue!, ctx.program.resolve(field.type, ctx.file), ctx.file)]);
  return items.length === 0 ? undefined : softObject(items);
}

/**
 * Prints the properties of an interface or class for `fields`, each `x?: T` when `optional` says
 * so and `x: T` otherwise; `prefix` goes before each (`declare ` in a class).
 */
export function printFieldProperties(ctx: ThriftFileContext, fields: readonly ThriftField[], optional: (field: ThriftField) => boolean, prefix = ""): void {
  for (const field of fields) {
    ctx.f.jsDoc(field.doc);
    ctx.f.print(prefix, propertyKey(field.name), optional(field) ? "?: " : ": ", tsType(ctx, field.type, ctx.file), ";");
  }
}

/**
 * Emits a struct or union: an interface of its fields (values have unset fields absent) and the
 * codec of the same name, `thriftStruct(schema, { defaults })`, whose `create()` fills in the IDL's
 * default values.
 */
export function emitThriftStruct(ctx: ThriftFileContext, s: ThriftStruct): void {
  const { f } = ctx;
  const name = ctx.nameOf({ def: s, file: ctx.file });
  for (const field of s.fields) checkPropertyName(field.name, field.loc, ctx.file, `${s.kind} ${s.name}: field ${field.name}`);
  const union = s.kind === "union";
  const doc = [s.doc, union ? "A union: exactly one field is set." : undefined].filter((d) => d !== undefined).join("\n\n");
  f.jsDoc(doc === "" ? undefined : doc);
  if (s.fields.length === 0) f.print(`export interface ${name} {}`);
  // Required fields are always set; the others are absent when unset. A union's are all optional.
  else f.block(`export interface ${name} {`, () => printFieldProperties(ctx, s.fields, (field) => union || field.requiredness !== "required"));
  f.print();
  printCodec(ctx, s, name, name, undefined);
}

/**
 * Names an exception field may not have: the Error's own properties (`name`, `stack`) and the
 * members of Object.prototype, which the field would replace on the instance.
 */
const EXCEPTION_CLASHES: ReadonlySet<string> = new Set([
  "name",
  "stack",
  "constructor",
  "toString",
  "toLocaleString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
]);

/**
 * Emits an exception: a class extending ThriftException with its fields as properties (a
 * `message` field is the Error's message), named after the exception on its prototype, and its
 * codec `<Name>Codec`, whose schema makes instances of the class, so that decoding one gives an
 * `instanceof` the class. A field named like a property every Error or object has is refused.
 */
export function emitThriftException(ctx: ThriftFileContext, s: ThriftStruct): void {
  const { f } = ctx;
  const name = ctx.nameOf({ def: s, file: ctx.file });
  for (const field of s.fields) {
    checkPropertyName(field.name, field.loc, ctx.file, `exception ${s.name}: field ${field.name}`);
    if (EXCEPTION_CLASHES.has(field.name)) {
      throw IdlError.at(
        field.loc,
        ctx.file,
        `exception ${s.name}: a field named ${field.name} would replace the ${field.name === "name" || field.name === "stack" ? "Error's" : "object's"} own ${field.name}; rename the field (on the wire only its id counts)`,
      );
    }
    const type = ctx.program.resolve(field.type, ctx.file);
    if (field.name === "message" && !(type.kind === "base" && type.name === "string")) {
      throw IdlError.at(field.loc, ctx.file, `exception ${s.name}: a field named message is the Error's message and must be a string; rename the field or make it a string`);
    }
  }
  f.jsDoc(s.doc);
  const head = ["export class ", name, " extends ", ctx.rt("ThriftException")];
  if (s.fields.length === 0) f.print(head, " {}");
  else f.block([head, " {"], () => {
    // Every Error has a message (`""` when none was set): that field is never absent.
    printFieldProperties(ctx, s.fields, (field) => field.requiredness !== "required" && field.name !== "message", "declare ");
    const keys = s.fields.map((field) => JSON.stringify(field.name)).join(" | ");
    f.print();
    f.jsDoc("The exception with the fields given (`create()` of its codec also fills in the IDL's defaults).");
    f.block(`constructor(fields?: Partial<Pick<${name}, ${keys}>>) {`, () => f.print("super(fields);"));
  });
  f.print(`Object.defineProperty(${name}.prototype, "name", { value: ${JSON.stringify(s.name)}, writable: true, configurable: true });`);
  f.print();
  const codec = ctx.names.exceptionCodecs.get(s)!;
  f.jsDoc(`The codec of {@link ${name}}: decoding makes instances of the class.`);
  printCodec(ctx, s, name, codec, ["() => new ", name, "()"]);
}

/** `export const <codec>: ThriftStructCodec<T> = thriftStruct(schema[, { defaults }]);` */
function printCodec(ctx: ThriftFileContext, s: ThriftStruct, type: string, codec: string, make: Printable | undefined): void {
  const { f } = ctx;
  const schema = { name: qualifiedName(s.name, ctx.file), kind: s.kind, fields: schemaFields(ctx, s.fields, ctx.file, s.kind === "union"), ...(make === undefined ? {} : { make }) };
  const head: Printable = [`export const ${codec}: `, ctx.rtType("ThriftStructCodec"), `<${type}> = `, ctx.rt("thriftStruct")];
  const defaults = defaultsObject(ctx, s.fields);
  if (defaults === undefined) {
    printSchema(ctx, schema, [head, "("], ");");
    return;
  }
  // The defaults are a Partial<T>: T is given, lest TypeScript infer it from them.
  f.print(head, `<${type}>(`);
  f.indented(() => {
    printSchema(ctx, schema, "", ",");
    f.print("{ defaults: () => (", defaults, ") },");
  });
  f.print(");");
}
