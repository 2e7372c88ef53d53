export { DecodeError, EncodeError, type DecodeErrorCode } from "./errors.js";
export { Reader, WireType, DEFAULT_DEPTH_LIMIT, joinSigned, joinUnsigned, readerFor } from "./reader.js";
export { MessageView, setEntry, viewState } from "./view.js";
export { messageRecord } from "./record.js";
export { Writer, encodeShared, sharedWriter, varintSize, DEFAULT_SLAB_SIZE } from "./writer.js";
export { utf8WriteLoop, utf8ReadLoop, isValidUtf8 } from "./utf8.js";
export type { MessageCodec, AnyMessageCodec, MessageOf, EnumInfo, UnknownFields, PayloadProtocol } from "./types.js";
