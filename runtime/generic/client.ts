import type { MessageModel, MethodModel, ServiceModel } from "../../idl/model.js";
import { resolvedMessage } from "../../idl/model.js";
import { DecodeError } from "../codec/errors.js";
import { createClient, type CallOptions, type ClientOptions } from "../rpc/client.js";
import { Code, RpcError } from "../rpc/errors.js";
import type { ResponseStream, StreamInput } from "../rpc/streaming.js";
import type { Headers } from "../rpc/transport.js";
import type { JsonReadOptions, JsonValue, JsonWriteOptions } from "./json.js";
import { rawOf } from "./raw.js";
import { ProtoSchema, findMethod, type SchemaSource } from "./schema.js";

/** Options of createGenericClient: the client's, and where the service is described. */
export interface GenericClientOptions extends ClientOptions, Partial<SchemaSource> {
  /** The service to call, by full name (`feed.FeedService`). */
  service: string;
  /** A schema already loaded, instead of `proto` / `includeDirs` / `sources`. */
  schema?: ProtoSchema;
  /** How JSON requests are read and responses printed. */
  json?: JsonReadOptions & JsonWriteOptions;
}

/**
 * A generic call: await it for the response (a unary or client-streaming method; a stream's
 * responses as an array), or iterate it with `for await` for each response as it arrives (a
 * server-streaming or bidi method; a unary method yields its one response). Use one or the
 * other. Errors are RpcErrors, as from a typed client.
 */
export interface GenericCall extends Promise<JsonValue>, ResponseStream<JsonValue> {}

/** What the generic client says about one method. */
export interface GenericMethodInfo {
  /** The name on the wire (`GetFeed`). */
  readonly name: string;
  readonly kind: MethodModel["kind"];
  readonly idempotency: MethodModel["idempotency"];
  /** Full names of the request and response messages. */
  readonly input: string;
  readonly output: string;
}

/** A client of one service described by .proto files loaded at run time. */
export interface GenericClient {
  readonly schema: ProtoSchema;
  /** The service's full name. */
  readonly service: string;
  readonly methods: readonly GenericMethodInfo[];
  /**
   * Calls `method` (its .proto name or lowerCamelCase key) with a request as canonical protobuf
   * JSON (for client-streaming and bidi methods, an iterable or async iterable of them) and
   * gives the response as JSON. A request that does not fit the message, or an unknown method,
   * fails with INVALID_ARGUMENT naming the field before anything is sent.
   */
  call(method: string, request?: JsonValue | StreamInput<JsonValue>, options?: CallOptions): GenericCall;
  /**
   * Calls a unary or client-streaming `method` with request bytes already encoded, and resolves
   * with the response bytes as they came: nothing is decoded or re-encoded on the way.
   */
  callBinary(method: string, request: Uint8Array | StreamInput<Uint8Array>, options?: CallOptions): Promise<Uint8Array>;
  /** The same for a server-streaming or bidi `method`: the response messages' bytes as they come. */
  streamBinary(method: string, request: Uint8Array | StreamInput<Uint8Array>, options?: CallOptions): ResponseStream<Uint8Array>;
}

/** A raw client method as createClient builds it for a RawBytes descriptor. */
type RawCall = (request: unknown, options?: CallOptions) => Promise<Uint8Array> | ResponseStream<Uint8Array>;

/**
 * Creates a client of `options.service`, described by `.proto` files read now (or by
 * `options.schema`), with no generated code: requests and responses are canonical protobuf JSON
 * (or bytes, with callBinary / streamBinary). It is built on createClient, so middleware,
 * timeouts, retries, load balancing, breakers and headers work as for a typed client. Loading a
 * file that does not parse, or naming a service the files do not define, raises an RpcError
 * INVALID_ARGUMENT (`file:line:column: ...`, or the services that exist).
 */
export function createGenericClient(options: GenericClientOptions): GenericClient {
  const { schema: given, proto, includeDirs, sources, service: serviceName, json = {}, ...clientOptions } = options;
  let schema = given;
  if (schema === undefined) {
    if (proto === undefined) throw new RpcError(Code.INVALID_ARGUMENT, "createGenericClient: pass proto (the .proto files) or schema");
    schema = ProtoSchema.load({
      proto,
      ...(includeDirs === undefined ? {} : { includeDirs }),
      ...(sources === undefined ? {} : { sources }),
    });
  }
  const service = schema.requireService(serviceName);
  const raw = createClient(rawOf(schema.descriptor(service)), clientOptions) as unknown as Record<string, RawCall>;
  return new Generic(schema, service, raw, json);
}

const streamsRequests = (m: MethodModel): boolean => m.kind === "client_streaming" || m.kind === "bidi_streaming";
const streamsResponses = (m: MethodModel): boolean => m.kind === "server_streaming" || m.kind === "bidi_streaming";

class Generic implements GenericClient {
  readonly service: string;
  readonly methods: readonly GenericMethodInfo[];

