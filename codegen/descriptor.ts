import { IdlError } from "../idl/errors.js";
import { link } from "../idl/link.js";
import type {
  EnumModel,
  FieldModel,
  FieldType,
  FileModel,
  IdempotencyLevel,
  MessageModel,
  MethodModel,
  OneofModel,
  ScalarType,
  ServiceModel,
  SourceLocation,
} from "../idl/model.js";
import { assignNames, camelCase } from "../idl/names.js";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FieldOptions_JSType as JSType,
  MethodOptions_IdempotencyLevel as Idempotency,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
  type ServiceDescriptorProto,
} from "./plugin/gen/google/protobuf/descriptor.js";
import { WKT_FILES, WKT_MODULE } from "../idl/wkt.js";

const SCALAR_OF: Partial<Record<Type, ScalarType>> = {
  [Type.TYPE_DOUBLE]: "double",
  [Type.TYPE_FLOAT]: "float",
  [Type.TYPE_INT64]: "int64",
  [Type.TYPE_UINT64]: "uint64",
  [Type.TYPE_INT32]: "int32",
  [Type.TYPE_FIXED64]: "fixed64",
  [Type.TYPE_FIXED32]: "fixed32",
  [Type.TYPE_BOOL]: "bool",
  [Type.TYPE_STRING]: "string",
  [Type.TYPE_BYTES]: "bytes",
  [Type.TYPE_UINT32]: "uint32",
  [Type.TYPE_SFIXED32]: "sfixed32",
  [Type.TYPE_SFIXED64]: "sfixed64",
  [Type.TYPE_SINT32]: "sint32",
  [Type.TYPE_SINT64]: "sint64",
};

/**
 * Builds the models of `toGenerate` from protoc's FileDescriptorProtos (a CodeGeneratorRequest's
 * proto_file: every file and its imports), with comments and positions from source_code_info,
 * then links and names them exactly as loadProtoFiles() does for .proto sources.
 */
export function filesFromDescriptors(protoFiles: readonly FileDescriptorProto[], toGenerate: readonly string[]): FileModel[] {
  const byName = new Map<string, FileModel>();
  for (const fd of protoFiles) {
    const file = new FileConverter(fd).convert();
    for (const imp of file.imports) imp.file = byName.get(imp.name);
    byName.set(file.name, file);
  }
  const all = [...byName.values()];
  link(all);
  assignNames(all);
  return toGenerate.map((n) => {
    const f = byName.get(n);
    if (f === undefined) throw new IdlError(n, 0, 0, `protoc did not send ${n}`);
    return f;
  });
}

class FileConverter {
  private readonly locations = new Map<string, { loc: SourceLocation; comment: string | undefined }>();
  private readonly file: FileModel;
  private readonly syntax: FileModel["syntax"];

  constructor(private readonly fd: FileDescriptorProto) {
    const name = fd.name ?? "";
    for (const l of fd.sourceCodeInfo?.location ?? []) {
      const span = l.span;
      if (span.length < 3) continue;
      this.locations.set(l.path.join(","), {
        loc: { file: name, line: span[0]! + 1, column: span[1]! + 1 },
        comment: l.leadingComments,
      });
    }
    const syntax = fd.syntax === undefined || fd.syntax === "" ? "proto2" : fd.syntax;
    if (syntax !== "proto2" && syntax !== "proto3") {
      throw IdlError.at(this.loc([12]), name, `syntax "${syntax}" is not supported; use "proto2" or "proto3"`);
    }
    this.syntax = syntax;
    const comments = [this.locations.get("12")?.comment, this.locations.get("2")?.comment].filter(
      (c): c is string => c !== undefined,
    );
    this.file = {
      name,
      package: fd.package ?? "",
      syntax,
      edition: undefined,
      imports: fd.dependency.map((dep, i) => ({
        name: dep,
        kind: fd.publicDependency.includes(i) ? "public" : fd.weakDependency.includes(i) ? "weak" : "normal",
        loc: this.loc([3, i]),
        file: undefined,
      })),
      messages: [],
      enums: [],
      services: [],
      comments,
      moduleOverride: WKT_FILES.has(name) ? WKT_MODULE : undefined,
    };
  }

  private loc(path: readonly number[]): SourceLocation | undefined {
    return this.locations.get(path.join(","))?.loc;
  }

  private comment(path: readonly number[]): string | undefined {
    return this.locations.get(path.join(","))?.comment;
  }

