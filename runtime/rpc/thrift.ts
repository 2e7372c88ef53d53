/**
 * Thrift services on Meridian's runtime. A Thrift function travels as Apache Thrift names it: its
 * parameters in the struct `<fn>_args`, its outcome in `<fn>_result` (field 0 `success`, then one
 * field per declared exception). The method descriptor carries those two codecs, so middleware,
 * transports and generic tooling see an ordinary call; the typed client returns `success` or
 * throws the declared exception that was set, and a handler returns the value or throws one of its
 * declared exceptions, which goes back in the result (a successful call, as Kitex and Apache do).
 * Anything else a handler throws is an RpcError, sent as a TApplicationException by Thrift
 * transports.
 */
import { ThriftException, ThriftStructCodec } from "../codec/thrift/codec.js";
import type { ThriftStructSchema } from "../codec/thrift/struct.js";
import type { IdempotencyLevel, MethodDescriptor, ServiceDescriptor } from "./descriptors.js";
import { Code, RpcError } from "./errors.js";

/** The result struct of a Thrift function: `success` and the exception fields, at most one set. */
export type ThriftResult = { success?: unknown; [exception: string]: unknown };

/** A declared exception of a function: its field in the result struct and its class. */
export interface ThriftThrows {
  readonly field: string;
  readonly type: abstract new (...args: never[]) => ThriftException;
}

/** What a Thrift method descriptor adds to a method descriptor. `R` is the function's return type. */
export interface ThriftMethodInfo<R = unknown> {
  /** `oneway`: the caller sends and does not wait; the server sends nothing back. */
  readonly oneway: boolean;
  /** Whether the function returns a value (its result struct has `success`); false for void. */
  readonly returns: boolean;
  /** The declared exceptions, in the result struct's order. */
  readonly throws: readonly ThriftThrows[];
  /** @internal Carries R for TypeScript; never set. */
  readonly $result?: R;
}

/** A Thrift method descriptor: args and result codecs, and the Thrift part. */
export type ThriftMethodDescriptor<A extends object = object, R = unknown> = MethodDescriptor<ThriftStructCodec<A>, ThriftStructCodec<ThriftResult>> & {
  readonly kind: "unary";
  readonly thrift: ThriftMethodInfo<R>;
};

/** What `thriftMethod` takes: the function as generated code describes it. */
export interface ThriftMethodSpec {
  /** The function's name in the IDL, which is its name on the wire. */
  readonly name: string;
  readonly args: ThriftStructSchema;
  readonly result: ThriftStructSchema;
  readonly oneway?: boolean;
  readonly throws?: readonly ThriftThrows[];
  /**
   * For routing and retries, as a .proto's idempotency_level: Thrift has none, so a function is a
   * write unless its IDL annotates it (`(meridian.idempotency = "NO_SIDE_EFFECTS")`).
   */
  readonly idempotency?: IdempotencyLevel;
  /** The defaults of the args struct (the IDL's parameter default values). */
  readonly argDefaults?: () => object;
}

/** The method descriptor of one Thrift function. `A` is its args struct, `R` its return type. */
export function thriftMethod<A extends object, R>(spec: ThriftMethodSpec): ThriftMethodDescriptor<A, R> {
  const { argDefaults } = spec;
  return {
    name: spec.name,
    kind: "unary",
    input: new ThriftStructCodec<A>(spec.args, argDefaults === undefined ? {} : { defaults: argDefaults as () => Partial<A> }),
    output: new ThriftStructCodec<ThriftResult>(spec.result),
    idempotency: spec.idempotency ?? "IDEMPOTENCY_UNKNOWN",
    thrift: { oneway: spec.oneway ?? false, returns: spec.result.fields.some((f) => f.id === 0), throws: spec.throws ?? [] },
  };
}

/** A Thrift service descriptor: `typeName` is `<file>.<Service>`, methods keyed by their IDL names. */
export function thriftService<M extends Record<string, ThriftMethodDescriptor>>(typeName: string, methods: M): ServiceDescriptor<M> {
  return { typeName, methods };
}

/** The Thrift part of a method descriptor, if it describes a Thrift function. */
export function thriftInfo(method: MethodDescriptor): ThriftMethodInfo | undefined {
  return (method as { thrift?: ThriftMethodInfo }).thrift;
}

/**
 * The typed client's answer from a result struct: the declared exception that is set, thrown;
 * else `success` (undefined for a void function).
 */
export function unwrapResult(info: ThriftMethodInfo, result: ThriftResult): unknown {
  for (const t of info.throws) {
    const e = result[t.field];
    if (e !== undefined && e !== null) throw e instanceof Error ? e : Object.assign(new ThriftException(), e);
  }
  return result.success;
}

/**
 * A handler's outcome as a result struct: its value as `success`, or the declared exception it
 * threw in that exception's field. Anything else it threw is thrown on (an RpcError for the
 * caller), as is a non-void function's missing value (Apache's MISSING_RESULT). `where` names
 * the method in that error.
 */
export async function resultOf(info: ThriftMethodInfo, run: () => unknown, where: string): Promise<ThriftResult> {
  let value: unknown;
  try {
    value = await run();
  } catch (e) {
    for (const t of info.throws) if (e instanceof t.type) return { [t.field]: e };
    throw e;
  }
  if (info.returns && (value === undefined || value === null) && !info.oneway) {
    throw new RpcError(Code.INTERNAL, `${where} returned no value: a non-void Thrift function must return one (MISSING_RESULT)`);
  }
  return value === undefined ? {} : { success: value };
}