  constructor(
    readonly schema: ProtoSchema,
    private readonly model: ServiceModel,
    private readonly raw: Record<string, RawCall>,
    private readonly json: JsonReadOptions & JsonWriteOptions,
  ) {
    this.service = model.fullName;
    this.methods = model.methods.map((m) => ({
      name: m.name,
      kind: m.kind,
      idempotency: m.idempotency,
      input: resolvedMessage(m.input).fullName,
      output: resolvedMessage(m.output).fullName,
    }));
  }

  call(method: string, request?: JsonValue | StreamInput<JsonValue>, options: CallOptions = {}): GenericCall {
    try {
      const m = this.method(method);
      const input = resolvedMessage(m.input);
      const output = resolvedMessage(m.output);
      const encode = (j: unknown): Uint8Array => this.schema.codec(input).encode(this.schema.fromJson(input, j ?? {}, this.json));
      const decode = (b: Uint8Array): JsonValue => this.decode(m, output, b);
      let body: unknown;
      if (streamsRequests(m)) {
        const source = request ?? [];
        if (!isIterable(source)) throw new RpcError(Code.INVALID_ARGUMENT, `${this.service}.${m.name} is ${m.kind}: pass its requests as an array or an (async) iterable of JSON values`);
        // An array is converted before the call, so a request that does not fit fails it with
        // INVALID_ARGUMENT before anything is sent; a stream is converted as it is sent.
        body = Array.isArray(source) ? source.map(encode) : mapStream(source, encode);
      } else {
        body = encode(request);
      }
      if (streamsResponses(m)) return new StreamingCall(this.raw[m.localName]!(body, options) as ResponseStream<Uint8Array>, decode);
      return UnaryCall.start((opts) => this.raw[m.localName]!(body, opts) as Promise<Uint8Array>, options, decode);
    } catch (e) {
      return UnaryCall.failed(RpcError.from(e));
    }
  }

  callBinary(method: string, request: Uint8Array | StreamInput<Uint8Array>, options: CallOptions = {}): Promise<Uint8Array> {
    try {
      const m = this.method(method);
      if (streamsResponses(m)) throw new RpcError(Code.INVALID_ARGUMENT, `${this.service}.${m.name} is ${m.kind}: use streamBinary`);
      return this.raw[m.localName]!(this.binaryBody(m, request), options) as Promise<Uint8Array>;
    } catch (e) {
      return Promise.reject(RpcError.from(e));
    }
  }

  streamBinary(method: string, request: Uint8Array | StreamInput<Uint8Array>, options: CallOptions = {}): ResponseStream<Uint8Array> {
    try {
      const m = this.method(method);
      if (!streamsResponses(m)) throw new RpcError(Code.INVALID_ARGUMENT, `${this.service}.${m.name} is ${m.kind}: use callBinary`);
      return this.raw[m.localName]!(this.binaryBody(m, request), options) as ResponseStream<Uint8Array>;
    } catch (e) {
      return failedStream(RpcError.from(e));
    }
  }

  private binaryBody(m: MethodModel, request: Uint8Array | StreamInput<Uint8Array>): unknown {
    const streams = streamsRequests(m);
    if (streams === request instanceof Uint8Array) {
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        streams ? `${this.service}.${m.name} is ${m.kind}: pass its requests as an (async) iterable of byte arrays` : `${this.service}.${m.name} takes one request: pass a Uint8Array`,
      );
    }
    return request;
  }

  private method(name: string): MethodModel {
    const m = findMethod(this.model, name);
    if (m === undefined) {
      const names = this.model.methods.map((x) => x.name).join(", ");
      throw new RpcError(Code.INVALID_ARGUMENT, `unknown method ${name} of ${this.service}: it has ${names === "" ? "no methods" : names}`);
    }
    return m;
  }

  private decode(m: MethodModel, output: MessageModel, bytes: Uint8Array): JsonValue {
    let msg: object;
    try {
      msg = this.schema.codec(output).decode(bytes);
    } catch (e) {
      if (e instanceof DecodeError) {
        throw new RpcError(Code.INTERNAL, `the response of ${this.service}.${m.name} is not a ${output.fullName} as the loaded .proto describes it: ${e.message}`, { cause: e });
      }
      throw e;
    }
    return this.schema.toJson(output, msg, this.json);
  }
}

function isIterable(v: unknown): v is StreamInput<unknown> {
  return typeof v === "object" && v !== null && (Symbol.iterator in v || Symbol.asyncIterator in v);
}

async function* mapStream<A, B>(source: StreamInput<A>, f: (a: A) => B): AsyncGenerator<B, void, undefined> {
  for await (const a of source) yield f(a);
}

