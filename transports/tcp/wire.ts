import { utf8ReadLoop, utf8WriteLoop, type Writer } from "../../runtime/index.js";
import { clipText, copyHeaders } from "../../runtime/transport.js";
import { HeaderKeys, type Headers } from "../../runtime/api.js";

/**
 * TTHeader framing as Kitex writes it (pkg/remote/codec/header_codec.go), with the Kitex
 * protobuf payload (pkg/remote/codec/protobuf/protobuf.go) inside:
 *
 * ```
 *  0  LENGTH          uint32  bytes that follow this field
 *  4  MAGIC           uint16  0x1000
 *  6  FLAGS           uint16
 *  8  SEQUENCE ID     uint32
 * 12  HEADER SIZE     uint16  size of the header info in 4-byte words
 * 14  PROTOCOL ID     uint8   0x03: Kitex protobuf
 * 15  NUM TRANSFORMS  uint8   (+ one byte per transform id)
 *     INFO blocks:    0x01 string key/values: uint16 count, then (uint16 len, key, uint16 len, value)*
 *                     0x10 int key/values:    uint16 count, then (uint16 key, uint16 len, value)*
 *                     0x11 ACL token:         uint16 len, token
 *                     0x00 padding, up to a multiple of 4 bytes from offset 14
 *     PAYLOAD         uint32 0x9001_0000 | message type, uint32 len + method name, uint32 sequence id,
 *                     then the protobuf message
 * ```
 *
 * All integers are big-endian. Where the service and method travel: the method name in the
 * payload's own header, as Kitex protobuf does; the fully qualified service name in the `isn`
 * string key (Kitex's HeaderIDLServiceName). Both are taken out of the headers a dispatcher sees.
 */

/** The TTHeader magic, in the upper 16 bits of the second word. */
export const TTHEADER_MAGIC = 0x1000;
/**
 * The magic of Apache Thrift's THeader (doc/specs/HeaderFormat.md), which has TTHeader's layout
 * but varints where TTHeader has 16-bit integers (protocol id, transforms, info ids, counts and
 * string lengths). Meridian reads it from Apache Thrift peers and answers them in it.
 */
export const APACHE_THEADER_MAGIC = 0x0fff;
/** The upper 16 bits of a strict Thrift Binary message (TBinaryProtocol VERSION_1): a framed Binary peer. */
export const THRIFT_BINARY_VERSION = 0x8001;
/** The first byte of a Thrift Compact message (TCompactProtocol PROTOCOL_ID): a framed Compact peer. */
export const THRIFT_COMPACT_ID = 0x82;
/**
 * The smallest frame, LENGTH included: a framed Thrift Compact call of a function without
 * parameters or name. TTHeader frames are at least 18 bytes; parseFrame checks each kind.
 */
export const MIN_FRAME_SIZE = 9;
/** Bytes from LENGTH to the end of HEADER SIZE: where the header info starts. */
export const FRAME_PREFIX_SIZE = 14;
/** Kitex's limit on the header info (MaxHeaderSize). */
export const MAX_HEADER_INFO_SIZE = 65536;
/** The upper 16 bits of a Kitex protobuf payload's first word (ProtobufV1Magic). */
export const KITEX_PROTOBUF_MAGIC = 0x9001;

/**
 * Payload protocols a TTHeader frame can carry (Kitex ProtocolID). Meridian speaks ProtobufKitex
 * on unary frames and ProtobufStruct (TTHeader Streaming: the bare protobuf message, no Kitex
 * payload header) on streaming frames.
 */
export const ProtocolId = {
  ThriftBinary: 0x00,
  ThriftCompact: 0x02,
  ProtobufKitex: 0x03,
  ThriftStruct: 0x10,
  ProtobufStruct: 0x11,
} as const;

/** Bits of the FLAGS field (gopkg ttheader HeaderFlags). */
export const HeaderFlags = {
  /** A TTHeader Streaming frame: the sequence id is a stream id, the frame type is int key 27. */
  Streaming: 0x0002,
} as const;

/**
 * Frame types of TTHeader Streaming (int key FrameType, as a decimal string), as Kitex's ttstream
 * numbers them, plus Meridian's window update (6) for credit-based flow control.
 */
export const StreamFrameType = {
  /** Kitex's meta frame: accepted and ignored. */
  Meta: 1,
  /** Opens a stream (client to server: headers, service, method, timeout) or carries response headers. */
  Header: 2,
  /** One message. */
  Data: 3,
  /** Ends one side: client to server a half-close; server to client the end of the call, with its status. */
  Trailer: 4,
  /** Cancels the stream, either way, with the status that says why. */
  Rst: 5,
  /** Meridian: the sender of this frame grants its peer `mrd-credit` more data frames. */
  Window: 6,
} as const;

/** Ids of the TTHeader info blocks (Kitex InfoIDType). */
export const InfoId = {
  Padding: 0x00,
  KeyValue: 0x01,
  IntKeyValue: 0x10,
  AclToken: 0x11,
} as const;

/** Kitex's int header keys (pkg/remote/transmeta/metakey.go), in their order. */
export const IntKey = {
  MeshVersion: 0,
  TransportType: 1,
  LogID: 2,
  FromService: 3,
  FromCluster: 4,
  FromIDC: 5,
  ToService: 6,
  ToCluster: 7,
  ToIDC: 8,
  ToMethod: 9,
  Env: 10,
  DestAddress: 11,
  /** The call's timeout in milliseconds, as a decimal string. */
  RPCTimeout: 12,
  ReadTimeout: 13,
  RingHashKey: 14,
  DDPTag: 15,
  WithMeshHeader: 16,
  ConnectTimeout: 17,
  SpanContext: 18,
  ShortConnection: 19,
  FromMethod: 20,
  StressTag: 21,
  MsgType: 22,
  HTTPContentType: 23,
  RawRingHashKey: 24,
  LBType: 25,
  ClusterShardID: 26,
  /** TTHeader Streaming: the frame type (StreamFrameType), as a decimal string. */
  FrameType: 27,
  /** TTHeader Streaming: the whole stream's timeout in milliseconds, as a decimal string. */
  StreamTimeout: 28,
  /**
   * Meridian's own: when the client encoded the request (its Date.now(), decimal ms), so the server
   * can tell how long it waited before being read (SendDelayEstimator). Kitex peers ignore it.
   */
  SentAt: 0x8000,
} as const;

