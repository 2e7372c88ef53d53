import { Packr, type Options as PackrOptions } from "msgpackr";
import { DecodeError, EncodeError } from "../codec/errors.js";
import type { Reader } from "../codec/reader.js";
import type { MessageCodec } from "../codec/types.js";
import type { Writer } from "../codec/writer.js";
import type { IdempotencyLevel, MethodDescriptor, MethodKind, ServiceDescriptor } from "../rpc/descriptors.js";

/**
 * A schemaless codec: messages are any JavaScript objects (plain objects, arrays, strings,
 * numbers, bigints, Dates, Uint8Arrays, Maps, ...) packed with msgpackr, records enabled (an
 * object's keys are written once per shape in a message, not once per object). Every payload is
 * self-contained: record definitions travel inline, so any peer with msgpackr decodes it.
 */
export class MsgpackCodec<T extends object> implements MessageCodec<T, T> {
  constructor(
    /** Names the payload in errors: `<service>/<Method>.request` or `.response`. */
    readonly typeName: string,
    private readonly packr: Packr,
  ) {}

  /** The message itself (an empty object when there is none): schemaless messages have no defaults. */
  create(partial?: Partial<T>): T {
    return (partial ?? {}) as T;
  }

  encode(msg: T): Uint8Array {
    try {
      return this.packr.pack(msg);
    } catch (e) {
      throw new EncodeError(`${this.typeName}: cannot pack the message with msgpackr: ${(e as Error).message}`);
    }
  }

  encodeTo(msg: T, w: Writer): void {
    w.raw(this.encode(msg));
  }

  decode(bytes: Uint8Array): T {
    try {
      // A Buffer view (no copy), so that bin values always come out as Buffers, whatever the
      // transport handed over.
      const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      return this.packr.unpack(buf) as T;
    } catch (e) {
      const incomplete = (e as { incomplete?: boolean }).incomplete === true;
      const err = new DecodeError(incomplete ? "TRUNCATED" : "INVALID_WIRE_TYPE", 0, `not a msgpack message: ${(e as Error).message}`);
      throw err.within(this.typeName, undefined);
    }
  }

  /** Schemaless messages have no lazy form: the view is the decoded message. */
  view(bytes: Uint8Array): T {
    return this.decode(bytes);
  }

  $write(msg: T, w: Writer): void {
    this.encodeTo(msg, w);
  }

  $read(r: Reader): T {
    const v = this.decode(r.buf.subarray(r.pos, r.end));
    r.pos = r.end;
    return v;
  }

  $view(buf: Uint8Array, start: number, end: number): T {
    return this.decode(buf.subarray(start, end));
  }
}

/**
 * One method of a schemaless service. The type parameters are the request and response types
 * (for the typed client and handlers); they exist only for TypeScript.
 */
export interface SchemalessMethod<I extends object = Record<string, unknown>, O extends object = Record<string, unknown>> {
  /** Default "unary". */
  readonly kind?: MethodKind;
  /** Default "IDEMPOTENCY_UNKNOWN" (a write, for routing). */
  readonly idempotency?: IdempotencyLevel;
  /** The name on the wire. Default: the key with its first letter upper-cased (`echo` -> `Echo`), as .proto names methods. */
  readonly name?: string;
  /** @internal Carries I and O for TypeScript; never set. */
  readonly $types?: { readonly input: I; readonly output: O };
}

/** Options of a schemaless method, besides its kind. */
export interface MethodOptions {
  readonly idempotency?: IdempotencyLevel;
  readonly name?: string;
}

function typed<K extends MethodKind>(kind: K) {
  return <I extends object, O extends object>(options: MethodOptions = {}): SchemalessMethod<I, O> & { readonly kind: K } => ({ ...options, kind });
}

/**
 * Typed schemaless methods, one maker per kind: `place: method.unary<Order, Receipt>()`,
 * `follow: method.serverStreaming<Query, Event>({ idempotency: "NO_SIDE_EFFECTS" })`. The type
 * parameters are the request and response types of the typed client and handlers.
 */
export const method = {
  unary: typed("unary"),
  serverStreaming: typed("server_streaming"),
  clientStreaming: typed("client_streaming"),
  bidiStreaming: typed("bidi_streaming"),
};

type InputOfMethod<M> = M extends SchemalessMethod<infer I, object> ? I : never;
type OutputOfMethod<M> = M extends SchemalessMethod<object, infer O> ? O : never;
type KindOfMethod<M> = M extends { readonly kind: infer K extends MethodKind } ? K : "unary";

/** The descriptor defineService makes of methods `M`. */
export type SchemalessDescriptor<M extends Record<string, SchemalessMethod<object, object>>> = ServiceDescriptor<{
  [K in keyof M]: MethodDescriptor<MsgpackCodec<InputOfMethod<M[K]>>, MsgpackCodec<OutputOfMethod<M[K]>>> & { readonly kind: KindOfMethod<M[K]> };
}>;

/** What defineService takes. */
export interface ServiceDefinition<M extends Record<string, SchemalessMethod<object, object>>> {
  /** The service's full name on the wire (`demo.Greeter`). */
  name: string;
  /** The methods, by the key typed clients and handlers use (`echo`). */
  methods: M;
  /** msgpackr options (records are on unless `useRecords: false`). */
  packr?: PackrOptions;
}

/**
 * Defines a service in TypeScript, without IDL: a ServiceDescriptor whose codecs pack messages
 * with msgpackr (records enabled). It is an ordinary descriptor, so createClient, createServer
 * and every transport (tcp, memory, grpc, nats) take it as they take a generated one; a team can
 * start without .proto files and move to generated descriptors later (the method names on the
 * wire already follow .proto's convention; the payloads then change to protobuf).
 *
 * ```ts
 * const Greeter = defineService({
 *   name: "demo.Greeter",
 *   methods: {
 *     hello: method.unary<{ name: string }, { text: string }>({ idempotency: "NO_SIDE_EFFECTS" }),
 *     ticks: method.serverStreaming<{ n: number }, { i: number }>(),
 *   },
 * });
 * createServer({ transport }).register(Greeter, { hello: ({ name }) => ({ text: `hi ${name}` }), ... });
 * await createClient(Greeter, { transport }).hello({ name: "ada" });
 * ```
 */
export function defineService<const M extends Record<string, SchemalessMethod<object, object>>>(def: ServiceDefinition<M>): SchemalessDescriptor<M> {
  const packr = new Packr({ useRecords: true, ...def.packr });
  const methods: Record<string, MethodDescriptor> = {};
  const wire = new Set<string>();
  for (const [key, m] of Object.entries(def.methods)) {
    const name = m.name ?? key.charAt(0).toUpperCase() + key.slice(1);
    if (wire.has(name)) throw new Error(`defineService ${def.name}: two methods are named ${name} on the wire; give one another name`);
    wire.add(name);
    methods[key] = {
      name,
      kind: m.kind ?? "unary",
      input: new MsgpackCodec(`${def.name}/${name}.request`, packr),
      output: new MsgpackCodec(`${def.name}/${name}.response`, packr),
      idempotency: m.idempotency ?? "IDEMPOTENCY_UNKNOWN",
    };
  }
  return { typeName: def.name, methods } as unknown as SchemalessDescriptor<M>;
}