  convert(): FileModel {
    const fd = this.fd;
    fd.enumType.forEach((e, i) => this.file.enums.push(this.enumOf(e, [5, i], undefined, "")));
    fd.messageType.forEach((m, i) => this.file.messages.push(this.message(m, [4, i], undefined, "", undefined)));
    fd.service.forEach((s, i) => this.file.services.push(this.service(s, [6, i])));
    return this.file;
  }

  private fullName(scope: string, name: string): string {
    const path = scope === "" ? name : `${scope}.${name}`;
    return this.file.package === "" ? path : `${this.file.package}.${path}`;
  }

  private message(
    d: DescriptorProto,
    path: number[],
    parent: MessageModel | undefined,
    scope: string,
    group: { readonly comment: string | undefined } | undefined,
  ): MessageModel {
    const name = d.name ?? "";
    const own = scope === "" ? name : `${scope}.${name}`;
    const fullName = this.fullName(scope, name);
    const msg: MessageModel = {
      kind: "message",
      file: this.file,
      name,
      fullName,
      // A group's comment is recorded on its field.
      comment: this.comment(path) ?? group?.comment,
      deprecated: d.options?.deprecated === true,
      loc: this.loc([...path, 1]),
      parent,
      fields: [],
      oneofs: [],
      messages: [],
      enums: [],
      reservedRanges: d.reservedRange.map((r) => ({ from: r.start ?? 0, to: (r.end ?? 1) - 1, loc: undefined })),
      reservedNames: d.reservedName.map((n) => ({ name: n, loc: undefined })),
      isGroup: group !== undefined,
      tsName: "",
      viewName: "",
    };
    const oneofs = d.oneofDecl.map((o, i): OneofModel | undefined => {
      const members = d.field.filter((f) => f.oneofIndex === i);
      if (members.length === 0 || members.every((f) => f.proto3Optional === true)) return undefined;
      const opath = [...path, 8, i];
      return { name: o.name ?? "", localName: "", fields: [], comment: this.comment(opath), loc: this.loc([...opath, 1]) };
    });
    const mapEntries = new Map<string, DescriptorProto>();
    for (const n of d.nestedType) if (n.options?.mapEntry === true) mapEntries.set(`.${fullName}.${n.name ?? ""}`, n);
    const groups = new Map<string, { comment: string | undefined }>();
    d.field.forEach((f, i) => {
      const fpath = [...path, 2, i];
      const field = this.field(f, fpath, msg, mapEntries);
      if (f.type === Type.TYPE_GROUP) groups.set(f.typeName ?? "", { comment: field.comment });
      if (f.oneofIndex !== undefined && f.proto3Optional !== true) {
        const o = oneofs[f.oneofIndex];
        if (o !== undefined) {
          field.oneof = o;
          o.fields.push(field);
        }
      }
      msg.fields.push(field);
    });
    for (const o of oneofs) if (o !== undefined) msg.oneofs.push(o);
    d.enumType.forEach((e, i) => msg.enums.push(this.enumOf(e, [...path, 4, i], msg, own)));
    d.nestedType.forEach((n, i) => {
      if (n.options?.mapEntry === true) return;
      msg.messages.push(this.message(n, [...path, 3, i], msg, own, groups.get(`.${fullName}.${n.name ?? ""}`)));
    });
    return msg;
  }

