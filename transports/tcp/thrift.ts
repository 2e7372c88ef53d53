/**
 * Thrift payloads on the TCP transport. A Thrift frame's payload is a message envelope (function
 * name, message type, sequence id) and a struct; errors go back as EXCEPTION messages carrying a
 * TApplicationException. A Thrift peer frames its messages in one of three ways (wire.ts parses
 * them all, and a server answers each frame in the framing and protocol it came in):
 *
 * - `ttheader`: Kitex's TTHeader with protocol id 0 (Binary) or 2 (Compact), what Kitex sends;
 *   Meridian's headers and the RPCTimeout int key travel as for protobuf.
 * - `theader`: Apache Thrift's THeader (magic 0x0fff, varint info), what THeaderTransport sends;
 *   string headers travel, the deadline does not (THeader has no timeout key).
 * - `framed`: TFramedTransport, a 4-byte length and the message; no headers at all.
 */
import type { Writer } from "../../runtime/index.js";
import { Code, RpcError, type Headers, type PayloadProtocol } from "../../runtime/api.js";
import { readApplicationException, readThriftEnvelope, statusFromHeaders, TApplicationError, type ThriftEnvelope } from "../../runtime/transport.js";
import {
  APACHE_THEADER_MAGIC,
  FrameError,
  ProtocolId,
  beginFrame,
  endHeader,
  writeApacheInfo,
  writeStringInfo,
  type FrameLimits,
  type Framing,
} from "./wire.js";

/** How a Thrift client frames its calls and which protocol it speaks. */
export interface ThriftWireOptions {
  /** Default "ttheader" (Kitex). "theader" for Apache THeader peers, "framed" for TFramedTransport ones. */
  readonly framing?: Framing;
  /** Default "binary", Kitex's default. */
  readonly protocol?: "binary" | "compact";
}

/** The payload protocol of a Thrift protocol id, or undefined for a protobuf frame. */
export function thriftProtocolOf(protocolId: number): PayloadProtocol | undefined {
  return protocolId === ProtocolId.ThriftBinary ? "thrift-binary" : protocolId === ProtocolId.ThriftCompact ? "thrift-compact" : undefined;
}

/** The frame protocol id of a Thrift payload protocol. */
export function protocolIdOf(protocol: PayloadProtocol): number {
  return protocol === "thrift-compact" ? ProtocolId.ThriftCompact : ProtocolId.ThriftBinary;
}

/** Reads the envelope at `buf[start, end)`. Throws FrameError BAD_PAYLOAD when it is not one. */
export function parseEnvelope(buf: Uint8Array, start: number, end: number, protocol: PayloadProtocol): ThriftEnvelope {
  try {
    return readThriftEnvelope(buf, start, end, protocol);
  } catch (e) {
    throw new FrameError("BAD_PAYLOAD", `not a Thrift ${protocol === "thrift-compact" ? "Compact" : "Binary"} message: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Begins a Thrift frame in `framing` up to its payload: the frame's prefix, its headers (with
 * `extra` first: the service name on requests, `crrst` on replies of a draining server) and, for
 * TTHeader requests, the int key/values `intInfo` writes. Returns the frame's mark for `endFrame`.
 */
export function beginThriftFrame(
  w: Writer,
  framing: Framing,
  protocol: PayloadProtocol,
  seqId: number,
  headers: Headers | undefined,
  limits: FrameLimits,
  extra?: readonly [string, string],
  intInfo?: (w: Writer) => number,
): number {
  if (framing === "framed") {
    w.ensure(4);
    const mark = w.pos - w.start;
    w.pos += 4;
    return mark;
  }
  const id = protocolIdOf(protocol);
  if (framing === "theader") {
    const mark = beginFrame(w, seqId, 0, id, APACHE_THEADER_MAGIC);
    endHeader(w, mark, writeApacheInfo(w, headers, extra?.[0], extra?.[1]), limits);
    return mark;
  }
  const mark = beginFrame(w, seqId, 0, id);
  const count = writeStringInfo(w, headers, extra?.[0], extra?.[1]) + (intInfo?.(w) ?? 0);
  endHeader(w, mark, count, limits);
  return mark;
}

/** The TApplicationException type that says what `code` says. */
export function applicationErrorOf(code: number): number {
  if (code === Code.UNIMPLEMENTED) return TApplicationError.UnknownMethod;
  if (code === Code.INVALID_ARGUMENT) return TApplicationError.ProtocolError;
  if (code === Code.UNKNOWN) return TApplicationError.Unknown;
  return TApplicationError.InternalError;
}

/**
 * The RpcError of a Thrift EXCEPTION message: what its status headers say when the peer sent
 * them (a Meridian server over a framing with headers: `statusFromHeaders`, as for protobuf),
 * else the TApplicationException's type mapped to a code (an unknown method is UNIMPLEMENTED, a
 * protocol error INVALID_ARGUMENT).
 */
export function applicationExceptionError(buf: Uint8Array, start: number, end: number, protocol: PayloadProtocol, headers: Headers): RpcError {
  const fromHeaders = statusFromHeaders(headers);
  if (fromHeaders !== undefined) return fromHeaders;
  const { type, message } = readApplicationException(buf, start, end, protocol);
  const code =
    type === TApplicationError.UnknownMethod
      ? Code.UNIMPLEMENTED
      : type === TApplicationError.ProtocolError
        ? Code.INVALID_ARGUMENT
        : type === TApplicationError.Unknown
          ? Code.UNKNOWN
          : Code.INTERNAL;
  return new RpcError(code, message === "" ? `TApplicationException type ${type}` : message, { headers });
}
