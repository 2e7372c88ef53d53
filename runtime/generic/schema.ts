import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { IdlError } from "../../idl/errors.js";
import {
  allEnums,
  allMessages,
  resolvedMessage,
  type EnumModel,
  type FileModel,
  type Int64Mode,
  type MessageModel,
  type MethodModel,
  type ServiceModel,
} from "../../idl/model.js";
import { loadProtoFiles } from "../../idl/parse.js";
import type { AnyMessageCodec } from "../codec/types.js";
import type { MethodDescriptor, ServiceDescriptor } from "../rpc/descriptors.js";
import { Code, RpcError } from "../rpc/errors.js";
import { CodecCompiler } from "../../emit/compile.js";
import { JsonMapper, type JsonReadOptions, type JsonValue, type JsonWriteOptions } from "./json.js";

/** Where the .proto files of a schema come from. */
export interface SchemaSource {
  /**
   * The .proto files: paths on disk (inside an include directory, which gives their import
   * name), names relative to an include directory (as grpcurl's `-proto`: `feed.proto` with
   * `-I proto` is `proto/feed.proto`), or import names of in-memory `sources`. Their imports are
   * loaded too.
   */
  proto: readonly string[];
  /** Import roots, searched in order (`-I`). Default: the current directory. */
  includeDirs?: readonly string[];
  /** In-memory .proto sources by import name, searched before the include directories. */
  sources?: Readonly<Record<string, string>>;
}

/** Options of ProtoSchema.load. */
export interface SchemaOptions extends SchemaSource {
  /**
   * How 64-bit integers are represented in messages (`meridian gen --int64`): bigint (default),
   * number or string; a field's `[jstype]` overrides it, as in generated code.
   */
  int64?: Int64Mode;
}

/**
 * .proto files loaded at run time: their messages, enums and services, and for each message a
 * codec compiled on first use that writes the same bytes, and builds the same objects, as the
 * code `meridian gen` generates from the same files. Parsing is the generator's own
 * (idl/parse.ts), so a file the generator accepts loads here, and one it refuses is refused
 * with the same `file:line:column` message.
 */
export class ProtoSchema {
  /** The files named in `proto`, linked (their imports are reachable through `imports`). */
  readonly files: readonly FileModel[];
  /** Every message, enum and service of the files and everything they import, by full name. */
  private readonly messageIndex = new Map<string, MessageModel>();
  private readonly enumIndex = new Map<string, EnumModel>();
  private readonly serviceIndex = new Map<string, ServiceModel>();
  private readonly compiler: CodecCompiler;
  private readonly mapper: JsonMapper;
  private readonly descriptors = new Map<string, ServiceDescriptor>();