/** Kitex's string keys that the transport itself reads and writes. */
export const StrKey = {
  /** HeaderIDLServiceName: the fully qualified service a request is for. */
  service: "isn",
  /** HeaderConnectionReadyToReset: the server is going away; move to another connection. */
  reset: "crrst",
  /** Meridian, on window frames: how many more data frames the peer may send on the stream. */
  credit: "mrd-credit",
} as const;

/** Message types of the Kitex payload header (remote.MessageType). */
export const MessageType = {
  Call: 1,
  Reply: 2,
  Exception: 3,
  Oneway: 4,
} as const;

/** Why a frame was rejected. Each kind of bad frame maps to one code. */
export type FrameErrorCode =
  | "FRAME_TOO_LARGE"
  | "BAD_MAGIC"
  | "BAD_HEADER_SIZE"
  | "BAD_INFO_ID"
  | "TRUNCATED_HEADER"
  | "TOO_MANY_HEADERS"
  | "HEADERS_TOO_LARGE"
  | "UNSUPPORTED_PROTOCOL"
  | "UNSUPPORTED_TRANSFORM"
  | "BAD_PAYLOAD"
  | "OVER_BUDGET"
  | "FRAME_TIMEOUT";

/**
 * A frame that breaks the TTHeader format or a configured limit. Incoming, it closes the
 * connection (the byte stream can no longer be trusted); outgoing, it fails the call before
 * anything is sent.
 */
export class FrameError extends Error {
  override readonly name = "FrameError";
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Limits applied to every frame, in both directions. */
export interface FrameLimits {
  /** Largest frame, LENGTH field included. Default 4 MiB, like gRPC's default message limit. */
  readonly maxFrameSize: number;
  /** Most string plus int key/values in one frame. Default 1024. */
  readonly maxHeaderCount: number;
  /** Largest header info (from the protocol id to the payload). Default 64 KiB, as in Kitex. */
  readonly maxHeaderBytes: number;
}

/** The defaults of {@link FrameLimits}. */
export const DEFAULT_FRAME_LIMITS: FrameLimits = {
  maxFrameSize: 4 * 1024 * 1024,
  maxHeaderCount: 1024,
  maxHeaderBytes: MAX_HEADER_INFO_SIZE,
};

/** Fills in the unset fields of partial limits with the defaults. */
export function frameLimits(partial?: Partial<FrameLimits>): FrameLimits {
  return { ...DEFAULT_FRAME_LIMITS, ...partial };
}

// ---------------------------------------------------------------------------------------------
// Encoding: frames are written straight into a Writer, then their size fields are patched.

/** Buffer's native UTF-8 writer: present on every Node Buffer, absent from @types/node. */
interface NativeUtf8 {
  utf8Write(s: string, offset: number): number;
}

const utf8Slice = Buffer.prototype.utf8Slice as (this: Uint8Array, start: number, end: number) => string;

/** Strings up to this many UTF-16 units are written and read by the JavaScript loops. */
const SHORT_STRING = 64;

function putU16(buf: Buffer, at: number, v: number): void {
  buf[at] = v >>> 8;
  buf[at + 1] = v & 0xff;
}

function putU32(buf: Buffer, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}

function getU16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

function getU32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

/**
 * Writes `s` at `pos` and returns the end: a plain loop while the text is ASCII (header keys and
 * values nearly always are), the UTF-8 loop from the first other character on.
 */
function putShort(buf: Buffer, pos: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return utf8WriteLoop(buf, pos, i === 0 ? s : s.slice(i));
    buf[pos++] = c;
  }
  return pos;
}

/**
 * Appends `s` as UTF-8 after a big-endian length of `lenSize` bytes: 2 for header keys and values
 * (Kitex WriteString2BLen), 4 for the method name of a Kitex protobuf payload.
 */
function putPrefixedString(w: Writer, s: string, lenSize: 2 | 4): void {
  const n = s.length;
  w.ensure(lenSize + n * 3);
  const buf = w.buf;
  const at = w.pos;
  const start = at + lenSize;
  const end = n <= SHORT_STRING ? putShort(buf, start, s) : start + (buf as unknown as NativeUtf8).utf8Write(s, start);
  const len = end - start;
  if (lenSize === 4) putU32(buf, at, len);
  else if (len > 0xffff) {
    throw new FrameError("HEADERS_TOO_LARGE", `a header key or value of ${len} bytes does not fit TTHeader's 16-bit length`);
  } else putU16(buf, at, len);
  w.pos = end;
}

function putString16(w: Writer, s: string): void {
  putPrefixedString(w, s, 2);
}

/**
 * Begins a frame: writes LENGTH (patched by `endFrame`), magic, flags, sequence id, header size
 * (patched by `endHeader`), the protocol id and no transforms. Returns the frame's mark, relative
 * to `w.start` so that it survives the writer moving to a bigger slab.
 */
export function beginFrame(w: Writer, seqId: number, flags = 0, protocolId: number = ProtocolId.ProtobufKitex, magic = TTHEADER_MAGIC): number {
  w.ensure(16);
  const buf = w.buf;
  const at = w.pos;
  putU16(buf, at + 4, magic);
  putU16(buf, at + 6, flags);
  putU32(buf, at + 8, seqId);
  buf[at + 14] = protocolId;
  buf[at + 15] = 0; // no transforms
  w.pos = at + 16;
  return at - w.start;
}

/**
 * Writes a string key/value block: `headers` (keys the transport owns are skipped) and up to
 * two extra pairs. Returns the number of pairs written.
 */
export function writeStringInfo(
  w: Writer,
  headers: Headers | undefined,
  k1?: string,
  v1?: string,
  k2?: string,
  v2?: string,
): number {
  w.ensure(3);
  const countAt = w.pos - w.start;
  w.buf[w.pos] = InfoId.KeyValue;
  w.pos += 3;
  let count = 0;
  if (k1 !== undefined) {
    putString16(w, k1);
    putString16(w, v1!);
    count++;
  }
  if (k2 !== undefined) {
    putString16(w, k2);
    putString16(w, v2!);
    count++;
  }
  if (headers !== undefined) {
    for (const k in headers) {
      if (ownedKey(k)) continue;
      putString16(w, k);
      putString16(w, headers[k]!);
      count++;
    }
  }
  if (count === 0) w.pos -= 3; // an empty block is left out, as Kitex does
  else putU16(w.buf, w.start + countAt + 1, count);
  return count;
}

/** A string block past this many bytes is written as usual rather than kept in a StringInfoCache. */
const MAX_CACHED_INFO = 512;

