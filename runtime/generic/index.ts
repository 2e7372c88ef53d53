/**
 * Generic calls: .proto files loaded at run time (compiled codecs that match generated code,
 * canonical protobuf JSON), a generic client and server that need no generated code, a
 * pass-through codec for bytes that are forwarded untouched, and schemaless services on
 * msgpackr. See docs/generic.md.
 */
export { ProtoSchema, findMethod, type SchemaOptions, type SchemaSource } from "./schema.js";
export { CodecCompiler, int64Of } from "../../emit/compile.js";
export { JsonError, JsonMapper, type JsonValue, type JsonReadOptions, type JsonWriteOptions, type TypeResolver } from "./json.js";
export { RawBytes, rawMethod, rawOf, rawService, type RawMethod } from "./raw.js";
export { createGenericClient, type GenericCall, type GenericClient, type GenericClientOptions, type GenericMethodInfo } from "./client.js";
export {
  createGenericHandler,
  createGenericServer,
  type FallbackCall,
  type FallbackHandler,
  type GenericHandler,
  type GenericHandlerCall,
  type GenericHandlerOptions,
  type GenericServerOptions,
  type JsonHandler,
} from "./server.js";
export { MsgpackCodec, defineService, method, type MethodOptions, type SchemalessDescriptor, type SchemalessMethod, type ServiceDefinition } from "./msgpack.js";
export { loadThriftService, type LoadedThriftService } from "./thrift.js";
