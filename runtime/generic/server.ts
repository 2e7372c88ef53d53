import { resolvedMessage, type MethodModel } from "../../idl/model.js";
import type { CallContext } from "../rpc/context.js";
import type { MethodDescriptor, MethodKind, ServiceDescriptor } from "../rpc/descriptors.js";
import { Code, RpcError } from "../rpc/errors.js";
import { createServer, type CloseOptions, type Handlers, type Server, type ServerOptions } from "../rpc/server.js";
import type { MetricsSnapshot } from "../rpc/observability/metrics.js";
import type { ServerTransport } from "../rpc/transport.js";
import { JsonError, type JsonReadOptions, type JsonValue, type JsonWriteOptions } from "./json.js";
import { rawMethod, type RawBytes } from "./raw.js";
import { ProtoSchema, type SchemaSource } from "./schema.js";

/** One call as a generic handler sees it. */
export interface GenericHandlerCall<T> {
  /** The service's full name (`feed.FeedService`). */
  readonly service: string;
  /** The method's name on the wire (`GetFeed`). */
  readonly method: string;
  readonly kind: MethodKind;
  /**
   * The request (unary and server-streaming methods) or the requests as an async iterable
   * (client-streaming and bidi methods).
   */
  readonly request: T;
  readonly ctx: CallContext;
}

/**
 * Answers calls as canonical protobuf JSON: returns (or resolves with) the response as a JSON
 * value (unary, client-streaming) or an async iterable of them (server-streaming, bidi; an async
 * generator). Throwing an RpcError answers with it, as a typed handler does. What it returns is
 * checked against the response message when it is converted (a mismatch answers INTERNAL), so
 * the return type is left open.
 */
export type JsonHandler = (call: GenericHandlerCall<JsonValue | AsyncIterable<JsonValue>>) => unknown;

/** Options of createGenericHandler. */
export interface GenericHandlerOptions extends Partial<SchemaSource> {
  /** A schema already loaded, instead of `proto` / `includeDirs` / `sources`. */
  schema?: ProtoSchema;
  /** The services to answer, by full name. Default: every service of the files named in `proto`. */
  services?: readonly string[];
  handler: JsonHandler;
  json?: JsonReadOptions & JsonWriteOptions;
}

/** A JSON handler of services described by .proto files, ready to register on servers. */
export interface GenericHandler {
  readonly schema: ProtoSchema;
  /**
   * The descriptors of the services answered, with compiled codecs: what transports that route
   * before the server sees a call (gRPC, NATS) take as their `services` option.
   */
  readonly services: readonly ServiceDescriptor[];
  /** Registers every service on `server`; requests and responses go through the server's middleware. */
  register(server: Server): void;
}

/**
 * A server-side generic handler: serves the services of .proto files loaded at run time with one
 * function that takes and returns canonical protobuf JSON. Requests are decoded with compiled
 * codecs (bad payloads are INVALID_ARGUMENT, as for generated code); a response that does not
 * fit its message is the handler's bug and answers INTERNAL, naming the field.
 */
export function createGenericHandler(options: GenericHandlerOptions): GenericHandler {
  const { schema: given, proto, includeDirs, sources, services: names, handler, json = {} } = options;
  let schema = given;
  if (schema === undefined) {
    if (proto === undefined) throw new RpcError(Code.INVALID_ARGUMENT, "createGenericHandler: pass proto (the .proto files) or schema");
    schema = ProtoSchema.load({
      proto,
      ...(includeDirs === undefined ? {} : { includeDirs }),
      ...(sources === undefined ? {} : { sources }),
    });
  }
  const s = schema;
  const models = names === undefined ? s.files.flatMap((f) => f.services) : names.map((n) => s.requireService(n));
  const entries = models.map((model) => {
    const descriptor = s.descriptor(model);
    const handlers: Record<string, (request: unknown, ctx: CallContext) => unknown> = {};
    for (const m of model.methods) handlers[m.localName] = jsonMethod(s, model.fullName, m, handler, json);
    return { descriptor, handlers };
  });
  return {
    schema: s,
    services: entries.map((e) => e.descriptor),
    register(server: Server): void {
      for (const e of entries) server.register(e.descriptor, e.handlers as Partial<Handlers<ServiceDescriptor>>);
    },
  };
}

/** The typed-handler form of one method, converting between messages and JSON around `handler`. */
function jsonMethod(
  schema: ProtoSchema,
  service: string,
  m: MethodModel,
  handler: JsonHandler,
  json: JsonReadOptions & JsonWriteOptions,
): (request: unknown, ctx: CallContext) => unknown {
  const input = resolvedMessage(m.input);
  const output = resolvedMessage(m.output);
  const toJson = (msg: unknown): JsonValue => schema.toJson(input, msg as object, json);
  const fromJson = (j: unknown): object => {
    try {
      return schema.fromJson(output, j, json);
    } catch (e) {
      if (e instanceof JsonError) {
        throw new RpcError(Code.INTERNAL, `the generic handler of ${service}/${m.name} answered JSON that does not fit: ${e.message}`, { cause: e });
      }
      throw e;
    }
  };
  const call = (request: JsonValue | AsyncIterable<JsonValue>, ctx: CallContext) => handler({ service, method: m.name, kind: m.kind, request, ctx });
  switch (m.kind) {
    case "unary":
      return async (request, ctx) => fromJson(await call(toJson(request), ctx));
    case "client_streaming":
      return async (requests, ctx) => fromJson(await call(mapAsync(requests as AsyncIterable<unknown>, toJson), ctx));
    case "server_streaming":
      return (request, ctx) => mapAsync(streamOf(call(toJson(request), ctx), service, m), fromJson);
    case "bidi_streaming":
      return (requests, ctx) => mapAsync(streamOf(call(mapAsync(requests as AsyncIterable<unknown>, toJson), ctx), service, m), fromJson);
  }
}

