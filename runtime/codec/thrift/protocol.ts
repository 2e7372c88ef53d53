/**
 * Thrift's Binary and Compact protocols over the pooled Writer and the zero-copy Reader: the
 * primitives that a struct codec calls (field headers, container headers, scalars, strings,
 * binary, message envelopes). Binary is big-endian with fixed-width integers; Compact uses
 * zigzag varints, field-id deltas and little-endian doubles, so it shares the protobuf varint
 * and length-prefixed string code of Writer and Reader.
 */
import { DecodeError, EncodeError } from "../errors.js";
import { Reader } from "../reader.js";
import { utf8WriteLoop } from "../utf8.js";
import type { PayloadProtocol } from "../types.js";
import { SHORT_STRING, Writer } from "../writer.js";

/** Thrift's type ids, as the Binary protocol writes them (TType in Apache Thrift). */
export const TType = {
  STOP: 0,
  VOID: 1,
  BOOL: 2,
  BYTE: 3,
  DOUBLE: 4,
  I16: 6,
  I32: 8,
  I64: 10,
  STRING: 11,
  STRUCT: 12,
  MAP: 13,
  SET: 14,
  LIST: 15,
  UUID: 16,
} as const;
export type TType = (typeof TType)[keyof typeof TType];

/** The kind of a message envelope (TMessageType). */
export const MessageType = { CALL: 1, REPLY: 2, EXCEPTION: 3, ONEWAY: 4 } as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** A message envelope: the method name, its kind and the caller's sequence id. */
export interface MessageHeader {
  readonly name: string;
  readonly type: MessageType;
  readonly seqId: number;
}

/** Writes one protocol's encoding into a Writer. */
export interface ThriftWriter {
  readonly w: Writer;
  messageBegin(h: MessageHeader): void;
  structBegin(): void;
  structEnd(): void;
  fieldBegin(type: TType, id: number): void;
  /** A bool field: Compact folds the value into the field header. */
  boolField(id: number, v: boolean): void;
  fieldStop(): void;
  listBegin(elem: TType, size: number): void;
  mapBegin(key: TType, value: TType, size: number): void;
  bool(v: boolean): void;
  byte(v: number): void;
  i16(v: number): void;
  i32(v: number): void;
  i64(v: bigint): void;
  double(v: number): void;
  string(v: string): void;
  binary(v: Uint8Array): void;
  uuid(v: Uint8Array): void;
}

/** A field header as read: its type and id; type STOP ends the struct. */
export interface FieldHeader {
  type: TType;
  id: number;
}

/** Reads one protocol's encoding from bytes; every value is bounds-checked. */
export interface ThriftReader {
  readonly r: Reader;
  messageBegin(): MessageHeader;
  structBegin(): void;
  structEnd(): void;
  /** Reads the next field header into `out` (reused, so reading allocates nothing). */
  fieldBegin(out: FieldHeader): void;
  /** The value of a bool field whose header was just read. */
  boolField(): boolean;
  /** A list or set header: its element type and size, size checked against the bytes left. */
  listBegin(): { elem: TType; size: number };
  mapBegin(): { key: TType; value: TType; size: number };
  bool(): boolean;
  byte(): number;
  i16(): number;
  i32(): number;
  i64(): bigint;
  double(): number;
  string(): string;
  /** A view into the input (no copy). */
  binary(): Uint8Array;
  uuid(): Uint8Array;
}

const VERSION_1 = 0x80010000 | 0;
const VERSION_MASK = 0xffff0000 | 0;

function checkInt(v: number, bits: 8 | 16 | 32, what: string): void {
  const max = 2 ** (bits - 1);
  if (!Number.isInteger(v) || v < -max || v >= max) throw new EncodeError(`${what}: ${v} is not an integer of ${bits} bits`);
}

function checkI64(v: bigint): void {
  if (typeof v !== "bigint" || v < -(2n ** 63n) || v >= 2n ** 63n) throw new EncodeError(`i64: ${String(v)} is not a 64-bit integer (a bigint)`);
}

/** Thrift's Binary protocol (TBinaryProtocol, strict), the payload Kitex sends by default. */
export class BinaryWriter implements ThriftWriter {
  constructor(readonly w: Writer) {}