  private constructor(files: readonly FileModel[], readonly int64: Int64Mode) {
    this.files = files;
    const seen = new Set<FileModel>();
    const visit = (f: FileModel): void => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const imp of f.imports) if (imp.file !== undefined) visit(imp.file);
      for (const m of allMessages(f)) this.messageIndex.set(m.fullName, m);
      for (const e of allEnums(f)) this.enumIndex.set(e.fullName, e);
      for (const s of f.services) this.serviceIndex.set(s.fullName, s);
    };
    for (const f of files) visit(f);
    this.compiler = new CodecCompiler(int64);
    this.mapper = new JsonMapper(this);
  }

  /**
   * Loads `options.proto` and their imports. A file that cannot be read or parsed, or breaks a
   * protobuf rule, raises an RpcError INVALID_ARGUMENT whose message is `file:line:column: what`
   * (its cause is the IdlError).
   */
  static load(options: SchemaOptions): ProtoSchema {
    if (options.proto.length === 0) throw new RpcError(Code.INVALID_ARGUMENT, "no .proto files given: pass proto: [\"file.proto\", ...]");
    let files: FileModel[];
    try {
      files = loadProtoFiles(options.proto.map((f) => locate(f, options)), {
        ...(options.includeDirs === undefined ? {} : { includeDirs: options.includeDirs }),
        ...(options.sources === undefined ? {} : { sources: options.sources }),
      });
    } catch (e) {
      if (e instanceof IdlError) throw new RpcError(Code.INVALID_ARGUMENT, e.message, { cause: e });
      throw e;
    }
    return new ProtoSchema(files, options.int64 ?? "bigint");
  }

  /** Wraps files already loaded by `loadProtoFiles` (idl/parse.ts). */
  static fromFiles(files: readonly FileModel[], int64: Int64Mode = "bigint"): ProtoSchema {
    return new ProtoSchema(files, int64);
  }

  /** A message by full name (`feed.Video`, a leading dot allowed), or undefined. */
  message(name: string): MessageModel | undefined {
    return this.messageIndex.get(stripDot(name));
  }

  /** An enum by full name, or undefined. */
  enumType(name: string): EnumModel | undefined {
    return this.enumIndex.get(stripDot(name));
  }

  /** A service by full name, or undefined. */
  service(name: string): ServiceModel | undefined {
    return this.serviceIndex.get(stripDot(name));
  }

  /** Every message reachable from the files, by full name. */
  messages(): MessageModel[] {
    return [...this.messageIndex.values()];
  }

  /** Every service of the files and their imports, in load order. */
  services(): ServiceModel[] {
    return [...this.serviceIndex.values()];
  }

  /** The message `name`, or an RpcError INVALID_ARGUMENT naming the types that exist. */
  requireMessage(name: string): MessageModel {
    const m = this.message(name);
    if (m === undefined) {
      throw new RpcError(Code.INVALID_ARGUMENT, `unknown message type ${name}: the .proto files loaded define ${listed(nearFirst(name, this.messageIndex.keys()))}`);
    }
    return m;
  }

  /** The service `name`, or an RpcError INVALID_ARGUMENT naming the services that exist. */
  requireService(name: string): ServiceModel {
    const s = this.service(name);
    if (s === undefined) {
      throw new RpcError(Code.INVALID_ARGUMENT, `unknown service ${name}: the .proto files loaded define ${listed(nearFirst(name, this.serviceIndex.keys()))}`);
    }
    return s;
  }

  /** The codec of a message (a model or its full name), compiled on first use. */
  codec(message: MessageModel | string): AnyMessageCodec {
    return this.compiler.codec(typeof message === "string" ? this.requireMessage(message) : message);
  }

  /**
   * A ServiceDescriptor of `service` with compiled codecs, shaped as the generated one (methods
   * under their lowerCamelCase keys): what createClient, createServer and the transports take.
   */
  descriptor(service: ServiceModel | string): ServiceDescriptor {
    const s = typeof service === "string" ? this.requireService(service) : service;
    let d = this.descriptors.get(s.fullName);
    if (d === undefined) {
      const methods: Record<string, MethodDescriptor> = {};
      for (const m of s.methods) methods[m.localName] = this.methodDescriptor(m);
      d = { typeName: s.fullName, methods };
      this.descriptors.set(s.fullName, d);
    }
    return d;
  }

  private methodDescriptor(m: MethodModel): MethodDescriptor {
    return {
      name: m.name,
      kind: m.kind,
      input: this.codec(resolvedMessage(m.input)),
      output: this.codec(resolvedMessage(m.output)),
      idempotency: m.idempotency,
    };
  }

  /**
   * A message as canonical protobuf JSON (proto3 JSON mapping). Raises JsonError (an RpcError
   * INVALID_ARGUMENT naming the field) for what JSON cannot hold: an Any of a type not loaded, a
   * Timestamp out of range, a Value without a kind.
   */
  toJson(message: MessageModel | string, msg: object, options?: JsonWriteOptions): JsonValue {
    return this.mapper.toJson(this.model(message), msg, options);
  }

  /**
   * A message from canonical protobuf JSON (field names as lowerCamelCase JSON names or as
   * declared). Raises JsonError naming the field for JSON that does not fit: a wrong type, an
   * unknown field (unless `ignoreUnknownFields`), an out-of-range number, a bad enum name, bad
   * base64, a bad timestamp.
   */
  fromJson(message: MessageModel | string, json: unknown, options?: JsonReadOptions): object {
    return this.mapper.fromJson(this.model(message), json, options);
  }

  private model(message: MessageModel | string): MessageModel {
    return typeof message === "string" ? this.requireMessage(message) : message;
  }
}

/**
 * A file named in `proto` as the loader takes it: an in-memory source or a path that exists as
 * given stays as it is; otherwise the first include directory holding it gives its path.
 */
function locate(file: string, options: SchemaSource): string {
  if (options.sources?.[file] !== undefined || isAbsolute(file) || existsSync(file)) return file;
  for (const dir of options.includeDirs ?? []) {
    const path = join(dir, file);
    if (existsSync(path)) return path;
  }
  return file;
}

function stripDot(name: string): string {
  return name.startsWith(".") ? name.slice(1) : name;
}

/** `names` with those of `name`'s package first (the likeliest to be meant). */
function nearFirst(name: string, names: Iterable<string>): string[] {
  const pkg = stripDot(name).slice(0, Math.max(0, stripDot(name).lastIndexOf(".") + 1));
  const all = [...names];
  return pkg === "" ? all : [...all.filter((n) => n.startsWith(pkg)), ...all.filter((n) => !n.startsWith(pkg))];
}

/** At most a dozen names, for error messages. */
function listed(names: string[]): string {
  if (names.length === 0) return "none";
  const shown = names.slice(0, 12).join(", ");
  return names.length > 12 ? `${shown} and ${names.length - 12} more` : shown;
}

/** The method of `service` named `name` (as in the .proto, or its lowerCamelCase key). */
export function findMethod(service: ServiceModel, name: string): MethodModel | undefined {
  return service.methods.find((m) => m.name === name) ?? service.methods.find((m) => m.localName === name);
}
