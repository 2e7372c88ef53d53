import type { AnyMessageCodec, MessageOf } from "../codec/types.js";

/** How a method streams: one of the four gRPC method kinds. */
export type MethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/**
 * The .proto `idempotency_level` of a method. Anything but NO_SIDE_EFFECTS is a write for
 * routing (it goes to the primary region); IDEMPOTENT and NO_SIDE_EFFECTS may be retried.
 */
export type IdempotencyLevel = "IDEMPOTENCY_UNKNOWN" | "NO_SIDE_EFFECTS" | "IDEMPOTENT";

/** One RPC method of a generated service descriptor. */
export interface MethodDescriptor<I extends AnyMessageCodec = AnyMessageCodec, O extends AnyMessageCodec = AnyMessageCodec> {
  /** The method's name as in the .proto (`GetFeed`), used on the wire. */
  readonly name: string;
  readonly kind: MethodKind;
  readonly input: I;
  readonly output: O;
  readonly idempotency: IdempotencyLevel;
}

/**
 * A service as generated code describes it. `methods` is keyed by the lowerCamelCase method name
 * used by typed clients and handlers (`getFeed`); the wire uses `typeName` and each method's name.
 */
export interface ServiceDescriptor<M extends Record<string, MethodDescriptor> = Record<string, MethodDescriptor>> {
  /** Fully qualified service name, for example `feed.FeedService`. */
  readonly typeName: string;
  readonly methods: M;
}

/** The request message type of a method descriptor. */
export type InputOf<D> = D extends MethodDescriptor<infer I, AnyMessageCodec> ? MessageOf<I> : never;
/**
 * The response type of a method descriptor: its output message, or for a Thrift function (whose
 * output is its result struct) the function's return type, which typed clients and handlers use.
 */
export type OutputOf<D> = D extends { readonly thrift: { readonly $result?: infer R } }
  ? R
  : D extends MethodDescriptor<AnyMessageCodec, infer O>
    ? MessageOf<O>
    : never;