  private field(
    f: FieldDescriptorProto,
    path: number[],
    parent: MessageModel,
    mapEntries: Map<string, DescriptorProto>,
  ): FieldModel {
    const name = f.name ?? "";
    const entry = f.type === Type.TYPE_MESSAGE && f.label === Label.LABEL_REPEATED ? mapEntries.get(f.typeName ?? "") : undefined;
    const valueOf = (fd: FieldDescriptorProto): FieldType => {
      const scalar = fd.type === undefined ? undefined : SCALAR_OF[fd.type];
      if (scalar !== undefined) return { kind: "scalar", scalar };
      return { kind: "unresolved", name: fd.typeName ?? "", loc: this.loc([...path, 6]) };
    };
    let type: FieldType;
    let mapKey: ScalarType | undefined;
    if (entry !== undefined) {
      const key = entry.field.find((x) => x.number === 1);
      const value = entry.field.find((x) => x.number === 2);
      mapKey = key?.type === undefined ? undefined : SCALAR_OF[key.type];
      if (mapKey === undefined || value === undefined) {
        throw IdlError.at(this.loc(path), this.file.name, `map field ${name} has an invalid entry type`);
      }
      type = valueOf(value);
    } else {
      type = valueOf(f);
    }
    const repeated = f.label === Label.LABEL_REPEATED;
    const proto3Optional = f.proto3Optional === true;
    let presence: FieldModel["presence"];
    if (f.label === Label.LABEL_REQUIRED) presence = "required";
    else if (repeated || this.syntax === "proto2" || proto3Optional || f.oneofIndex !== undefined) presence = "explicit";
    else presence = "implicit";
    const opts = f.options;
    const jstype = opts?.jstype;
    return {
      parent,
      name,
      jsonName: f.jsonName ?? camelCase(name),
      localName: "",
      number: f.number ?? 0,
      cardinality: entry !== undefined ? "map" : repeated ? "repeated" : "singular",
      presence,
      type,
      mapKey,
      delimited: f.type === Type.TYPE_GROUP,
      packed: repeated && entry === undefined && (this.syntax === "proto3" ? opts?.packed !== false : opts?.packed === true),
      jstype: jstype === JSType.JS_NUMBER ? "number" : jstype === JSType.JS_STRING ? "string" : undefined,
      defaultText: f.defaultValue,
      default: undefined,
      utf8: this.syntax === "proto3" ? "strict" : "lenient",
      oneof: undefined,
      comment: this.comment(path),
      deprecated: opts?.deprecated === true,
      loc: this.loc([...path, 1]),
      typeLoc: this.loc([...path, 6]) ?? this.loc([...path, 5]),
      numberLoc: this.loc([...path, 3]),
    };
  }

  private enumOf(e: EnumDescriptorProto, path: number[], parent: MessageModel | undefined, scope: string): EnumModel {
    const name = e.name ?? "";
    return {
      kind: "enum",
      file: this.file,
      name,
      fullName: this.fullName(scope, name),
      comment: this.comment(path),
      deprecated: e.options?.deprecated === true,
      loc: this.loc([...path, 1]),
      parent,
      values: e.value.map((v, i) => ({
        name: v.name ?? "",
        localName: "",
        number: v.number ?? 0,
        comment: this.comment([...path, 2, i]),
        deprecated: v.options?.deprecated === true,
        loc: this.loc([...path, 2, i, 1]),
      })),
      closed: this.syntax === "proto2",
      allowAlias: e.options?.allowAlias === true,
      reservedRanges: e.reservedRange.map((r) => ({ from: r.start ?? 0, to: r.end ?? 0, loc: undefined })),
      reservedNames: e.reservedName.map((n) => ({ name: n, loc: undefined })),
      tsName: "",
    };
  }

  private service(s: ServiceDescriptorProto, path: number[]): ServiceModel {
    const name = s.name ?? "";
    const methods: MethodModel[] = s.method.map((m, i) => {
      const mpath = [...path, 2, i];
      const client = m.clientStreaming === true;
      const server = m.serverStreaming === true;
      return {
        name: m.name ?? "",
        localName: "",
        input: { kind: "unresolved", name: m.inputType ?? "", loc: this.loc([...mpath, 2]) },
        output: { kind: "unresolved", name: m.outputType ?? "", loc: this.loc([...mpath, 3]) },
        kind: client ? (server ? "bidi_streaming" : "client_streaming") : server ? "server_streaming" : "unary",
        idempotency: idempotencyName(m.options?.idempotencyLevel),
        comment: this.comment(mpath),
        deprecated: m.options?.deprecated === true,
        loc: this.loc([...mpath, 1]),
        inputLoc: this.loc([...mpath, 2]),
        outputLoc: this.loc([...mpath, 3]),
      };
    });
    return {
      kind: "service",
      file: this.file,
      name,
      fullName: this.fullName("", name),
      comment: this.comment(path),
      deprecated: s.options?.deprecated === true,
      loc: this.loc([...path, 1]),
      methods,
      tsName: "",
    };
  }
}

function idempotencyName(level: Idempotency | undefined): IdempotencyLevel {
  switch (level) {
    case Idempotency.NO_SIDE_EFFECTS:
      return "NO_SIDE_EFFECTS";
    case Idempotency.IDEMPOTENT:
      return "IDEMPOTENT";
    default:
      return "IDEMPOTENCY_UNKNOWN";
  }
}
