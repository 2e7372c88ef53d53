/**
 * The IDL-neutral model the emitters read: files, messages, fields, enums and services, with
 * every protobuf rule already decided (presence, packing, closed enums, string validation, group
 * encoding), type references resolved and TypeScript names chosen.
 *
 * Two front ends build it: parse.ts (a .proto source through protobufjs's parser) and
 * codegen/descriptor.ts (protoc's FileDescriptorProto, for the plugin). link.ts resolves references and
 * checks the rules both share; names.ts picks the TypeScript names.
 */

/** The scalar types of protobuf. */
export type ScalarType =
  | "double"
  | "float"
  | "int64"
  | "uint64"
  | "int32"
  | "fixed64"
  | "fixed32"
  | "bool"
  | "string"
  | "bytes"
  | "uint32"
  | "sfixed32"
  | "sfixed64"
  | "sint32"
  | "sint64";

/** Every scalar type name, in descriptor order. */
export const SCALAR_TYPES: readonly ScalarType[] = [
  "double",
  "float",
  "int64",
  "uint64",
  "int32",
  "fixed64",
  "fixed32",
  "bool",
  "string",
  "bytes",
  "uint32",
  "sfixed32",
  "sfixed64",
  "sint32",
  "sint64",
];

/** Whether `name` is one of protobuf's scalar type names. */
export function isScalarType(name: string): name is ScalarType {
  return (SCALAR_TYPES as readonly string[]).includes(name);
}

/** The 64-bit integer scalar types, whose JavaScript representation is configurable. */
export function isInt64Type(t: ScalarType): boolean {
  return t === "int64" || t === "uint64" || t === "sint64" || t === "fixed64" || t === "sfixed64";
}

/** How 64-bit integers are represented in TypeScript. */
export type Int64Mode = "bigint" | "number" | "string";

/** A position in a .proto file: 1-based line and column. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** A reference to a type that link.ts has not resolved yet (only seen before linking). */
export interface UnresolvedType {
  readonly kind: "unresolved";
  /** The name as written (`Foo`, `.pkg.Foo`, `pkg.Outer.Inner`). */
  readonly name: string;
  /** Where the reference is written, for errors. */
  readonly loc: SourceLocation | undefined;
}

/** The type of a field value (of a map, the value type). */
export type FieldType =
  | { readonly kind: "scalar"; readonly scalar: ScalarType }
  | { readonly kind: "enum"; readonly enum: EnumModel }
  | { readonly kind: "message"; readonly message: MessageModel }
  | UnresolvedType;

/** A resolved field type (what emitters see). */
export type ResolvedType = Exclude<FieldType, UnresolvedType>;

/** A field default (proto2 `[default = ...]`), typed by the field's type. */
export type DefaultValue = number | bigint | boolean | string | Uint8Array | EnumValueModel;

/** One .proto file. */
export interface FileModel {
  /** The file's name relative to its import root, as imports name it: `foo/bar.proto`. */
  readonly name: string;
  readonly package: string;
  readonly syntax: "proto2" | "proto3" | "editions";
  /** The edition of an `edition = "..."` file. */
  readonly edition: string | undefined;
  readonly imports: ImportModel[];
  /** Top-level messages in declaration order. */
  readonly messages: MessageModel[];
  /** Top-level enums in declaration order. */
  readonly enums: EnumModel[];
  readonly services: ServiceModel[];
  /** Leading comments of the syntax and package statements (raw, in that order). */
  readonly comments: readonly string[];
  /** Where generated code imports this file's symbols from, when not a relative path. */
  moduleOverride: string | undefined;
}

/** An `import` statement. */
export interface ImportModel {
  readonly name: string;
  readonly kind: "normal" | "public" | "weak";
  readonly loc: SourceLocation | undefined;
  /** The imported file, once loaded. */
  file: FileModel | undefined;
}

/** What declarations of a file share: where they are, what the IDL says about them. */
export interface DeclBase {
  readonly file: FileModel;
  /** The simple name as declared. */
  readonly name: string;
  /** The fully qualified name without a leading dot: `pkg.Outer.Inner`. */
  readonly fullName: string;
  readonly comment: string | undefined;
  readonly deprecated: boolean;
  readonly loc: SourceLocation | undefined;
}

/** A message (or the body of a proto2 group). */
export interface MessageModel extends DeclBase {
  readonly kind: "message";
  readonly parent: MessageModel | undefined;
  /** Fields in declaration order, oneof members included. */
  readonly fields: FieldModel[];
  /** Real oneofs (proto3 `optional` fields are not oneofs here). */
  readonly oneofs: OneofModel[];
  readonly messages: MessageModel[];
  readonly enums: EnumModel[];
  /** Reserved field numbers (inclusive ranges) and names. */
  readonly reservedRanges: ReservedRange[];
  readonly reservedNames: ReservedName[];
  /** Whether this type is the body of a group field. */
  readonly isGroup: boolean;
  /** TypeScript name of the interface and codec (`Outer_Inner`), set by names.ts. */
  tsName: string;
  /** TypeScript name of the view interface (`Outer_InnerView`), set by names.ts. */
  viewName: string;
}

/** A reserved range of numbers, inclusive at both ends. */
export interface ReservedRange {
  readonly from: number;
  readonly to: number;
  readonly loc: SourceLocation | undefined;
}