/**
 * The last string key/value block a connection wrote, copied instead of encoded again while the
 * strings are the same: a client's calls mostly carry the same headers frame after frame (its
 * region, consistency, the service) and a server's replies the same few, and copying the bytes
 * costs a tenth of encoding them. Other strings are written by `writeStringInfo` and become the
 * block kept. The bytes are always exactly what `writeStringInfo` writes for the same arguments.
 */
export class StringInfoCache {
  /** The pair and the headers written, as key, value, key, value... (owned keys left out). */
  private readonly strings: string[] = [];
  private withPair = false;
  private bytes: Uint8Array | undefined;
  private count = 0;

  /** Writes the block of `headers` and the pair `k`/`v`, as `writeStringInfo(w, headers, k, v)`. */
  write(w: Writer, headers: Headers | undefined, k?: string, v?: string): number {
    const bytes = this.bytes;
    if (bytes !== undefined && this.holds(headers, k, v)) {
      w.ensure(bytes.length);
      w.buf.set(bytes, w.pos);
      w.pos += bytes.length;
      return this.count;
    }
    const from = w.pos - w.start; // relative: the writer may move to a bigger slab
    const count = writeStringInfo(w, headers, k, v);
    this.keep(w.buf, w.start + from, w.pos, count, headers, k, v);
    return count;
  }

  /** Whether the kept block is the one of these strings. */
  private holds(headers: Headers | undefined, k: string | undefined, v: string | undefined): boolean {
    const s = this.strings;
    let i = 0;
    if (k !== undefined) {
      if (!this.withPair || s[0] !== k || s[1] !== v) return false;
      i = 2;
    } else if (this.withPair) return false;
    if (headers !== undefined) {
      for (const key in headers) {
        if (ownedKey(key)) continue;
        if (s[i] !== key || s[i + 1] !== headers[key]) return false;
        i += 2;
      }
    }
    return i === s.length;
  }

  /** Keeps the block written at `buf[start, end)` and the strings it was written from. */
  private keep(buf: Buffer, start: number, end: number, count: number, headers: Headers | undefined, k: string | undefined, v: string | undefined): void {
    const size = end - start;
    if (size > MAX_CACHED_INFO) {
      this.bytes = undefined;
      return;
    }
    // Same size as the block kept (a header whose value changes call by call): no allocation.
    if (this.bytes?.length !== size) this.bytes = new Uint8Array(size);
    buf.copy(this.bytes, 0, start, end);
    this.count = count;
    this.withPair = k !== undefined;
    const s = this.strings;
    let i = 0;
    if (k !== undefined) {
      s[i++] = k;
      s[i++] = v!;
    }
    if (headers !== undefined) {
      for (const key in headers) {
        if (ownedKey(key)) continue;
        s[i++] = key;
        s[i++] = headers[key]!;
      }
    }
    if (s.length !== i) s.length = i;
  }
}

/** Writes an int key/value block from (key, value) pairs. Returns the number of pairs. */
export function writeIntInfo(w: Writer, entries: ReadonlyArray<readonly [number, string]>): number {
  if (entries.length === 0) return 0;
  w.ensure(3);
  w.buf[w.pos] = InfoId.IntKeyValue;
  putU16(w.buf, w.pos + 1, entries.length);
  w.pos += 3;
  for (const [k, v] of entries) {
    w.ensure(2);
    putU16(w.buf, w.pos, k);
    w.pos += 2;
    putString16(w, v);
  }
  return entries.length;
}

/**
 * Writes the int key/value block of a request (its hot path): RPCTimeout when `timeoutMs` > 0,
 * and SentAt. Returns the number of pairs.
 */
export function writeRequestInfo(w: Writer, timeoutMs: number, sentAt: number): number {
  const count = timeoutMs > 0 ? 2 : 1;
  w.ensure(3);
  const buf = w.buf;
  buf[w.pos] = InfoId.IntKeyValue;
  putU16(buf, w.pos + 1, count);
  w.pos += 3;
  if (timeoutMs > 0) putDecimalPair(w, IntKey.RPCTimeout, timeoutMs);
  putSentAt(w, sentAt);
  return count;
}

/** The SentAt value written last and its decimal digits: calls sent in the same millisecond copy them. */
let lastSentAt = -1;
let lastSentAtLength = 0;
const lastSentAtDigits = new Uint8Array(20);

/**
 * Writes the SentAt pair. Its 13 digits cost 13 divisions; a busy client sends many calls a
 * millisecond, and each after the first in that millisecond copies the digits of the one before.
 */
function putSentAt(w: Writer, sentAt: number): void {
  if (sentAt !== lastSentAt) {
    // Taken relative to `w.start`: writing may move the unwritten bytes in the slab (Writer#grow).
    const mark = w.pos - w.start;
    putDecimalPair(w, IntKey.SentAt, sentAt);
    const start = w.start + mark + 4;
    const n = w.pos - start;
    if (n > lastSentAtDigits.length) return;
    for (let i = 0; i < n; i++) lastSentAtDigits[i] = w.buf[start + i]!;
    lastSentAt = sentAt;
    lastSentAtLength = n;
    return;
  }
  const n = lastSentAtLength;
  w.ensure(4 + n);
  const buf = w.buf;
  const at = w.pos;
  putU16(buf, at, IntKey.SentAt);
  putU16(buf, at + 2, n);
  for (let i = 0; i < n; i++) buf[at + 4 + i] = lastSentAtDigits[i]!;
  w.pos = at + 4 + n;
}

/**
 * Writes an int key/value pair whose value is a non-negative integer, in decimal, without a string.
 * A value past 2^31 (SentAt always is) is split at 10^9 so that every digit is taken with int32
 * arithmetic: `%` on a larger double is a call to fmod, and SentAt's 13 of them cost more than
 * the rest of the frame's header. Good up to 2^31 * 10^9, far past the largest value written
 * (deadlines.ts MAX_WIRE_TIMEOUT_MS).
 */
function putDecimalPair(w: Writer, key: number, n: number): void {
  const high = n > 0x7fffffff ? Math.floor(n / 1e9) : 0;
  const low = high > 0 ? (n - high * 1e9) | 0 : n; // | 0: V8 then keeps it an int32, not a double
  const lowDigits = high > 0 ? 9 : decimalDigits(low);
  const digits = lowDigits + (high > 0 ? decimalDigits(high) : 0);
  w.ensure(4 + digits);
  const buf = w.buf;
  const at = w.pos;
  putU16(buf, at, key);
  putU16(buf, at + 2, digits);
  const end = at + 4 + digits;
  putDigits(buf, end, lowDigits, low);
  if (high > 0) putDigits(buf, end - 9, digits - 9, high);
  w.pos = end;
}

