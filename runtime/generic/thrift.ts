/**
 * Thrift services from IDL at run time, without generated code: what generic callers (a gateway,
 * a test, a CLI) use where Kitex offers its generic call over Thrift IDL. The descriptor is the
 * one generated code would export, with plain-object values and, for each declared exception,
 * a class made at run time (named after the exception, a ThriftException).
 */
import type { ThriftFunction, ThriftService } from "../../idl/thrift/ast.js";
import { loadThriftFiles, type ThriftLoadOptions, type ThriftProgram } from "../../idl/thrift/link.js";
import { ThriftSchemas } from "../../idl/thrift/schema.js";
import { ThriftException } from "../codec/thrift/codec.js";
import type { ThriftStructSchema } from "../codec/thrift/struct.js";
import type { IdempotencyLevel, ServiceDescriptor } from "../rpc/descriptors.js";
import { thriftMethod, thriftService, type ThriftMethodDescriptor, type ThriftThrows } from "../rpc/thrift.js";

/** A Thrift service loaded from IDL, and the exception classes its functions throw, by name. */
export interface LoadedThriftService {
  readonly service: ServiceDescriptor<Record<string, ThriftMethodDescriptor<Record<string, unknown>, unknown>>>;
  /** Each declared exception's class, by its qualified name (`interop.NotFound`). */
  readonly exceptions: ReadonlyMap<string, new (fields?: object) => ThriftException>;
}

const IDEMPOTENCY = new Set<IdempotencyLevel>(["NO_SIDE_EFFECTS", "IDEMPOTENT", "IDEMPOTENCY_UNKNOWN"]);

/**
 * Loads `file` (and what it includes) and describes its service `name`, functions of the
 * services it extends included. Throws IdlError for bad IDL, Error for an unknown service.
 */
export function loadThriftService(file: string, name: string, options?: ThriftLoadOptions): LoadedThriftService {
  const program = loadThriftFiles([file], options);
  const root = program.roots[0]!;
  const def = program.documents.get(root)?.definitions.find((d): d is ThriftService => d.kind === "service" && d.name === name);
  if (def === undefined) throw new Error(`${file} defines no service named ${name}`);
  return describe(program, def, root);
}

function describe(program: ThriftProgram, def: ThriftService, file: string): LoadedThriftService {
  const exceptions = new Map<string, new (fields?: object) => ThriftException>();
  // Exceptions decode as instances of their class: each schema learns to `make` one.
  const schemas = new ThriftSchemas(program, (name, kind) => {
    if (kind !== "exception") return undefined;
    const c = classFor(name, exceptions);
    return () => new c();
  });
  // No prototype: a function may be named like an Object member (`constructor`, `toString`).
  const methods: Record<string, ThriftMethodDescriptor<Record<string, unknown>, unknown>> = Object.create(null) as Record<string, never>;
  const serviceName = `${baseName(file)}.${def.name}`;
  for (let s: { def: ThriftService; file: string } | undefined = { def, file }; s !== undefined; ) {
    for (const fn of s.def.functions) {
      if (Object.hasOwn(methods, fn.name)) continue; // overridden by the extending service
      methods[fn.name] = method(schemas, fn, s.file, s.def.name, exceptions);
    }
    s = s.def.extends === undefined ? undefined : program.service(s.def.extends, s.file, s.def.extendsLoc);
  }
  return { service: thriftService(serviceName, methods), exceptions };
}

function method(
  schemas: ThriftSchemas,
  fn: ThriftFunction,
  file: string,
  service: string,
  exceptions: Map<string, new (fields?: object) => ThriftException>,
): ThriftMethodDescriptor<Record<string, unknown>, unknown> {
  const { args, result } = schemas.functionStructs(fn, file, service);
  const throws: ThriftThrows[] = fn.throws.map((t) => {
    const field = result.fields.find((f) => f.id === t.id)!;
    const schema = (field.type as { struct: () => ThriftStructSchema }).struct();
    return { field: t.name, type: classFor(schema.name, exceptions) };
  });
  const level = fn.annotations["meridian.idempotency"] as IdempotencyLevel | undefined;
  return thriftMethod({
    name: fn.name,
    args,
    result,
    oneway: fn.oneway,
    throws,
    idempotency: level !== undefined && IDEMPOTENCY.has(level) ? level : "IDEMPOTENCY_UNKNOWN",
  });
}

/** The class of the exception named `qualified` (`interop.NotFound`), made once per name. */
function classFor(qualified: string, classes: Map<string, new (fields?: object) => ThriftException>): new (fields?: object) => ThriftException {
  let c = classes.get(qualified);
  if (c === undefined) {
    const name = qualified.slice(qualified.lastIndexOf(".") + 1);
    c = class extends ThriftException {};
    Object.defineProperty(c, "name", { value: name });
    Object.defineProperty(c.prototype, "name", { value: name, writable: true, configurable: true });
    classes.set(qualified, c);
  }
  return c;
}

function baseName(file: string): string {
  return file.replace(/^.*\//, "").replace(/\.thrift$/, "");
}