/** A reserved name. */
export interface ReservedName {
  readonly name: string;
  readonly loc: SourceLocation | undefined;
}

/** How a field tracks presence. */
export type Presence =
  /** proto3 singular scalars: absent means zero, zero is not written. */
  | "implicit"
  /** proto2 optional, proto3 `optional`, oneof members, message fields: `x?: T`. */
  | "explicit"
  /** proto2 `required`: always written, decode fails without it. */
  | "required";

/** One field of a message. */
export interface FieldModel {
  readonly parent: MessageModel;
  /** The name as declared (for a group field, the group's name lowercased, as protoc does). */
  readonly name: string;
  readonly jsonName: string;
  /** TypeScript property name, set by names.ts. */
  localName: string;
  readonly number: number;
  readonly cardinality: "singular" | "repeated" | "map";
  /** How presence is tracked (message-typed fields are made explicit by link.ts). */
  presence: Presence;
  /** Value type (for a map, the value's type). */
  type: FieldType;
  /** Key type of a map field. */
  readonly mapKey: ScalarType | undefined;
  /** Encoded as a group (start/end tags) instead of length-delimited. */
  readonly delimited: boolean;
  /** Repeated scalars/enums written packed (link.ts clears it for types that cannot pack). */
  packed: boolean;
  /** `[jstype = ...]` on a 64-bit field: "number" or "string" override the generator default. */
  readonly jstype: "number" | "string" | undefined;
  /** The raw default as written (resolved to `default` by link.ts). */
  readonly defaultText: string | undefined;
  /** The declared default, once resolved. */
  default: DefaultValue | undefined;
  /** Whether string values are validated as UTF-8 on decode. */
  readonly utf8: "strict" | "lenient";
  oneof: OneofModel | undefined;
  readonly comment: string | undefined;
  readonly deprecated: boolean;
  readonly loc: SourceLocation | undefined;
  /** Where the type name is written. */
  readonly typeLoc: SourceLocation | undefined;
  /** Where the field number is written. */
  readonly numberLoc: SourceLocation | undefined;
}

/** A oneof: at most one of its fields is set. */
export interface OneofModel {
  readonly name: string;
  /** TypeScript property name, set by names.ts. */
  localName: string;
  readonly fields: FieldModel[];
  readonly comment: string | undefined;
  readonly loc: SourceLocation | undefined;
}

/** An enum. */
export interface EnumModel extends DeclBase {
  readonly kind: "enum";
  readonly parent: MessageModel | undefined;
  readonly values: EnumValueModel[];
  /** Closed enums (proto2) keep unknown numbers out of fields; open ones (proto3) keep any. */
  readonly closed: boolean;
  readonly allowAlias: boolean;
  readonly reservedRanges: ReservedRange[];
  readonly reservedNames: ReservedName[];
  /** TypeScript name, set by names.ts. */
  tsName: string;
}

/** One value of an enum. */
export interface EnumValueModel {
  readonly name: string;
  /** TypeScript member name, set by names.ts. */
  localName: string;
  readonly number: number;
  readonly comment: string | undefined;
  readonly deprecated: boolean;
  readonly loc: SourceLocation | undefined;
}

/** A service. */
export interface ServiceModel extends DeclBase {
  readonly kind: "service";
  readonly methods: MethodModel[];
  /** TypeScript name of the descriptor constant, set by names.ts. */
  tsName: string;
}

/** The streaming kind of a method, as in runtime/rpc/descriptors.ts. */
export type MethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/** The `idempotency_level` method option. */
export type IdempotencyLevel = "IDEMPOTENCY_UNKNOWN" | "NO_SIDE_EFFECTS" | "IDEMPOTENT";

/** One RPC method. */
export interface MethodModel {
  readonly name: string;
  /** Key in the descriptor's `methods` (lowerCamelCase), set by names.ts. */
  localName: string;
  input: FieldType;
  output: FieldType;
  readonly kind: MethodKind;
  readonly idempotency: IdempotencyLevel;
  readonly comment: string | undefined;
  readonly deprecated: boolean;
  readonly loc: SourceLocation | undefined;
  readonly inputLoc: SourceLocation | undefined;
  readonly outputLoc: SourceLocation | undefined;
}

/** Every message of a file, depth first (a message before its nested messages). */
export function allMessages(file: FileModel): MessageModel[] {
  const out: MessageModel[] = [];
  const walk = (ms: readonly MessageModel[]): void => {
    for (const m of ms) {
      out.push(m);
      walk(m.messages);
    }
  };
  walk(file.messages);
  return out;
}

/** Every enum of a file, top-level first, then nested ones in message order. */
export function allEnums(file: FileModel): EnumModel[] {
  const out: EnumModel[] = [...file.enums];
  for (const m of allMessages(file)) out.push(...m.enums);
  return out;
}

/** The resolved type of a field or method; throws if link.ts has not run. */
export function resolved(t: FieldType): ResolvedType {
  if (t.kind === "unresolved") throw new Error(`internal: type ${t.name} was never resolved`);
  return t;
}

/** The message type of a method input/output after linking. */
export function resolvedMessage(t: FieldType): MessageModel {
  const r = resolved(t);
  if (r.kind !== "message") throw new Error("internal: method type is not a message");
  return r.message;
}