/** How many decimal digits the int32 `n` >= 0 has. */
function decimalDigits(n: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = (x / 10) | 0) digits++;
  return digits;
}

/** Writes the last `count` decimal digits of the int32 `n` >= 0 (zero-padded) into the bytes before `end`. */
function putDigits(buf: Buffer, end: number, count: number, n: number): void {
  let x = n;
  for (let i = end - 1; i >= end - count; i--) {
    const q = (x / 10) | 0;
    buf[i] = 48 + x - q * 10;
    x = q;
  }
}

/**
 * Writes the int key/value block of a streaming frame: its FrameType, and on a stream's opening
 * header frame the method (ToMethod) and the stream's timeout (StreamTimeout, when > 0). Returns
 * the number of pairs.
 */
export function writeStreamInfo(w: Writer, frameType: number, method?: string, timeoutMs = 0): number {
  const count = method === undefined ? 1 : timeoutMs > 0 ? 3 : 2;
  w.ensure(3);
  w.buf[w.pos] = InfoId.IntKeyValue;
  putU16(w.buf, w.pos + 1, count);
  w.pos += 3;
  const pair = (key: number, value: string): void => {
    w.ensure(2);
    putU16(w.buf, w.pos, key);
    w.pos += 2;
    putString16(w, value);
  };
  pair(IntKey.FrameType, FRAME_TYPE_STRINGS[frameType] ?? String(frameType));
  if (method !== undefined) {
    pair(IntKey.ToMethod, method);
    if (timeoutMs > 0) pair(IntKey.StreamTimeout, String(timeoutMs));
  }
  return count;
}

const FRAME_TYPE_STRINGS = ["0", "1", "2", "3", "4", "5", "6"];

/**
 * Ends the header info begun by `beginFrame`: pads it with zeros to a multiple of 4 bytes and
 * patches HEADER SIZE. `headerCount` is checked against the limits here, so a frame that breaks
 * them fails before it is sent.
 */
export function endHeader(w: Writer, mark: number, headerCount: number, limits: FrameLimits): void {
  const at = w.start + mark;
  let size = w.pos - (at + FRAME_PREFIX_SIZE);
  const pad = (4 - (size & 3)) & 3;
  w.ensure(pad);
  for (let i = 0; i < pad; i++) w.buf[w.pos++] = 0;
  size += pad;
  if (headerCount > limits.maxHeaderCount) {
    throw new FrameError("TOO_MANY_HEADERS", `${headerCount} headers exceed the limit of ${limits.maxHeaderCount}; send fewer headers or raise maxHeaderCount`);
  }
  if (size > limits.maxHeaderBytes || size > 0xffff * 4) {
    throw new FrameError("HEADERS_TOO_LARGE", `headers of ${size} bytes exceed the limit of ${limits.maxHeaderBytes}; send smaller headers or raise maxHeaderBytes`);
  }
  putU16(w.buf, w.start + mark + 12, size >>> 2);
}

/** Writes the Kitex protobuf payload header: magic and message type, method name, sequence id. */
export function writeKitexMeta(w: Writer, messageType: number, method: string, seqId: number): void {
  w.ensure(4);
  putU32(w.buf, w.pos, ((KITEX_PROTOBUF_MAGIC << 16) | messageType) >>> 0);
  w.pos += 4;
  putPrefixedString(w, method, 4);
  w.ensure(4);
  putU32(w.buf, w.pos, seqId);
  w.pos += 4;
}

/**
 * Ends a frame begun by `beginFrame`: patches LENGTH. Returns the frame's size in bytes, or
 * throws FRAME_TOO_LARGE past `limits.maxFrameSize` (the caller discards the frame).
 */
export function endFrame(w: Writer, mark: number, limits: FrameLimits): number {
  const at = w.start + mark;
  const size = w.pos - at;
  if (size > limits.maxFrameSize) {
    throw new FrameError("FRAME_TOO_LARGE", `a frame of ${size} bytes exceeds the limit of ${limits.maxFrameSize} bytes; send a smaller message or raise maxFrameSize`);
  }
  putU32(w.buf, at, size - 4);
  return size;
}

// ---------------------------------------------------------------------------------------------
// Decoding: a frame is parsed where it lies; the payload is a view into the same bytes.

/**
 * How a frame is framed: Kitex's TTHeader, Apache Thrift's THeader, or a bare Thrift message
 * after its length (TFramedTransport), which has no headers and whose sequence id is the message's.
 */
export type Framing = "ttheader" | "theader" | "framed";

/** What `parseFrame` finds in a frame. One instance is reused frame after frame. */
export class FrameHead {
  framing: Framing = "ttheader";
  seqId = 0;
  flags = 0;
  protocolId = 0;
  /** String key/values, without the keys the transport owns (`isn`, `crrst`). */
  headers: Headers = {};
  /**
   * Int key/values (Kitex transmeta keys) as strings, or undefined when the frame had none; those
   * read as numbers (RPCTimeout, StreamTimeout, FrameType, SentAt) are in their own fields instead.
   */
  intInfo: Record<number, string> | undefined = undefined;
  /** The `isn` string key: the fully qualified service, or "". */
  service = "";
  /** The `crrst` string key was present: the peer is shutting down. */
  reset = false;
  /** RPCTimeout (or, on a streaming frame, StreamTimeout) in ms, or -1 when absent or not a number. */
  timeoutMs = -1;
  /** The FrameType int key of a streaming frame (StreamFrameType), or 0 when absent. */
  frameType = 0;
  /** The SentAt int key: when the peer encoded the frame (its clock, ms), or -1 when absent. */
  sentAt = -1;
  /** Offset of the payload in the parsed bytes. */
  payloadStart = 0;
  /** End of the frame in the parsed bytes. */
  end = 0;
  /**
   * The last string info block parsed into this head (a copy of its bytes, at most
   * MAX_REUSED_BLOCK) and what it held: a connection's frames mostly repeat their headers, and
   * while the block's bytes are the same parseFrame copies the headers instead of reading every
   * string again.
   */
  lastBlock: Uint8Array | undefined = undefined;
  /** `lastBlock` as a DataView, for `sameBytes`. */
  lastView: DataView | undefined = undefined;
  lastHeaders: Headers = {};
  lastService = "";
  lastReset = false;
  lastCount = 0;
  /** String blocks in a row that were not the last one's (see parseFrame). */
  misses = 0;
}