  private be(v: number, n: 1 | 2 | 4): void {
    const w = this.w;
    w.ensure(n);
    const buf = w.buf;
    const p = w.pos;
    if (n === 4) {
      buf[p] = v >>> 24;
      buf[p + 1] = v >>> 16;
      buf[p + 2] = v >>> 8;
      buf[p + 3] = v;
    } else if (n === 2) {
      buf[p] = v >>> 8;
      buf[p + 1] = v;
    } else buf[p] = v;
    w.pos = p + n;
  }

  messageBegin(h: MessageHeader): void {
    this.be(VERSION_1 | h.type, 4);
    this.string(h.name);
    this.be(h.seqId, 4);
  }
  structBegin(): void {}
  structEnd(): void {}
  fieldBegin(type: TType, id: number): void {
    this.be(type, 1);
    this.be(id, 2);
  }
  boolField(id: number, v: boolean): void {
    this.fieldBegin(TType.BOOL, id);
    this.be(v ? 1 : 0, 1);
  }
  fieldStop(): void {
    this.be(TType.STOP, 1);
  }
  listBegin(elem: TType, size: number): void {
    this.be(elem, 1);
    this.be(size, 4);
  }
  mapBegin(key: TType, value: TType, size: number): void {
    this.be(key, 1);
    this.be(value, 1);
    this.be(size, 4);
  }
  bool(v: boolean): void {
    this.be(v ? 1 : 0, 1);
  }
  byte(v: number): void {
    checkInt(v, 8, "byte");
    this.be(v, 1);
  }
  i16(v: number): void {
    checkInt(v, 16, "i16");
    this.be(v, 2);
  }
  i32(v: number): void {
    checkInt(v, 32, "i32");
    this.be(v, 4);
  }
  i64(v: bigint): void {
    checkI64(v);
    const w = this.w;
    w.ensure(8);
    w.buf.writeBigInt64BE(v, w.pos);
    w.pos += 8;
  }
  double(v: number): void {
    const w = this.w;
    w.ensure(8);
    w.buf.writeDoubleBE(v, w.pos);
    w.pos += 8;
  }
  string(v: string): void {
    const w = this.w;
    w.ensure(4 + v.length * 3);
    const at = w.pos;
    // Short strings through the JavaScript loop (faster than a native call for them), as Writer.string.
    const end = v.length <= SHORT_STRING ? utf8WriteLoop(w.buf, at + 4, v) : at + 4 + w.buf.write(v, at + 4, "utf8");
    w.pos = at;
    this.be(end - at - 4, 4);
    w.pos = end;
  }
  binary(v: Uint8Array): void {
    this.be(v.length, 4);
    this.w.raw(v);
  }
  uuid(v: Uint8Array): void {
    if (v.length !== 16) throw new EncodeError(`uuid: ${v.length} bytes, not 16`);
    this.w.raw(v);
  }
}

/** Reads the Binary protocol (strict message headers, and the old unversioned ones). */
export class BinaryReader implements ThriftReader {
  constructor(readonly r: Reader) {}

  private need(n: number, what: string): number {
    const r = this.r;
    const p = r.pos;
    if (p + n > r.end) r.truncated(what);
    r.pos = p + n;
    return p;
  }
  private u8(what: string): number {
    return this.r.buf[this.need(1, what)]!;
  }
  private i32be(what: string): number {
    const p = this.need(4, what);
    const b = this.r.buf;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }
  private size(what: string, minBytes: number): number {
    const at = this.r.pos;
    const n = this.i32be(what);
    checkSize(n, minBytes, at, this.r, what);
    return n;
  }