/** A response stream that fails at once with `err` (its headers: the error's). */
function failedStream(err: RpcError): ResponseStream<Uint8Array> {
  return {
    headers: Promise.resolve(err.headers),
    trailers: Promise.resolve(err.headers),
    cancel: () => undefined,
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(err) }),
  };
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** The await-or-iterate part of a GenericCall: one consumer, whichever comes first. */
abstract class CallBase implements GenericCall {
  readonly [Symbol.toStringTag] = "GenericCall";
  abstract readonly headers: Promise<Headers>;
  abstract readonly trailers: Promise<Headers>;
  private consumed: "await" | "iterate" | undefined;
  private result: Promise<JsonValue> | undefined;

  abstract cancel(reason?: unknown): void;
  /** The whole answer, for `await`. */
  protected abstract all(): Promise<JsonValue>;
  /** The responses one by one, for `for await`. */
  protected abstract each(): AsyncIterator<JsonValue>;

  private claim(how: "await" | "iterate"): void {
    if (this.consumed !== undefined && this.consumed !== how) {
      throw new RpcError(Code.FAILED_PRECONDITION, "a generic call is either awaited or iterated, not both");
    }
    this.consumed = how;
  }

  private promise(): Promise<JsonValue> {
    if (this.result === undefined) {
      try {
        this.claim("await");
        this.result = this.all();
      } catch (e) {
        this.result = Promise.reject(e);
      }
    }
    return this.result;
  }

  then<A = JsonValue, B = never>(onFulfilled?: ((v: JsonValue) => A | PromiseLike<A>) | null, onRejected?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.promise().then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<JsonValue | B> {
    return this.promise().catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<JsonValue> {
    return this.promise().finally(onFinally);
  }

  [Symbol.asyncIterator](): AsyncIterator<JsonValue> {
    this.claim("iterate");
    return this.each();
  }
}

/** A unary or client-streaming generic call. */
class UnaryCall extends CallBase {
  readonly headers: Promise<Headers>;
  readonly trailers: Promise<Headers>;
  private readonly response: Promise<JsonValue>;
  private readonly controller = new AbortController();

  private constructor(run: ((opts: CallOptions) => Promise<Uint8Array>) | RpcError, options: CallOptions, decode: (b: Uint8Array) => JsonValue) {
    super();
    let gotHeaders!: (h: Headers) => void;
    this.headers = new Promise((r) => (gotHeaders = r));
    this.trailers = this.headers;
    if (run instanceof RpcError) {
      gotHeaders(run.headers);
      this.response = Promise.reject(run);
    } else {
      // The call follows both the caller's signal and cancel().
      const outer = options.signal;
      const follow = (): void => this.controller.abort(outer?.reason);
      if (outer?.aborted === true) follow();
      else outer?.addEventListener("abort", follow, { once: true });
      const onHeaders = (h: Headers): void => {
        gotHeaders(h);
        options.onHeaders?.(h);
      };
      this.response = run({ ...options, signal: this.controller.signal, onHeaders })
        .then(decode)
        .finally(() => outer?.removeEventListener("abort", follow));
      // Headers settle even when the call fails before any came back.
      this.response.catch((e: unknown) => gotHeaders(e instanceof RpcError ? e.headers : {}));
    }
    this.response.catch(() => undefined); // observed through then/iteration; never unhandled
  }

  static start(run: (opts: CallOptions) => Promise<Uint8Array>, options: CallOptions, decode: (b: Uint8Array) => JsonValue): UnaryCall {
    return new UnaryCall(run, options, decode);
  }

  static failed(err: RpcError): UnaryCall {
    return new UnaryCall(err, {}, () => null);
  }

  cancel(reason?: unknown): void {
    this.controller.abort(reason instanceof RpcError ? reason : new RpcError(Code.CANCELLED, "call cancelled", { cause: reason }));
  }

  protected all(): Promise<JsonValue> {
    return this.response;
  }

  protected each(): AsyncIterator<JsonValue> {
    let done = false;
    return {
      next: async () => {
        if (done) return DONE;
        done = true;
        return { done: false, value: await this.response };
      },
    };
  }
}

/** A server-streaming or bidi generic call: the runtime's response stream, decoded. */
class StreamingCall extends CallBase {
  constructor(
    private readonly stream: ResponseStream<Uint8Array>,
    private readonly decode: (b: Uint8Array) => JsonValue,
  ) {
    super();
  }

  get headers(): Promise<Headers> {
    return this.stream.headers;
  }

  get trailers(): Promise<Headers> {
    return this.stream.trailers;
  }

  cancel(reason?: unknown): void {
    this.stream.cancel(reason);
  }

  protected async all(): Promise<JsonValue> {
    const out: JsonValue[] = [];
    for await (const v of this.iterate()) out.push(v);
    return out;
  }

  protected each(): AsyncIterator<JsonValue> {
    return this.iterate();
  }

  private async *iterate(): AsyncGenerator<JsonValue, void, undefined> {
    for await (const b of this.stream) {
      let v: JsonValue;
      try {
        v = this.decode(b);
      } catch (e) {
        const err = RpcError.from(e);
        this.stream.cancel(err);
        throw err;
      }
      yield v;
    }
  }
}