/** What `parseKitexMeta` finds at the start of a Kitex protobuf payload. */
export class KitexMeta {
  messageType = 0;
  method = "";
  seqId = 0;
  /** Offset of the protobuf message. */
  bodyStart = 0;
}

/**
 * Strings read from headers repeat from frame to frame (keys, regions, method names), so short
 * ones go through a direct-mapped cache keyed by their bytes: a hit costs a hash and a compare
 * and allocates nothing. A miss decodes and takes the slot.
 */
const CACHE_SLOTS = 1024;
const CACHED_MAX = 48;
const cacheBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(CACHE_SLOTS).fill(undefined);
const cacheStrings: string[] = new Array<string>(CACHE_SLOTS).fill("");

function readString(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === 0) return "";
  if (n > CACHED_MAX) return utf8Slice.call(buf, start, end);
  let h = 0x811c9dc5 ^ n;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  const slot = (h ^ (h >>> 15)) & (CACHE_SLOTS - 1);
  const k = cacheBytes[slot];
  if (k !== undefined && k.length === n) {
    let i = 0;
    while (i < n && k[i] === buf[start + i]) i++;
    if (i === n) return cacheStrings[slot]!;
  }
  const s = utf8ReadLoop(buf, start, end) ?? utf8Slice.call(buf, start, end);
  cacheBytes[slot] = Uint8Array.prototype.slice.call(buf, start, end);
  cacheStrings[slot] = s;
  return s;
}

/**
 * Parses the TTHeader of the frame at `buf[start, end)` (LENGTH included) into `out`. The
 * frame's LENGTH must already have been checked to match `end`. Throws FrameError on anything
 * malformed or over the limits.
 */
export function parseFrame(buf: Uint8Array, start: number, end: number, limits: FrameLimits, out: FrameHead): FrameHead {
  if (end - start < MIN_FRAME_SIZE) {
    throw new FrameError("BAD_HEADER_SIZE", `a frame of ${end - start} bytes is shorter than the smallest frame (${MIN_FRAME_SIZE} bytes)`);
  }
  const magic = getU16(buf, start + 4);
  if (magic !== TTHEADER_MAGIC && magic !== APACHE_THEADER_MAGIC) {
    if (magic === THRIFT_BINARY_VERSION || buf[start + 4] === THRIFT_COMPACT_ID) return framedThrift(buf, start, end, out);
    throw new FrameError("BAD_MAGIC", `bad magic 0x${magic.toString(16)}: not a TTHeader (0x1000), THeader (0x0fff) or framed Thrift frame`);
  }
  if (end - start < FRAME_PREFIX_SIZE + 4) {
    throw new FrameError("BAD_HEADER_SIZE", `a frame of ${end - start} bytes is shorter than the smallest TTHeader frame (18 bytes)`);
  }
  out.framing = magic === TTHEADER_MAGIC ? "ttheader" : "theader";
  out.flags = getU16(buf, start + 6);
  out.seqId = getU32(buf, start + 8);
  const infoStart = start + FRAME_PREFIX_SIZE;
  const infoSize = getU16(buf, start + 12) * 4;
  if (infoSize < 4 || infoSize > limits.maxHeaderBytes || infoStart + infoSize > end) {
    throw new FrameError(
      infoSize > limits.maxHeaderBytes ? "HEADERS_TOO_LARGE" : "BAD_HEADER_SIZE",
      `header size ${infoSize} does not fit a frame of ${end - start} bytes (limit ${limits.maxHeaderBytes})`,
    );
  }
  const infoEnd = infoStart + infoSize;
  out.protocolId = buf[infoStart]!;
  const streaming = (out.flags & HeaderFlags.Streaming) !== 0;
  const thrift = out.protocolId === ProtocolId.ThriftBinary || out.protocolId === ProtocolId.ThriftCompact;
  if (streaming ? out.protocolId !== ProtocolId.ProtobufStruct : out.protocolId !== ProtocolId.ProtobufKitex && !thrift) {
    throw new FrameError(
      "UNSUPPORTED_PROTOCOL",
      streaming
        ? `protocol id ${out.protocolId} of a streaming frame is not protobuf struct (0x11): Meridian streams protobuf only`
        : `protocol id ${out.protocolId} is not Kitex protobuf (3), Thrift Binary (0) or Thrift Compact (2)`,
    );
  }
  if (out.framing === "theader" && (streaming || !thrift)) {
    throw new FrameError("UNSUPPORTED_PROTOCOL", `a THeader frame (0x0fff) must carry Thrift Binary (0) or Compact (2), not protocol ${out.protocolId}`);
  }
  const transforms = buf[infoStart + 1]!;
  if (transforms !== 0) {
    throw new FrameError("UNSUPPORTED_TRANSFORM", `${transforms} payload transforms (compression) are not supported`);
  }
  out.service = "";
  out.reset = false;
  out.timeoutMs = -1;
  out.frameType = 0;
  out.sentAt = -1;
  out.payloadStart = infoEnd;
  out.end = end;
  if (out.framing === "theader") return parseApacheInfo(buf, infoStart + 2, infoEnd, limits, out);
  let p = infoStart + 2;
  let count = 0;
  let headers: Headers | undefined;
  let intInfo: Record<number, string> | undefined;
  while (p < infoEnd) {
    const id = buf[p++]!;
    if (id === InfoId.Padding) continue;
    if (id === InfoId.KeyValue || id === InfoId.IntKeyValue) {
      // The first string block: the same bytes as the last one's give the same headers. While
      // blocks keep changing (a header unique to every call), the copy is not even tried but
      // once every 64 frames.
      const first = id === InfoId.KeyValue && headers === undefined;
      const blockStart = p;
      const tryLast = first && (out.misses < 3 || (out.misses & 63) === 0);
      if (first) {
        const last = out.lastBlock;
        if (tryLast && last !== undefined && sameBytes(buf, p, infoEnd, last, out.lastView!)) {
          count += out.lastCount;
          if (count > limits.maxHeaderCount) throw tooManyHeaders(limits);
          headers = { ...out.lastHeaders };
          out.service = out.lastService;
          out.reset = out.lastReset;
          out.misses = 0;
          p += last.length;
          continue;
        }
        headers = {};
      }
      if (p + 2 > infoEnd) throw truncatedInfo(id);
      const n = getU16(buf, p);
      p += 2;
      count += n;
      if (count > limits.maxHeaderCount) throw tooManyHeaders(limits);
      for (let i = 0; i < n; i++) {
        if (id === InfoId.KeyValue) {
          p = readPair(buf, p, infoEnd, out, headers!);
        } else {
          if (p + 4 > infoEnd) throw truncatedInfo(id);
          const key = getU16(buf, p);
          const vl = getU16(buf, p + 2);
          const vs = p + 4;
          p = vs + vl;
          if (p > infoEnd) throw truncatedInfo(id);
          // The keys read on every call are numbers: read as such, never made into strings.
          if (key === IntKey.RPCTimeout || key === IntKey.StreamTimeout) {
            const ms = decimalAt(buf, vs, p);
            if (ms >= 0) out.timeoutMs = ms;
          } else if (key === IntKey.FrameType) {
            out.frameType = Math.max(0, decimalAt(buf, vs, p));
          } else if (key === IntKey.SentAt) {
            out.sentAt = decimalAt(buf, vs, p);
          } else {
            (intInfo ??= {})[key] = readString(buf, vs, p);
          }
        }
      }
      if (first) {
        out.misses++;
        if (tryLast && p - blockStart <= MAX_REUSED_BLOCK) {
          // A copy: a view would hold the whole socket chunk the frame came in (up to 64 KiB) for
          // as long as the connection lives.
          const block = Uint8Array.prototype.slice.call(buf, blockStart, p);
          out.lastBlock = block;
          out.lastView = new DataView(block.buffer, block.byteOffset, block.byteLength);
          out.lastHeaders = { ...headers };
          out.lastService = out.service;
          out.lastReset = out.reset;
          out.lastCount = n;
        }
      }
    } else if (id === InfoId.AclToken) {
      if (p + 2 > infoEnd) throw truncatedInfo(id);
      p += 2 + getU16(buf, p); // Kitex skips it too
      if (p > infoEnd) throw truncatedInfo(id);
    } else {
      throw new FrameError("BAD_INFO_ID", `unknown header info id 0x${id.toString(16)}`);
    }
  }
  out.headers = headers ?? {};
  out.intInfo = intInfo;
  return out;
}

