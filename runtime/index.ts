/**
 * What generated code needs at run time, the `meridian-rpc/runtime` entry: the pooled Writer,
 * the Reader, lazy views, codec types and errors, and the service descriptor types. Generated
 * files import this specifier (or this file, relatively, inside Meridian's own sources).
 *
 * Applications import `meridian-rpc` (runtime/api.ts), transport authors
 * `meridian-rpc/transport` (runtime/transport.ts); docs/architecture.md lays out the three.
 */
export { DecodeError, EncodeError, type DecodeErrorCode } from "./codec/errors.js";
export { Reader, WireType, DEFAULT_DEPTH_LIMIT, joinSigned, joinUnsigned, readerFor } from "./codec/reader.js";
export { MessageView, setEntry, viewState } from "./codec/view.js";
export { messageRecord } from "./codec/record.js";
export { Writer, encodeShared, sharedWriter, varintSize, DEFAULT_SLAB_SIZE } from "./codec/writer.js";
export { utf8WriteLoop, utf8ReadLoop, isValidUtf8 } from "./codec/utf8.js";
export type { MessageCodec, AnyMessageCodec, MessageOf, EnumInfo, UnknownFields, PayloadProtocol } from "./codec/types.js";
export type { MethodKind, IdempotencyLevel, MethodDescriptor, ServiceDescriptor, InputOf, OutputOf } from "./rpc/descriptors.js";
// Thrift: what a file generated from .thrift needs (struct codecs driven by their schemas, the
// exception base class, method and service descriptors).
export { ThriftException, ThriftStructCodec, thriftStruct, type ThriftStructOptions } from "./codec/thrift/codec.js";
export type { ThriftFieldSchema, ThriftStructSchema, ThriftTypeSchema, ThriftStructValue } from "./codec/thrift/struct.js";
export {
  thriftMethod,
  thriftService,
  type ThriftMethodDescriptor,
  type ThriftMethodInfo,
  type ThriftMethodSpec,
  type ThriftResult,
  type ThriftThrows,
} from "./rpc/thrift.js";