async function* mapAsync<A, B>(source: AsyncIterable<A> | Promise<AsyncIterable<A>>, f: (a: A) => B): AsyncGenerator<B, void, undefined> {
  for await (const a of await source) yield f(a);
}

/** What a handler of a streaming method returned: an (async) iterable of responses. */
async function* streamOf(out: unknown, service: string, m: MethodModel): AsyncGenerator<JsonValue, void, undefined> {
  const v = await out;
  if (typeof v !== "object" || v === null || !(Symbol.asyncIterator in v || Symbol.iterator in v)) {
    throw new RpcError(Code.INTERNAL, `the generic handler of ${service}/${m.name} (${m.kind}) must return an async iterable of responses (an async generator), not ${typeof v}`);
  }
  yield* v as AsyncIterable<JsonValue> | Iterable<JsonValue>;
}

// ---------------------------------------------------------------------------------------------
// A server with a fallback for services it has no code for.

/** One call that reached the fallback: the raw request payload, as the transport received it. */
export interface FallbackCall {
  readonly service: string;
  readonly method: string;
  /** The request as it arrived: a view of the transport's buffer, valid until the call ends. */
  readonly payload: Uint8Array;
  readonly ctx: CallContext;
}

/** Answers a call the server has no service for: the encoded response, or throws an RpcError. */
export type FallbackHandler = (call: FallbackCall) => Uint8Array | Promise<Uint8Array>;

/** Options of createGenericServer: the server's, and its fallback. */
export interface GenericServerOptions extends ServerOptions {
  /** Answers unary calls to services no `register` call gave this server. */
  fallback: FallbackHandler;
  /** Which of those calls the fallback takes (the others answer UNIMPLEMENTED). Default: all. */
  accepts?: (service: string, method: string) => boolean;
  /**
   * The most methods the fallback learns (each one becomes a route of the server); calls to
   * further methods answer UNIMPLEMENTED. Bounds the route table against callers that make up
   * names. Default 1024.
   */
  maxFallbackMethods?: number;
}

/**
 * Creates a server that answers, besides the services registered on it, unary calls to any
 * other service through `fallback`, with the bytes as they arrived: what a gateway that forwards
 * calls it has no code for needs (pair it with a generic client's `callBinary`). Fallback calls
 * run through the server's middleware (observability, limiter), deadlines and context like any
 * other. Works on transports that hand the server every call by name (tcp, memory); gRPC and
 * NATS route by the services they are given up front, so there register the services instead
 * (createGenericHandler, or rawService with server.register).
 */
export function createGenericServer(options: GenericServerOptions): Server {
  const { fallback, accepts = () => true, maxFallbackMethods = 1024, ...serverOptions } = options;
  const registered = new Set<string>();
  const learned = new Map<string, Map<string, MethodDescriptor<typeof RawBytes, typeof RawBytes>>>();
  let count = 0;
  let server: Server;

  /** Makes `service/method` a route of the server when the fallback should answer it. */
  const learn = (service: string, method: string): void => {
    if (registered.has(service)) return;
    let methods = learned.get(service);
    if (methods?.has(method) === true) return;
    if (count >= maxFallbackMethods || !accepts(service, method)) return;
    if (methods === undefined) learned.set(service, (methods = new Map()));
    methods.set(method, rawMethod({ name: method }));
    count++;
    const handlers: Record<string, (payload: unknown, ctx: CallContext) => Promise<Uint8Array>> = {};
    for (const name of methods.keys()) {
      handlers[name] = async (payload, ctx) => fallback({ service, method: name, payload: payload as Uint8Array, ctx });
    }
    server.register({ typeName: service, methods: Object.fromEntries(methods) }, handlers as Partial<Handlers<ServiceDescriptor>>);
  };

  const inner = serverOptions.transport;
  const transport: ServerTransport = {
    listen: (dispatch, streams) =>
      inner.listen((call) => {
        learn(call.service, call.method);
        return dispatch(call);
      }, streams),
    close: (graceMs) => inner.close(graceMs),
  };
  server = createServer({ ...serverOptions, transport });

  const wrapper: Server = {
    register(service, handlers) {
      if (learned.has(service.typeName)) count -= learned.get(service.typeName)!.size;
      learned.delete(service.typeName);
      registered.add(service.typeName);
      server.register(service, handlers);
      return wrapper;
    },
    listen: () => server.listen(),
    close: (o?: CloseOptions) => server.close(o),
    metrics: (): MetricsSnapshot => server.metrics(),
    metricsText: () => server.metricsText(),
  } as Server;
  return wrapper;
}