/**
 * The largest string info block a FrameHead keeps to reuse, bytes. Each connection keeps one, so
 * a peer's 64 KiB header blocks over 10 000 connections must not become 640 MB held: typical
 * blocks are 100-300 bytes; larger ones are read every time.
 */
export const MAX_REUSED_BLOCK = 1024;

/**
 * The last buffer `sameBytes` compared in, and a DataView of it, kept for the next frame of the
 * same socket chunk (one per process: it holds at most one chunk alive).
 */
let chunk: Uint8Array | undefined;
let chunkView: DataView | undefined;

/**
 * Whether `buf[p, end)` starts with the bytes of `block` (`blockView` its DataView): four bytes
 * at a time, through DataViews. A byte loop costs about 2.5 ns a byte on Node 20, four times as
 * much, and a DataView made per frame costs more than the loop (about 300 ns).
 */
function sameBytes(buf: Uint8Array, p: number, end: number, block: Uint8Array, blockView: DataView): boolean {
  const n = block.length;
  if (p + n > end) return false;
  let view = chunkView;
  if (chunk !== buf || view === undefined) {
    chunk = buf;
    view = chunkView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  let i = 0;
  for (; i + 4 <= n; i += 4) if (view.getInt32(p + i, true) !== blockView.getInt32(i, true)) return false;
  for (; i < n; i++) if (buf[p + i] !== block[i]) return false;
  return true;
}

/** Reads one key/value pair of a string info block at `p` into `headers` (or `out`); returns where it ends. */
function readPair(buf: Uint8Array, p: number, infoEnd: number, out: FrameHead, headers: Headers): number {
  if (p + 2 > infoEnd) throw truncatedInfo(InfoId.KeyValue);
  const kl = getU16(buf, p);
  const ks = p + 2;
  p = ks + kl;
  if (p + 2 > infoEnd) throw truncatedInfo(InfoId.KeyValue);
  const vl = getU16(buf, p);
  const vs = p + 2;
  p = vs + vl;
  if (p > infoEnd) throw truncatedInfo(InfoId.KeyValue);
  fileHeader(out, headers, readString(buf, ks, ks + kl), readString(buf, vs, vs + vl));
  return p;
}

/** A bare Thrift message after its LENGTH (TFramedTransport): no headers, the sequence id is the message's. */
function framedThrift(buf: Uint8Array, start: number, end: number, out: FrameHead): FrameHead {
  out.framing = "framed";
  out.flags = 0;
  out.seqId = 0;
  out.protocolId = buf[start + 4] === THRIFT_COMPACT_ID ? ProtocolId.ThriftCompact : ProtocolId.ThriftBinary;
  out.headers = {};
  out.intInfo = undefined;
  out.service = "";
  out.reset = false;
  out.timeoutMs = -1;
  out.frameType = 0;
  out.sentAt = -1;
  out.payloadStart = start + 4;
  out.end = end;
  return out;
}

/**
 * The info blocks of an Apache THeader frame, after its protocol id and transform count (each
 * one byte here: larger varints were refused as unknown protocols or transforms): varint block
 * ids; string key/values (1) as a varint count and varint-length strings. Like Apache, reading
 * stops at the first other block id (padding is 0), and the rest of the header is skipped.
 */
function parseApacheInfo(buf: Uint8Array, from: number, infoEnd: number, limits: FrameLimits, out: FrameHead): FrameHead {
  const headers: Headers = {};
  let p = from;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (p >= infoEnd) throw truncatedInfo(InfoId.KeyValue);
      const b = buf[p++]!;
      v += (b & 127) * 2 ** shift;
      if (b < 128) return v;
    }
    throw new FrameError("TRUNCATED_HEADER", "a THeader varint runs past 5 bytes");
  };
  let count = 0;
  while (p < infoEnd && varint() === InfoId.KeyValue) {
    const n = varint();
    count += n;
    if (count > limits.maxHeaderCount) throw tooManyHeaders(limits);
    for (let i = 0; i < n; i++) {
      const kl = varint();
      const ks = p;
      if (kl > infoEnd - ks) throw truncatedInfo(InfoId.KeyValue);
      p = ks + kl;
      const vl = varint();
      const vs = p;
      if (vl > infoEnd - vs) throw truncatedInfo(InfoId.KeyValue);
      p = vs + vl;
      const key = readString(buf, ks, ks + kl);
      const value = readString(buf, vs, vs + vl);
      fileHeader(out, headers, key, value);
    }
  }
  out.headers = headers;
  out.intInfo = undefined;
  return out;
}