  messageBegin(): MessageHeader {
    const at = this.r.pos;
    const first = this.i32be("message header");
    if (first < 0) {
      if ((first & VERSION_MASK) !== VERSION_1) throw new DecodeError("INVALID_TAG", at, `bad Thrift binary version 0x${(first >>> 0).toString(16)}`);
      const name = this.string();
      return { name, type: messageType(first & 0xff, at), seqId: this.i32be("sequence id") };
    }
    // Old, unversioned: the name's length came first.
    this.r.pos = at;
    const name = this.string();
    const type = messageType(this.u8("message type"), at);
    return { name, type, seqId: this.i32be("sequence id") };
  }
  structBegin(): void {}
  structEnd(): void {}
  fieldBegin(out: FieldHeader): void {
    const type = this.u8("field header") as TType;
    out.type = type;
    if (type === TType.STOP) {
      out.id = 0;
      return;
    }
    const p = this.need(2, "field id");
    const b = this.r.buf;
    out.id = ((b[p]! << 24) >> 16) | b[p + 1]!;
  }
  boolField(): boolean {
    return this.u8("bool") !== 0;
  }
  listBegin(): { elem: TType; size: number } {
    const elem = this.u8("list header") as TType;
    return { elem, size: this.size("list", elemBytes(elem)) };
  }
  mapBegin(): { key: TType; value: TType; size: number } {
    const key = this.u8("map header") as TType;
    const value = this.u8("map header") as TType;
    return { key, value, size: this.size("map", elemBytes(key) + elemBytes(value)) };
  }
  bool(): boolean {
    return this.u8("bool") !== 0;
  }
  byte(): number {
    return (this.u8("byte") << 24) >> 24;
  }
  i16(): number {
    const p = this.need(2, "i16");
    const b = this.r.buf;
    return ((b[p]! << 24) >> 16) | b[p + 1]!;
  }
  i32(): number {
    return this.i32be("i32");
  }
  i64(): bigint {
    const p = this.need(8, "i64");
    const b = this.r.buf;
    const hi = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
    const lo = ((b[p + 4]! << 24) | (b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!) >>> 0;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
  double(): number {
    return this.r.doubleBE();
  }
  string(): string {
    return this.r.utf8(this.size("string", 1));
  }
  binary(): Uint8Array {
    const n = this.size("binary", 1);
    const p = this.need(n, "binary");
    const b = this.r.buf;
    return new Uint8Array(b.buffer, b.byteOffset + p, n);
  }
  uuid(): Uint8Array {
    const p = this.need(16, "uuid");
    const b = this.r.buf;
    return new Uint8Array(b.buffer, b.byteOffset + p, 16);
  }
}

/** Compact protocol type ids (the nibble in field and container headers). */
const CType = { STOP: 0, TRUE: 1, FALSE: 2, BYTE: 3, I16: 4, I32: 5, I64: 6, DOUBLE: 7, BINARY: 8, LIST: 9, SET: 10, MAP: 11, STRUCT: 12, UUID: 13 } as const;

const TO_COMPACT: Readonly<Record<number, number>> = {
  [TType.STOP]: CType.STOP,
  [TType.BOOL]: CType.TRUE,
  [TType.BYTE]: CType.BYTE,
  [TType.I16]: CType.I16,
  [TType.I32]: CType.I32,
  [TType.I64]: CType.I64,
  [TType.DOUBLE]: CType.DOUBLE,
  [TType.STRING]: CType.BINARY,
  [TType.STRUCT]: CType.STRUCT,
  [TType.MAP]: CType.MAP,
  [TType.SET]: CType.SET,
  [TType.LIST]: CType.LIST,
  [TType.UUID]: CType.UUID,
};

const FROM_COMPACT: readonly (TType | undefined)[] = [
  TType.STOP, TType.BOOL, TType.BOOL, TType.BYTE, TType.I16, TType.I32, TType.I64, TType.DOUBLE,
  TType.STRING, TType.LIST, TType.SET, TType.MAP, TType.STRUCT, TType.UUID,
];

const COMPACT_ID = 0x82;
const COMPACT_VERSION = 1;

function compactType(t: TType): number {
  const c = TO_COMPACT[t];
  if (c === undefined) throw new EncodeError(`type ${t} has no Compact protocol encoding`);
  return c;
}

/** Thrift's Compact protocol (TCompactProtocol). */
export class CompactWriter implements ThriftWriter {
  /** The last field id written in each open struct. */
  private readonly lastIds: number[] = [];
  private lastId = 0;

  constructor(readonly w: Writer) {}

  messageBegin(h: MessageHeader): void {
    const w = this.w;
    w.ensure(2);
    w.buf[w.pos++] = COMPACT_ID;
    w.buf[w.pos++] = COMPACT_VERSION | (h.type << 5);
    w.uint32(h.seqId >>> 0);
    w.string(h.name);
  }
  structBegin(): void {
    this.lastIds.push(this.lastId);
    this.lastId = 0;
  }
  structEnd(): void {
    this.lastId = this.lastIds.pop() ?? 0;
  }
  private header(ctype: number, id: number): void {
    const w = this.w;
    const delta = id - this.lastId;
    if (delta > 0 && delta <= 15) {
      w.ensure(1);
      w.buf[w.pos++] = (delta << 4) | ctype;
    } else {
      w.ensure(1);
      w.buf[w.pos++] = ctype;
      w.sint32(id);
    }
    this.lastId = id;
  }
  fieldBegin(type: TType, id: number): void {
    this.header(compactType(type), id);
  }
  boolField(id: number, v: boolean): void {
    this.header(v ? CType.TRUE : CType.FALSE, id);
  }
  fieldStop(): void {
    this.byte(0);
  }
  listBegin(elem: TType, size: number): void {
    const w = this.w;
    const c = compactType(elem);
    w.ensure(1);
    if (size < 15) w.buf[w.pos++] = (size << 4) | c;
    else {
      w.buf[w.pos++] = 0xf0 | c;
      w.uint32(size);
    }
  }
  mapBegin(key: TType, value: TType, size: number): void {
    const w = this.w;
    if (size === 0) {
      this.byte(0);
      return;
    }
    w.uint32(size);
    w.ensure(1);
    w.buf[w.pos++] = (compactType(key) << 4) | compactType(value);
  }
  bool(v: boolean): void {
    this.byte(v ? CType.TRUE : CType.FALSE);
  }
  byte(v: number): void {
    checkInt(v, 8, "byte");
    const w = this.w;
    w.ensure(1);
    w.buf[w.pos++] = v;
  }
  i16(v: number): void {
    checkInt(v, 16, "i16");
    this.w.sint32(v);
  }
  i32(v: number): void {
    checkInt(v, 32, "i32");
    this.w.sint32(v);
  }
  i64(v: bigint): void {
    checkI64(v);
    const z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    this.w.varint64(Number(z & 0xffffffffn), Number(z >> 32n));
  }
  double(v: number): void {
    this.w.double(v);
  }
  string(v: string): void {
    this.w.string(v);
  }
  binary(v: Uint8Array): void {
    this.w.bytes(v);
  }
  uuid(v: Uint8Array): void {
    if (v.length !== 16) throw new EncodeError(`uuid: ${v.length} bytes, not 16`);
    this.w.raw(v);
  }
}

/** Reads the Compact protocol. */
export class CompactReader implements ThriftReader {
  private readonly lastIds: number[] = [];
  private lastId = 0;
  /** The value of the bool field whose header was read last. */
  private pendingBool = false;

  constructor(readonly r: Reader) {}

  private u8(what: string): number {
    const r = this.r;
    if (r.pos >= r.end) r.truncated(what);
    return r.buf[r.pos++]!;
  }
  private type(c: number, at: number): TType {
    const t = FROM_COMPACT[c];
    if (t === undefined || t === TType.STOP) throw new DecodeError("INVALID_WIRE_TYPE", at, `unknown Compact protocol type ${c}`);
    return t;
  }
  private zigzag32(): number {
    const n = this.r.uint32();
    return (n >>> 1) ^ -(n & 1);
  }

  messageBegin(): MessageHeader {
    const at = this.r.pos;
    if (this.u8("message header") !== COMPACT_ID) throw new DecodeError("INVALID_TAG", at, "not a Thrift Compact protocol message (protocol id 0x82)");
    const vt = this.u8("message header");
    if ((vt & 0x1f) !== COMPACT_VERSION) throw new DecodeError("INVALID_TAG", at, `unsupported Thrift Compact protocol version ${vt & 0x1f}`);
    const seqId = this.r.uint32() | 0;
    const name = this.string();
    return { name, type: messageType(vt >> 5, at), seqId };
  }
  structBegin(): void {
    this.lastIds.push(this.lastId);
    this.lastId = 0;
  }
  structEnd(): void {
    this.lastId = this.lastIds.pop() ?? 0;
  }
  fieldBegin(out: FieldHeader): void {
    const at = this.r.pos;
    const b = this.u8("field header");
    if (b === 0) {
      out.type = TType.STOP;
      out.id = 0;
      return;
    }
    const c = b & 0x0f;
    out.type = this.type(c, at);
    if (c === CType.TRUE || c === CType.FALSE) this.pendingBool = c === CType.TRUE;
    const delta = b >> 4;
    let id: number;
    if (delta !== 0) id = this.lastId + delta;
    else {
      id = this.zigzag32();
      if (id < -32768 || id > 32767) throw new DecodeError("INVALID_TAG", at, `field id ${id} does not fit in 16 bits`);
    }
    out.id = id;
    this.lastId = id;
  }
  boolField(): boolean {
    return this.pendingBool;
  }
  listBegin(): { elem: TType; size: number } {
    const at = this.r.pos;
    const b = this.u8("list header");
    const elem = this.type(b & 0x0f, at);
    let size = b >> 4;
    if (size === 15) size = this.r.uint32();
    checkSize(size, elemBytes(elem), at, this.r, "list");
    return { elem, size };
  }
  mapBegin(): { key: TType; value: TType; size: number } {
    const at = this.r.pos;
    const size = this.r.uint32();
    if (size === 0) return { key: TType.STOP, value: TType.STOP, size: 0 };
    const kv = this.u8("map header");
    const key = this.type(kv >> 4, at);
    const value = this.type(kv & 0x0f, at);
    checkSize(size, elemBytes(key) + elemBytes(value), at, this.r, "map");
    return { key, value, size };
  }
  bool(): boolean {
    return this.u8("bool") === CType.TRUE;
  }
  byte(): number {
    return (this.u8("byte") << 24) >> 24;
  }
  i16(): number {
    const at = this.r.pos;
    const v = this.zigzag32();
    if (v < -32768 || v > 32767) throw new DecodeError("LENGTH_OUT_OF_RANGE", at, `i16 value ${v} out of range`);
    return v;
  }
  i32(): number {
    return this.zigzag32();
  }
  i64(): bigint {
    const r = this.r;
    r.varint64();
    const z = (BigInt(r.hi >>> 0) << 32n) | BigInt(r.lo >>> 0);
    return (z >> 1n) ^ -(z & 1n);
  }
  double(): number {
    return this.r.double();
  }
  string(): string {
    return this.r.string();
  }
  binary(): Uint8Array {
    return this.r.bytes();
  }
  uuid(): Uint8Array {
    const r = this.r;
    if (r.pos + 16 > r.end) r.truncated("uuid");
    const out = new Uint8Array(r.buf.buffer, r.buf.byteOffset + r.pos, 16);
    r.pos += 16;
    return out;
  }
}

/** The least number of bytes one element of type `t` takes on the wire (to bound sizes). */
function elemBytes(t: TType): number {
  return t === TType.UUID ? 16 : 1;
}

function checkSize(n: number, minBytes: number, at: number, r: Reader, what: string): void {
  if (n < 0) throw new DecodeError("LENGTH_OUT_OF_RANGE", at, `negative ${what} size ${n}`);
  if (n * minBytes > r.end - r.pos) {
    throw new DecodeError("LENGTH_OUT_OF_RANGE", at, `${what} of ${n} elements cannot fit in the ${r.end - r.pos} bytes left`);
  }
}

function messageType(t: number, at: number): MessageType {
  if (t < 1 || t > 4) throw new DecodeError("INVALID_TAG", at, `unknown Thrift message type ${t}`);
  return t as MessageType;
}

/** Which protocol a payload uses. */
export type ThriftProtocolName = "binary" | "compact";

/** A protocol writer over `w`. */
export function thriftWriter(protocol: ThriftProtocolName, w: Writer): ThriftWriter {
  return protocol === "binary" ? new BinaryWriter(w) : new CompactWriter(w);
}

/** A protocol reader over `bytes` (the reader keeps views into them). */
export function thriftReader(protocol: ThriftProtocolName, bytes: Uint8Array): ThriftReader {
  const r = new Reader(bytes);
  return protocol === "binary" ? new BinaryReader(r) : new CompactReader(r);
}

/** A writer of a payload's protocol (Thrift Binary unless it is Compact) over `w`. */
export function payloadWriter(protocol: PayloadProtocol | undefined, w: Writer): ThriftWriter {
  return protocol === "thrift-compact" ? new CompactWriter(w) : new BinaryWriter(w);
}

/** A reader of a payload's protocol (Binary unless Compact) over `r`, which it advances. */
export function payloadReader(protocol: PayloadProtocol | undefined, r: Reader): ThriftReader {
  return protocol === "thrift-compact" ? new CompactReader(r) : new BinaryReader(r);
}
