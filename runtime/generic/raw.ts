import type { MessageCodec } from "../codec/types.js";
import type { Reader } from "../codec/reader.js";
import type { Writer } from "../codec/writer.js";
import type { IdempotencyLevel, MethodDescriptor, MethodKind, ServiceDescriptor } from "../rpc/descriptors.js";

const EMPTY = new Uint8Array(0);

/**
 * The pass-through codec: a MessageCodec whose messages are their own encoding. `encode` and
 * `decode` are the identity and `encodeTo` appends the bytes as they are, so bytes given to a
 * client reach the wire untouched and a server hands its handler the payload as it arrived (a
 * view of the transport's buffer, valid until the call ends, as bytes fields of decoded
 * messages are).
 */
export const RawBytes: MessageCodec<Uint8Array, Uint8Array> = {
  typeName: "meridian.RawBytes",
  create(partial?: Partial<Uint8Array>): Uint8Array {
    return partial instanceof Uint8Array ? partial : EMPTY;
  },
  encode(msg: Uint8Array): Uint8Array {
    return msg;
  },
  encodeTo(msg: Uint8Array, w: Writer): void {
    w.raw(msg);
  },
  decode(bytes: Uint8Array): Uint8Array {
    return bytes;
  },
  view(bytes: Uint8Array): Uint8Array {
    return bytes;
  },
  $write(msg: Uint8Array, w: Writer): void {
    w.raw(msg);
  },
  $read(r: Reader): Uint8Array {
    const out = r.buf.subarray(r.pos, r.end);
    r.pos = r.end;
    return out;
  },
  $view(buf: Uint8Array, start: number, end: number): Uint8Array {
    return buf.subarray(start, end);
  },
};

/** One method of a raw service. */
export interface RawMethod {
  /** The method's name on the wire (`GetFeed`). */
  readonly name: string;
  /** Default "unary". */
  readonly kind?: MethodKind;
  /** Default "IDEMPOTENCY_UNKNOWN". */
  readonly idempotency?: IdempotencyLevel;
}

/** The method descriptor of `m` with the pass-through codec both ways. */
export function rawMethod(m: RawMethod): MethodDescriptor<typeof RawBytes, typeof RawBytes> {
  return { name: m.name, kind: m.kind ?? "unary", input: RawBytes, output: RawBytes, idempotency: m.idempotency ?? "IDEMPOTENCY_UNKNOWN" };
}

/**
 * A service descriptor whose methods take and return encoded bytes (RawBytes), keyed by their
 * wire names: what a gateway registers to forward calls it does not decode, and what a client
 * uses to send bytes it already has.
 */
export function rawService(typeName: string, methods: readonly (RawMethod | string)[]): ServiceDescriptor<Record<string, MethodDescriptor<typeof RawBytes, typeof RawBytes>>> {
  const out: Record<string, MethodDescriptor<typeof RawBytes, typeof RawBytes>> = {};
  for (const m of methods) {
    const method = rawMethod(typeof m === "string" ? { name: m } : m);
    out[method.name] = method;
  }
  return { typeName, methods: out };
}

/** `service` with every codec replaced by RawBytes, under the same keys. */
export function rawOf(service: ServiceDescriptor): ServiceDescriptor<Record<string, MethodDescriptor<typeof RawBytes, typeof RawBytes>>> {
  const out: Record<string, MethodDescriptor<typeof RawBytes, typeof RawBytes>> = {};
  for (const [key, m] of Object.entries(service.methods)) out[key] = rawMethod(m);
  return { typeName: service.typeName, methods: out };
}