/**
 * Writes an Apache THeader string key/value block (varint id, count and lengths): `headers`
 * (keys the transport owns are skipped) and up to one extra pair. Returns the number of pairs.
 */
export function writeApacheInfo(w: Writer, headers: Headers | undefined, k1?: string, v1?: string): number {
  let count = k1 === undefined ? 0 : 1;
  if (headers !== undefined) for (const k in headers) if (!ownedKey(k)) count++;
  if (count === 0) return 0;
  w.uint32(InfoId.KeyValue);
  w.uint32(count);
  if (k1 !== undefined) {
    apacheString(w, k1);
    apacheString(w, v1!);
  }
  if (headers !== undefined) {
    for (const k in headers) {
      if (ownedKey(k)) continue;
      apacheString(w, k);
      apacheString(w, headers[k]!);
    }
  }
  return count;
}

/** A THeader string: varint length and UTF-8, up to 64 KiB like TTHeader's (the header's own limit applies too). */
function apacheString(w: Writer, s: string): void {
  const at = w.pos;
  w.string(s);
  if (w.pos - at > 0xffff + 3) {
    throw new FrameError("HEADERS_TOO_LARGE", `a header key or value of ${w.pos - at} bytes is over the 64 KiB a header string may have`);
  }
}

/**
 * The non-negative decimal integer written at `buf[start, end)`, or -1 when the bytes are not one
 * (empty, a sign, a point, any other character, or more than 15 digits).
 */
