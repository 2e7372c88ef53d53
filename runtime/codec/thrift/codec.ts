/**
 * The message codec of a Thrift struct, union or exception: what generated code exports for each
 * (`export const Video = thriftStruct<Video>(schema)`) and what a Thrift service's method
 * descriptors carry, so that createClient, createServer and every transport take Thrift types as
 * they take protobuf ones. One codec speaks both protocols: Thrift Binary unless the transport
 * says its peer speaks Compact.
 */
import { DecodeError } from "../errors.js";
import { Reader } from "../reader.js";
import type { MessageCodec, PayloadProtocol } from "../types.js";
import { encodeShared, type Writer } from "../writer.js";
import { payloadReader, payloadWriter } from "./protocol.js";
import { decodeStruct, encodeStruct, type ThriftStructSchema, type ThriftStructValue } from "./struct.js";

/**
 * The base class of declared Thrift exceptions. Generated code declares one subclass per
 * `exception` (`class NotFound extends ThriftException`), whose instances carry the exception's
 * fields as properties: a handler throws one, the caller catches it (`e instanceof NotFound`).
 * A field named `message` is also the Error's message.
 */
export class ThriftException extends Error {
  constructor(fields?: object) {
    super();
    if (fields !== undefined) Object.assign(this, fields);
  }
}
Object.defineProperty(ThriftException.prototype, "name", { value: "ThriftException", writable: true, configurable: true });

/** What `thriftStruct` takes besides the schema. */
export interface ThriftStructOptions<T> {
  /** The value `create()` starts from: the IDL's default values (a fresh object per call). */
  readonly defaults?: () => Partial<T>;
}

/**
 * The codec of one Thrift struct, union or exception, driven by its schema. Values are plain
 * objects keyed by field name with unset fields absent (an exception's are instances of its
 * class, when its schema says how to `make` one); see runtime/codec/thrift/struct.ts for the
 * JavaScript type of each Thrift type. `view` is `decode`: Thrift has no lazy form here.
 */
export class ThriftStructCodec<T extends object> implements MessageCodec<T, T> {
  readonly typeName: string;

  constructor(
    readonly schema: ThriftStructSchema,
    private readonly options: ThriftStructOptions<T> = {},
  ) {
    this.typeName = schema.name;
  }

  /** A value with the IDL's defaults, overlaid with `partial`; an exception's is an instance of its class. */
  create(partial?: Partial<T>): T {
    const defaults = this.options.defaults?.();
    const out = (this.schema.make?.() ?? {}) as T;
    if (defaults !== undefined) Object.assign(out, defaults);
    if (partial !== undefined && partial !== null) Object.assign(out, partial);
    return out;
  }

  /** Owned bytes from the shared pooled writer, as generated protobuf codecs encode. */
  encode(msg: T, protocol?: PayloadProtocol): Uint8Array {
    return encodeShared((w) => this.encodeTo(msg, w, protocol));
  }

  encodeTo(msg: T, w: Writer, protocol?: PayloadProtocol): void {
    encodeStruct(payloadWriter(protocol, w), this.schema, msg as ThriftStructValue);
  }

  /** Decodes one struct; bytes after its stop are refused (a payload is exactly one struct). */
  decode(bytes: Uint8Array, protocol?: PayloadProtocol): T {
    const r = new Reader(bytes);
    const v = this.$readWith(r, protocol);
    if (r.pos !== r.end) throw trailing(r, this.typeName);
    return v;
  }

  view(bytes: Uint8Array): T {
    return this.decode(bytes);
  }

  /** Writes the struct as Thrift Binary (fields and stop). */
  $write(msg: T, w: Writer): void {
    this.encodeTo(msg, w);
  }

  /** Reads one Thrift Binary struct from `r`. */
  $read(r: Reader): T {
    return this.$readWith(r, undefined);
  }

  $view(buf: Uint8Array, start: number, end: number): T {
    return this.decode(buf.subarray(start, end));
  }

  private $readWith(r: Reader, protocol: PayloadProtocol | undefined): T {
    return decodeStruct(payloadReader(protocol, r), this.schema) as T;
  }
}

function trailing(r: Reader, typeName: string): DecodeError {
  return new DecodeError("LENGTH_OUT_OF_RANGE", r.pos, `${r.end - r.pos} bytes follow the struct's stop`).within(typeName, undefined);
}

/** The codec of a Thrift struct, union or exception described by `schema`. */
export function thriftStruct<T extends object>(schema: ThriftStructSchema, options?: ThriftStructOptions<T>): ThriftStructCodec<T> {
  return new ThriftStructCodec<T>(schema, options);
}
