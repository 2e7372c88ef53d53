/**
 * The syntax tree of a Thrift IDL file, as parse.ts reads it and link.ts resolves it. It keeps
 * what the language says (requiredness, defaults, annotations, doc comments, locations); the
 * IDL-neutral model that the emitter prints is built from it.
 */
import type { SourceLocation } from "../model.js";

/** Thrift's base types. `byte` and `i8` are the same type; `uuid` is 16 bytes (Thrift 0.19). */
export type ThriftBaseType = "bool" | "byte" | "i8" | "i16" | "i32" | "i64" | "double" | "string" | "binary" | "uuid";

/** `(key = "value", ...)` after a type, field, function or definition. */
export type Annotations = Readonly<Record<string, string>>;

/** A type as written: a base type, a container, or a name that link.ts resolves. */
export type ThriftType =
  | { readonly kind: "base"; readonly name: ThriftBaseType; readonly annotations: Annotations }
  | { readonly kind: "list"; readonly element: ThriftType; readonly annotations: Annotations }
  | { readonly kind: "set"; readonly element: ThriftType; readonly annotations: Annotations }
  | { readonly kind: "map"; readonly key: ThriftType; readonly value: ThriftType; readonly annotations: Annotations }
  | { readonly kind: "named"; readonly name: string; readonly loc: SourceLocation; readonly annotations: Annotations };

/** A constant value as written; `identifier` names a constant or an enum value (`Color.RED`). */
export type ConstValue =
  | { readonly kind: "int"; readonly value: bigint; readonly loc: SourceLocation }
  | { readonly kind: "double"; readonly value: number; readonly loc: SourceLocation }
  | { readonly kind: "string"; readonly value: string; readonly loc: SourceLocation }
  | { readonly kind: "identifier"; readonly name: string; readonly loc: SourceLocation }
  | { readonly kind: "list"; readonly items: readonly ConstValue[]; readonly loc: SourceLocation }
  | { readonly kind: "map"; readonly entries: readonly (readonly [ConstValue, ConstValue])[]; readonly loc: SourceLocation };

/** `required`, `optional`, or neither ("default": written when set, always read). */
export type Requiredness = "required" | "optional" | "default";

/** A field of a struct, union or exception, a function parameter, or a `throws` entry. */
export interface ThriftField {
  /** The field id; negative when the IDL gave none (-1, -2, ... in order, as Apache Thrift does). */
  readonly id: number;
  readonly requiredness: Requiredness;
  readonly type: ThriftType;
  readonly name: string;
  readonly defaultValue: ConstValue | undefined;
  readonly annotations: Annotations;
  readonly doc: string | undefined;
  readonly loc: SourceLocation;
}

interface Definition {
  readonly name: string;
  readonly annotations: Annotations;
  readonly doc: string | undefined;
  readonly loc: SourceLocation;
}

/** A struct, union or exception: fields keyed by id. */
export interface ThriftStruct extends Definition {
  readonly kind: "struct" | "union" | "exception";
  readonly fields: readonly ThriftField[];
}

/** One value of an enum. */
export interface ThriftEnumValue {
  readonly name: string;
  readonly value: number;
  readonly annotations: Annotations;
  readonly doc: string | undefined;
  readonly loc: SourceLocation;
}

/** An enum: i32 values, implicit ones counting up from the previous value (from 0). */
export interface ThriftEnum extends Definition {
  readonly kind: "enum";
  readonly values: readonly ThriftEnumValue[];
}

/** `typedef <type> Name`. */
export interface ThriftTypedef extends Definition {
  readonly kind: "typedef";
  readonly type: ThriftType;
}

/** `const <type> NAME = value`. */
export interface ThriftConst extends Definition {
  readonly kind: "const";
  readonly type: ThriftType;
  readonly value: ConstValue;
}

/** A service method. A oneway function returns void and declares no exceptions. */
export interface ThriftFunction {
  readonly name: string;
  readonly oneway: boolean;
  /** The return type; undefined for `void`. */
  readonly returns: ThriftType | undefined;
  readonly params: readonly ThriftField[];
  readonly throws: readonly ThriftField[];
  readonly annotations: Annotations;
  readonly doc: string | undefined;
  readonly loc: SourceLocation;
}

/** A service, possibly `extends` another (whose functions it serves too). */
export interface ThriftService extends Definition {
  readonly kind: "service";
  /** The service extended, as written (`Base` or `shared.Base`). */
  readonly extends: string | undefined;
  readonly extendsLoc: SourceLocation | undefined;
  readonly functions: readonly ThriftFunction[];
}

/** Any top-level definition. */
export type ThriftDefinition = ThriftStruct | ThriftEnum | ThriftTypedef | ThriftConst | ThriftService;

/** One parsed .thrift file. */
export interface ThriftDocument {
  /** The file's name as includes name it. */
  readonly file: string;
  /** `include "path"`, in order. */
  readonly includes: readonly { readonly path: string; readonly loc: SourceLocation }[];
  /** `namespace <scope> <name>`: scope to name (`*` for every language). */
  readonly namespaces: Readonly<Record<string, string>>;
  readonly definitions: readonly ThriftDefinition[];
  /** The doc comment at the head of the file, if one stands apart from the first definition. */
  readonly doc: string | undefined;
}