function decimalAt(buf: Uint8Array, start: number, end: number): number {
  if (start === end || end - start > 15) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** The string keys the transport owns (`isn`, `crrst`): read into the frame's head, never part of a call's headers. */
function ownedKey(key: string): boolean {
  return key === StrKey.service || key === StrKey.reset;
}

/** Files a string key/value read from a frame: the transport's own keys into `out`, the others into `headers`. */
function fileHeader(out: FrameHead, headers: Headers, key: string, value: string): void {
  if (key === StrKey.service) out.service = value;
  else if (key === StrKey.reset) out.reset = true;
  else headers[key] = value;
}

function tooManyHeaders(limits: FrameLimits): FrameError {
  return new FrameError("TOO_MANY_HEADERS", `more than ${limits.maxHeaderCount} headers in one frame`);
}

function truncatedInfo(id: number): FrameError {
  return new FrameError("TRUNCATED_HEADER", `header info block 0x${id.toString(16)} runs past the header size`);
}

/** Parses the Kitex protobuf payload header at `buf[start, end)` into `out`. */
export function parseKitexMeta(buf: Uint8Array, start: number, end: number, out: KitexMeta): KitexMeta {
  if (end - start < 12) throw new FrameError("BAD_PAYLOAD", `a payload of ${end - start} bytes is too short for the Kitex protobuf header`);
  const first = getU32(buf, start);
  if (first >>> 16 !== KITEX_PROTOBUF_MAGIC) {
    throw new FrameError("BAD_PAYLOAD", `bad payload magic 0x${(first >>> 16).toString(16)}: not Kitex protobuf (0x9001)`);
  }
  out.messageType = first & 0xffff;
  const n = getU32(buf, start + 4);
  if (n > end - start - 12) throw new FrameError("BAD_PAYLOAD", `method name of ${n} bytes runs past the payload`);
  out.method = readString(buf, start + 8, start + 8 + n);
  out.seqId = getU32(buf, start + 8 + n);
  out.bodyStart = start + 12 + n;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Splitting a byte stream into frames.

/**
 * What a FrameSplitter reports about the frame it is assembling, so that its owner can bound the
 * memory every connection holds in partial frames together and time out frames that stall.
 */
export interface PartialFrameWatcher {
  /**
   * The partial frame's buffer grows by `bytes` (0 when only its first LENGTH bytes are in);
   * `first` says a new partial frame begins. Returning false refuses: `push` throws FrameError
   * OVER_BUDGET and the caller closes the connection.
   */
  grow(bytes: number, first: boolean): boolean;
  /** The partial frame is complete (or dropped): its `bytes` are no longer held by the splitter. */
  release(bytes: number): void;
}

/** A partial frame's buffer starts at this size or what its first chunk needs, whichever is larger. */
const PARTIAL_MIN = 64;

/** The smallest power of two >= n (n >= 1, up to 2^31). */
function ceilPow2(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

/**
 * Splits socket chunks into frames. A frame that lies inside one chunk is handed out in place
 * (`onFrame(chunk, start, end)`, no copy); only a frame split across chunks is assembled, into a
 * fresh buffer (never reused: decoded bytes fields are views into it).
 *
 * Memory follows bytes received, not bytes announced: the assembly buffer starts at what the
 * first chunk needs (rounded up to a power of two, at least 64 bytes), doubles as bytes arrive and
 * is capped at the announced size, so a frame is handed out in a buffer of exactly its size
 * while a peer that announces 4 MiB and sends 10 bytes costs 64 bytes. Growth is reported to an
 * optional {@link PartialFrameWatcher}.
 *
 * LENGTH is checked against `maxFrameSize` as soon as its four bytes are in, so an oversize or
 * garbage stream is rejected before any of it is buffered.
 */
export class FrameSplitter {
  /** A frame being assembled, and how much of it has arrived. */
  private partial: Buffer | undefined;
  private filled = 0;
  /** The announced size of the frame being assembled. */
  private total = 0;
  /** The first bytes of a frame whose LENGTH is not complete yet. */
  private head = Buffer.alloc(4);
  private headLen = 0;

  constructor(
    private readonly maxFrameSize: number,
    private readonly onFrame: (buf: Buffer, start: number, end: number) => void,
    private readonly watcher?: PartialFrameWatcher,
  ) {}

  /** Bytes received for frames not complete yet. */
  get buffered(): number {
    return this.filled + this.headLen;
  }

  /** Bytes of memory held for the frame being assembled (its buffer's size). */
  get held(): number {
    return this.partial === undefined ? 0 : this.partial.length;
  }

  /** Feeds a chunk. Throws FrameError for a frame over the size limit (or refused by the watcher). */
  push(chunk: Buffer): void {
    let p = 0;
    const n = chunk.length;
    if (this.headLen > 0) {
      while (this.headLen < 4 && p < n) this.head[this.headLen++] = chunk[p++]!;
      if (this.headLen < 4) return;
      this.headLen = 0;
      this.total = this.frameSize(this.head, 0);
      this.begin(this.head, 0, 4, n - p + 4, false);
    }
    if (this.partial !== undefined) {
      const take = Math.min(this.total - this.filled, n - p);
      if (this.filled + take > this.partial.length) this.enlarge(this.filled + take);
      const frame = this.partial!;
      chunk.copy(frame, this.filled, p, p + take);
      this.filled += take;
      p += take;
      if (this.filled < this.total) return;
      this.partial = undefined;
      this.filled = 0;
      this.watcher?.release(frame.length);
      this.onFrame(frame, 0, frame.length);
    }
    while (p < n) {
      if (n - p < 4) {
        if (this.watcher !== undefined) this.admit(0, true);
        while (p < n) this.head[this.headLen++] = chunk[p++]!;
        return;
      }
      const total = this.frameSize(chunk, p);
      if (n - p >= total) {
        const start = p;
        p += total;
        this.onFrame(chunk, start, p);
      } else {
        this.total = total;
        this.begin(chunk, p, n, n - p, true);
        return;
      }
    }
  }

  /** Drops the frame being assembled (the connection is closing): its memory is released. */
  clear(): void {
    const started = this.partial !== undefined || this.headLen > 0;
    const held = this.held;
    this.partial = undefined;
    this.filled = 0;
    this.headLen = 0;
    if (started) this.watcher?.release(held);
  }

  /** Starts assembling a frame of `this.total` bytes with `src[from, to)`; `need` bytes are at hand. */
  private begin(src: Uint8Array, from: number, to: number, need: number, first: boolean): void {
    const size = Math.min(this.total, Math.max(PARTIAL_MIN, ceilPow2(need)));
    if (this.watcher !== undefined) this.admit(size, first);
    const frame = Buffer.allocUnsafe(size);
    frame.set(src.subarray(from, to), 0);
    this.partial = frame;
    this.filled = to - from;
  }

  /** Grows the buffer of the frame being assembled to hold at least `need` bytes. */
  private enlarge(need: number): void {
    const old = this.partial!;
    const size = Math.min(this.total, Math.max(old.length * 2, ceilPow2(need)));
    if (this.watcher !== undefined) this.admit(size - old.length, false);
    const frame = Buffer.allocUnsafe(size);
    old.copy(frame, 0, 0, this.filled);
    this.partial = frame;
  }

  private admit(bytes: number, first: boolean): void {
    if (!this.watcher!.grow(bytes, first)) {
      throw new FrameError("OVER_BUDGET", `a partial frame of ${this.filled + bytes} bytes does not fit the server's budget for partially received frames`);
    }
  }

  private frameSize(buf: Uint8Array, at: number): number {
    const total = getU32(buf, at) + 4;
    if (getU16(buf, at) === THRIFT_BINARY_VERSION || (buf[at] === THRIFT_COMPACT_ID && (buf[at + 1]! & 0x1f) === 1)) {
      // The first word of an unframed Thrift message, not a LENGTH.
      throw new FrameError("UNSUPPORTED_PROTOCOL", "unframed Thrift (TBufferedTransport, Kitex's PurePayload) is not supported: frame it with TTHeader, THeader or TFramedTransport");
    }
    if (total > this.maxFrameSize) {
      throw new FrameError("FRAME_TOO_LARGE", `incoming frame of ${total} bytes exceeds the limit of ${this.maxFrameSize} bytes`);
    }
    if (total < MIN_FRAME_SIZE) {
      throw new FrameError("BAD_HEADER_SIZE", `frame LENGTH ${total - 4} is shorter than any frame (${MIN_FRAME_SIZE - 4} bytes)`);
    }
    return total;
  }
}

/** The most UTF-16 units of peer-supplied text (a method name, an error message) echoed back. */
export const MAX_ECHOED_TEXT = 512;

/**
 * `s` cut to `MAX_ECHOED_TEXT` UTF-16 units, marked as cut (the runtime's clipText): every string a
 * reply echoes from a peer's input goes through here, so no input can make a reply larger than a frame.
 */
export function boundText(s: string, max = MAX_ECHOED_TEXT): string {
  return clipText(s, max);
}

/**
 * `headers` with its status message (`rpc-message`) cut by {@link boundText}: the same object
 * when the message is short, as it nearly always is. Error messages often quote what the peer
 * sent (an unknown method's name), so replies and trailers go through here.
 */
export function boundStatus(headers: Headers): Headers {
  const message = headers[HeaderKeys.message];
  if (message === undefined || message.length <= MAX_ECHOED_TEXT) return headers;
  const bounded = copyHeaders(headers);
  bounded[HeaderKeys.message] = boundText(message);
  return bounded;
}

// ---------------------------------------------------------------------------------------------
// Kitex's exception payload: message ErrorProto { int32 TypeID = 1; string Message = 2; }

/** Kitex's TransError type ids (remote.UnknownMethod, ...) used in an exception payload. */
export const KitexErrorType = {
  UnknownApplicationException: 0,
  UnknownMethod: 1,
  InternalError: 6,
  ProtocolError: 7,
  UnknownService: 20,
} as const;

/** Writes the body of an exception payload: Kitex's ErrorProto. */
export function writeErrorProto(w: Writer, typeId: number, message: string): void {
  if (typeId !== 0) {
    w.uint32(8);
    w.int32(typeId);
  }
  if (message !== "") {
    w.uint32(18);
    w.string(message);
  }
}

/** Reads Kitex's ErrorProto from `buf[start, end)`; unknown fields are skipped, bad bytes give an empty result. */
export function parseErrorProto(buf: Uint8Array, start: number, end: number): { typeId: number; message: string } {
  let typeId = 0;
  let message = "";
  let p = start;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; p < end && shift < 35; shift += 7) {
      const b = buf[p++]!;
      v |= (b & 127) << shift;
      if (b < 128) return v;
    }
    p = end;
    return v;
  };
  while (p < end) {
    const tag = varint();
    if (tag === 8) typeId = varint() | 0;
    else if ((tag & 7) === 2) {
      const n = varint();
      if (p + n > end) break;
      if (tag === 18) message = readString(buf, p, p + n);
      p += n;
    } else if ((tag & 7) === 0) varint();
    else if ((tag & 7) === 5) p += 4;
    else if ((tag & 7) === 1) p += 8;
    else break;
  }
  return { typeId, message };
}
