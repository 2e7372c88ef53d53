import { EncodeError } from "./errors.js";
import { utf8WriteLoop } from "./utf8.js";

/** Strings up to this many UTF-16 units are written by the JavaScript loop, longer ones natively. */
export const SHORT_STRING = 24;
const TWO_32 = 4294967296;

/** Buffer's native UTF-8 writer: present on every Node Buffer, absent from @types/node. */
interface NativeUtf8 {
  utf8Write(s: string, offset: number): number;
}
const MAX_U64 = 0xffffffffffffffffn;
const MIN_I64 = -0x8000000000000000n;
const MAX_I64 = 0x7fffffffffffffffn;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const TWO_53 = 2 ** 53;

// Scratch for the bigint writers: one 64-bit slot seen as signed, unsigned and two 32-bit halves.
const I64 = new BigInt64Array(1);
const U64 = new BigUint64Array(I64.buffer);
const HALVES = new Uint32Array(I64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = 1 - LO;

/**
 * The class of the views `finish()` hands out: a Uint8Array whose prototype is Buffer's, as
 * Node's own Buffers are (its FastBuffer is such a class), so they are Buffers to every check and
 * method (`Buffer.isBuffer`, `constructor`, `toString`, `equals`, inspection). One is made in
 * about 19 ns where `Buffer#subarray` takes 45 (it goes through the species constructor, the
 * `Buffer` function and `Buffer.from`). The class comes out of an arrow, unnamed, so that tsx's
 * keep-names does not define its `name`: that takes V8 off its fast path for derived
 * constructors (120 ns a view).
 */
const BufferView = (() => class extends Uint8Array {})();
Object.setPrototypeOf(BufferView.prototype, Buffer.prototype);
Object.defineProperty(BufferView.prototype, "constructor", { value: Buffer, writable: true, configurable: true });

/** Bytes `[offset, offset + length)` of `ab` as a Buffer, without copying. */
function bufferView(ab: ArrayBuffer, offset: number, length: number): Buffer {
  return new BufferView(ab, offset, length) as unknown as Buffer;
}

/** Default size of a fresh slab. Large messages get a slab sized to hold many of them. */
export const DEFAULT_SLAB_SIZE = 256 * 1024;

/** The largest slab sized for several messages; a message that needs more gets a slab of its own size. */
const MAX_SHARED_SLAB = 16 * 1024 * 1024;

/**
 * Bytes every checked write leaves free after it: room for the unchecked tag writes (`tag`,
 * `tag2`, at most two bytes) that generated code puts between two checked writes. Generated code
 * never writes two tags in a row unchecked (a group's tags, which may enclose an empty body, are
 * checked), so two bytes would do; the rest is margin.
 */
const SLACK = 8;

/**
 * Appends protobuf wire data into large pooled slabs.
 *
 * Bytes between `start` and `pos` belong to the message being written. `finish()` hands them out
 * as a view and moves `start` past them, so a slab is only ever appended to: bytes handed out are
 * never rewritten (msgpackr's arena idea). When a slab runs out, the message in progress moves to
 * a new slab; the old one lives on only through the views already handed out.
 *
 * Every write checks for room except `tag` and `tag2`: each checked write leaves SLACK bytes free
 * after it, which the one tag generated code writes before the next checked write takes. A write
 * past the slab's end all the same (a bug) is not lost silently: the next `grow` or `finish`
 * throws.
 *
 * Length-delimited fields reserve one byte for the length (`fork`) and shift the body only when
 * it turns out 128 bytes or longer (`join`). Marks are relative to `start`, so they survive a move
 * to a new slab.
 *
 * A transport that owns its writer and knows when the socket has flushed a frame can call
 * `reset()` to reuse the same slab from its beginning: steady state then allocates nothing.
 */
export class Writer {
  /** The current slab. */
  buf: Buffer;
  /** Write position in `buf`. */
  pos = 0;
  /** Start of the message in progress in `buf`. */
  start = 0;
  private view: DataView;
  /** `buf.length - SLACK`: a checked write of n bytes grows the slab when `pos + n` passes it. */
  private limit: number;
  /** The largest message finished so far: new slabs are sized to hold several of them. */
  private largest = 0;

  constructor(readonly slabSize: number = DEFAULT_SLAB_SIZE) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(slabSize, 2 * SLACK));
    this.limit = this.buf.length - SLACK;
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Bytes written since the message in progress began. */
  get length(): number {
    return this.pos - this.start;
  }

  /** Discards the message in progress (for example after an encoder threw half way). */
  discard(): void {
    this.pos = this.start;
  }

  /**
   * Reuses the slab from its beginning. Only for an owner that knows every view handed out by
   * `finish()` is no longer used (a transport whose socket has flushed them).
   */
  reset(): void {
    this.pos = this.start = 0;
  }

  /** Hands out the message in progress as a view that is never rewritten, and starts the next. */
  finish(): Buffer {
    if (this.pos > this.buf.length) overran(this.pos, this.buf.length);
    // A slab is never a SharedArrayBuffer: allocUnsafeSlow makes its own ArrayBuffer.
    const out = bufferView(this.buf.buffer as ArrayBuffer, this.buf.byteOffset + this.start, this.pos - this.start);
    if (out.length > this.largest) this.largest = out.length;
    this.start = this.pos;
    return out;
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n > this.limit) this.grow(n);
  }

  private grow(n: number): void {
    if (this.pos > this.buf.length) overran(this.pos, this.buf.length);
    const used = this.pos - this.start;
    const need = used + n + SLACK;
    let size = Math.max(this.slabSize, 2 * SLACK);
    // Size a new slab for several messages of this size, so that big messages do not allocate
    // a slab per call; past MAX_SHARED_SLAB, the slab holds this message alone (`n` may be a
    // worst case, three bytes a character for a string, and eight of those is too much memory).
    const several = Math.max(need, this.largest) * 8;
    if (several <= MAX_SHARED_SLAB) while (size < several) size *= 2;
    else size = Math.max(size, need);
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.limit = size - SLACK;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.start = 0;
    this.pos = used;
  }

  /**
   * Writes a field tag that takes one byte (field numbers 1-15), without checking for room: the
   * checked write before it left SLACK bytes. Only for generated code, which writes one tag at
   * most between two checked writes. A method this small is always inlined (V8 inlines callees
   * into a function up to a total bytecode size, except the smallest, which it always inlines),
   * so a message writer with many fields no longer spends that budget on its tags.
   */
  tag(t: number): void {
    this.buf[this.pos++] = t;
  }

  /** Writes a field tag that takes two bytes (128 <= t < 16384: field numbers 16-2047), unchecked as `tag`. */
  tag2(t: number): void {
    const at = this.pos;
    this.buf[at] = (t & 127) | 128;
    this.buf[at + 1] = t >>> 7;
    this.pos = at + 2;
  }

  /** Writes a varint of an unsigned 32-bit value (tags, lengths, uint32, enums >= 0). */
  uint32(v: number): void {
    if (this.pos + 5 > this.limit) this.grow(5);
    this.pos = putVarint32(this.buf, this.pos, v >>> 0);
  }

  /** Writes an int32 (or enum) varint: negative values take ten bytes, sign-extended. */
  int32(v: number): void {
    // NaN is not below 0: it writes as 0, as protobufjs writes it.
    if (!(v < 0)) return this.uint32(v);
    if (this.pos + 10 > this.limit) this.grow(10);
    this.pos = putNegativeInt32(this.buf, this.pos, v);
  }

  /** Writes a zigzag sint32 varint. */
  sint32(v: number): void {
    this.uint32((v << 1) ^ (v >> 31));
  }

  /** Writes a bool varint. */
  bool(v: boolean): void {
    if (this.pos + 1 > this.limit) this.grow(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  /** Writes a 64-bit varint from its low and high 32-bit halves (unsigned). */
  varint64(lo: number, hi: number): void {
    if (this.pos + 10 > this.limit) this.grow(10);
    const buf = this.buf;
    let pos = this.pos;
    lo >>>= 0;
    hi >>>= 0;
    while (hi !== 0) {
      buf[pos++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 127) {
      buf[pos++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    buf[pos++] = lo;
    this.pos = pos;
  }

  /** Writes a fixed32 (little-endian). */
  fixed32(v: number): void {
    if (this.pos + 4 > this.limit) this.grow(4);
    const buf = this.buf;
    const pos = this.pos;
    buf[pos] = v;
    buf[pos + 1] = v >>> 8;
    buf[pos + 2] = v >>> 16;
    buf[pos + 3] = v >>> 24;
    this.pos = pos + 4;
  }

  /** Writes an sfixed32 (little-endian two's complement). */
  sfixed32(v: number): void {
    this.fixed32(v);
  }

  /** Writes a 32-bit float. */
  float(v: number): void {
    if (this.pos + 4 > this.limit) this.grow(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
  }

  /** Writes a 64-bit double through the slab's cached DataView. */
  double(v: number): void {
    if (this.pos + 8 > this.limit) this.grow(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  /** Writes a fixed 64-bit value from its halves (little-endian). */
  fixed64Parts(lo: number, hi: number): void {
    if (this.pos + 8 > this.limit) this.grow(8);
    const pos = this.pos;
    this.view.setUint32(pos, lo, true);
    this.view.setUint32(pos + 4, hi, true);
    this.pos = pos + 8;
  }

  // int64 family, bigint representation (the default)
  //
  // A bigint goes through a store into a BigInt64Array and is read back as two 32-bit halves:
  // V8 does that without allocating, about twice as fast as Number(v) and far cheaper than bigint
  // arithmetic (each `&`, `>>` or `<<` allocates). The store wraps modulo 2^64, so the range is
  // checked first, as "wrapping leaves it unchanged": BigInt.asIntN/asUintN(64) compile to a few
  // instructions where two bigint comparisons call into the runtime.

  /** Writes an int64 varint from a bigint. */
  int64(v: bigint): void {
    if (typeof v !== "bigint") v = looseBigInt(v, "int64");
    if (BigInt.asIntN(64, v) !== v) throw new EncodeError(`int64 value ${v} is out of range`);
    I64[0] = v;
    this.varint64(HALVES[LO]!, HALVES[HI]!);
  }

  /** Writes a uint64 varint from a bigint. */
  uint64(v: bigint): void {
    if (typeof v !== "bigint") v = looseBigInt(v, "uint64");
    if (BigInt.asUintN(64, v) !== v) throw new EncodeError(`uint64 value ${v} is out of range`);
    U64[0] = v;
    this.varint64(HALVES[LO]!, HALVES[HI]!);
  }

  /** Writes a zigzag sint64 varint from a bigint. */
  sint64(v: bigint): void {
    if (typeof v !== "bigint") v = looseBigInt(v, "sint64");
    if (BigInt.asIntN(64, v) !== v) throw new EncodeError(`sint64 value ${v} is out of range`);
    I64[0] = v;
    const lo = HALVES[LO]!;
    const hi = HALVES[HI]!;
    // (v << 1) ^ (v >> 63) on the halves.
    const sign = hi >> 31;
    this.varint64((lo << 1) ^ sign, ((hi << 1) | (lo >>> 31)) ^ sign);
  }

  /** Writes a fixed64 from a bigint. */
  fixed64(v: bigint): void {
    if (typeof v !== "bigint") v = looseBigInt(v, "fixed64");
    if (BigInt.asUintN(64, v) !== v) throw new EncodeError(`fixed64 value ${v} is out of range`);
    U64[0] = v;
    this.fixed64Parts(HALVES[LO]!, HALVES[HI]!);
  }

  /** Writes an sfixed64 from a bigint. */
  sfixed64(v: bigint): void {
    if (typeof v !== "bigint") v = looseBigInt(v, "sfixed64");
    if (BigInt.asIntN(64, v) !== v) throw new EncodeError(`sfixed64 value ${v} is out of range`);
    I64[0] = v;
    this.fixed64Parts(HALVES[LO]!, HALVES[HI]!);
  }

  // int64 family, number representation (--int64 number, jstype = JS_NUMBER)

  /** Writes an int64 varint from a number (an integer; beyond 2^53 precision is the caller's). */
  int64Number(v: number): void {
    if ((v | 0) === v) return this.int32(v);
    if (v >= -MAX_SAFE && v <= MAX_SAFE && Number.isInteger(v)) {
      // Two's complement halves of a safe integer: v - lo is a multiple of 2^32, the division exact.
      const lo = v >>> 0;
      return this.varint64(lo, ((v - lo) / TWO_32) >>> 0);
    }
    splitInt64(v, "int64", true);
    this.varint64(splitLo, splitHi);
  }

  /** Writes a uint64 varint from a non-negative integer number. */
  uint64Number(v: number): void {
    if (v >>> 0 === v) return this.uint32(v);
    if (v >= 0 && v <= MAX_SAFE && Number.isInteger(v)) {
      const lo = v >>> 0;
      return this.varint64(lo, (v - lo) / TWO_32);
    }
    if (v < 0) throw new EncodeError(`uint64 value ${v} is negative`);
    splitInt64(v, "uint64", false);
    this.varint64(splitLo, splitHi);
  }

  /** Writes a zigzag sint64 varint from a number. */
  sint64Number(v: number): void {
    if ((v | 0) === v) return this.uint32((v << 1) ^ (v >> 31));
    if (v >= -MAX_SAFE && v <= MAX_SAFE && Number.isInteger(v)) {
      // zigzag(v) = 2v for v >= 0, 2(-v - 1) + 1 below: shift the halves of m = v or -v - 1.
      const neg = v < 0;
      const m = neg ? -v - 1 : v;
      const lo = m >>> 0;
      const hi = (m - lo) / TWO_32;
      return this.varint64((lo << 1) | (neg ? 1 : 0), (hi << 1) | (lo >>> 31));
    }
    // Past 2^53 (or not an integer): rare, and exact only as a bigint.
    const z = toBigInt(v, "sint64");
    if (z < MIN_I64 || z > MAX_I64) throw new EncodeError(`sint64 value ${v} is out of range`);
    const u = z >= 0n ? z << 1n : (-z << 1n) - 1n;
    this.varint64(Number(u & 0xffffffffn), Number(u >> 32n));
  }

  /** Writes a fixed64 from a number. */
  fixed64Number(v: number): void {
    if (v >= 0 && v <= MAX_SAFE && Number.isInteger(v)) {
      const lo = v >>> 0;
      return this.fixed64Parts(lo, (v - lo) / TWO_32);
    }
    if (v < 0) throw new EncodeError(`fixed64 value ${v} is negative`);
    splitInt64(v, "fixed64", false);
    this.fixed64Parts(splitLo, splitHi);
  }

  /** Writes an sfixed64 from a number. */
  sfixed64Number(v: number): void {
    if (v >= -MAX_SAFE && v <= MAX_SAFE && Number.isInteger(v)) {
      const lo = v >>> 0;
      return this.fixed64Parts(lo, ((v - lo) / TWO_32) >>> 0);
    }
    splitInt64(v, "sfixed64", true);
    this.fixed64Parts(splitLo, splitHi);
  }

  // 64-bit map keys, from the key's string (an object's keys are strings). A key in the form
  // String(n) gives for an integer n of at most 2^53 in magnitude is written from that number;
  // any other goes through BigInt(key) as before (exact past 2^53, and a SyntaxError for what is
  // not an integer).

  /** Writes an int64 map key. */
  int64Key(key: string): void {
    const n = keyNumber(key);
    if (n !== undefined) this.int64Number(n);
    else this.int64(BigInt(key));
  }

  /** Writes a uint64 map key. */
  uint64Key(key: string): void {
    const n = keyNumber(key);
    if (n !== undefined) this.uint64Number(n);
    else this.uint64(BigInt(key));
  }

  /** Writes a sint64 map key. */
  sint64Key(key: string): void {
    const n = keyNumber(key);
    if (n !== undefined) this.sint64Number(n);
    else this.sint64(BigInt(key));
  }

  /** Writes a fixed64 map key. */
  fixed64Key(key: string): void {
    const n = keyNumber(key);
    if (n !== undefined) this.fixed64Number(n);
    else this.fixed64(BigInt(key));
  }

  /** Writes an sfixed64 map key. */
  sfixed64Key(key: string): void {
    const n = keyNumber(key);
    if (n !== undefined) this.sfixed64Number(n);
    else this.sfixed64(BigInt(key));
  }

  // Packed repeated fields: each method writes the body's length, then every value, with one
  // bounds check for the whole body. Fixed-width lengths are known up front; varint bodies reserve
  // one byte for theirs and shift only when the body turns out 128 bytes or longer (as `fork`).
  // Values the fast paths do not take (out of range, not numbers) go through the single-value
  // writer, which raises the same errors.

  /** Writes a packed double body. */
  packedDouble(vs: readonly number[]): void {
    const n = vs.length;
    let pos = this.fixedBody(n * 8);
    const view = this.view;
    for (let i = 0; i < n; i++, pos += 8) view.setFloat64(pos, vs[i]!, true);
    this.pos = pos;
  }

  /** Writes a packed float body. */
  packedFloat(vs: readonly number[]): void {
    const n = vs.length;
    let pos = this.fixedBody(n * 4);
    const view = this.view;
    for (let i = 0; i < n; i++, pos += 4) view.setFloat32(pos, vs[i]!, true);
    this.pos = pos;
  }

  /** Writes a packed fixed32 body. */
  packedFixed32(vs: readonly number[]): void {
    const n = vs.length;
    let pos = this.fixedBody(n * 4);
    const view = this.view;
    for (let i = 0; i < n; i++, pos += 4) view.setUint32(pos, vs[i]!, true);
    this.pos = pos;
  }

  /** Writes a packed sfixed32 body. */
  packedSfixed32(vs: readonly number[]): void {
    this.packedFixed32(vs);
  }

  /** Writes a packed fixed64 body from bigints. */
  packedFixed64(vs: readonly bigint[]): void {
    const n = vs.length;
    this.pos = this.fixedBody(n * 8);
    for (let i = 0; i < n; i++) {
      const v = vs[i]!;
      if (typeof v === "bigint" && BigInt.asUintN(64, v) === v) {
        U64[0] = v;
        this.halves(HALVES[LO]!, HALVES[HI]!);
      } else this.fixed64(v);
    }
  }

  /** Writes a packed sfixed64 body from bigints. */
  packedSfixed64(vs: readonly bigint[]): void {
    const n = vs.length;
    this.pos = this.fixedBody(n * 8);
    for (let i = 0; i < n; i++) {
      const v = vs[i]!;
      if (typeof v === "bigint" && BigInt.asIntN(64, v) === v) {
        I64[0] = v;
        this.halves(HALVES[LO]!, HALVES[HI]!);
      } else this.sfixed64(v);
    }
  }

  /** Writes a packed fixed64 body from numbers. */
  packedFixed64Number(vs: readonly number[]): void {
    const n = vs.length;
    this.pos = this.fixedBody(n * 8);
    for (let i = 0; i < n; i++) {
      const v = vs[i]!;
      if (v >= 0 && v <= MAX_SAFE && Number.isInteger(v)) {
        const lo = v >>> 0;
        this.halves(lo, (v - lo) / TWO_32);
      } else this.fixed64Number(v);
    }
  }

  /** Writes a packed sfixed64 body from numbers. */
  packedSfixed64Number(vs: readonly number[]): void {
    const n = vs.length;
    this.pos = this.fixedBody(n * 8);
    for (let i = 0; i < n; i++) {
      const v = vs[i]!;
      if (v >= -MAX_SAFE && v <= MAX_SAFE && Number.isInteger(v)) {
        const lo = v >>> 0;
        this.halves(lo, ((v - lo) / TWO_32) >>> 0);
      } else this.sfixed64Number(v);
    }
  }

  // Packed 64-bit varints: the single-value writer per value, in a loop V8 inlines it into (no
  // reservation for the whole body: ten bytes a value would size the slab for the worst case);
  // out-of-range values raise its errors.

  /** Writes a packed int64 body from bigints. */
  packedInt64(vs: readonly bigint[]): void {
    const k = this.fork();
    for (let i = 0; i < vs.length; i++) this.int64(vs[i]!);
    this.join(k);
  }

  /** Writes a packed uint64 body from bigints. */
  packedUint64(vs: readonly bigint[]): void {
    const k = this.fork();
    for (let i = 0; i < vs.length; i++) this.uint64(vs[i]!);
    this.join(k);
  }

  /** Writes a packed sint64 body from bigints. */
  packedSint64(vs: readonly bigint[]): void {
    const k = this.fork();
    for (let i = 0; i < vs.length; i++) this.sint64(vs[i]!);
    this.join(k);
  }

  /** Writes a packed int64 body from numbers. */
  packedInt64Number(vs: readonly number[]): void {
    const k = this.fork();
    for (let i = 0; i < vs.length; i++) this.int64Number(vs[i]!);
    this.join(k);
  }

  /** Writes a packed uint64 body from numbers. */
  packedUint64Number(vs: readonly number[]): void {
    const k = this.fork();
    for (let i = 0; i < vs.length; i++) this.uint64Number(vs[i]!);
    this.join(k);
  }

  /** Writes a packed sint64 body from numbers. */
  packedSint64Number(vs: readonly number[]): void {
    const k = this.fork();
    for (let i = 0; i < vs.length; i++) this.sint64Number(vs[i]!);
    this.join(k);
  }

  /**
   * Writes 64 bits from their halves where the caller made room. DataView's setBigUint64 would
   * take the bigint directly, but costs about four times two 32-bit stores on Node 20.
   */
  private halves(lo: number, hi: number): void {
    this.view.setUint32(this.pos, lo, true);
    this.view.setUint32(this.pos + 4, hi, true);
    this.pos += 8;
  }

  /** Writes the length of a fixed-width body of `n` bytes, makes room for it and returns where it starts. */
  private fixedBody(n: number): number {
    this.uint32(n);
    if (this.pos + n > this.limit) this.grow(n);
    return this.pos;
  }

  /** Writes a packed bool body: one byte a value. */
  packedBool(vs: readonly boolean[]): void {
    const n = vs.length;
    let pos = this.fixedBody(n);
    const buf = this.buf;
    for (let i = 0; i < n; i++) buf[pos++] = vs[i] ? 1 : 0;
    this.pos = pos;
  }

  /** Writes a packed uint32 body. */
  packedUint32(vs: readonly number[]): void {
    const n = vs.length;
    this.ensure(n * 5 + 1);
    const k = this.fork();
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < n; i++) pos = putVarint32(buf, pos, vs[i]! >>> 0);
    this.pos = pos;
    this.join(k);
  }

  /** Writes a packed int32 (or enum) body: negative values take ten bytes. */
  packedInt32(vs: readonly number[]): void {
    const n = vs.length;
    this.ensure(n * 10 + 1);
    const k = this.fork();
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < n; i++) {
      const v = vs[i]!;
      pos = v < 0 ? putNegativeInt32(buf, pos, v) : putVarint32(buf, pos, v >>> 0);
    }
    this.pos = pos;
    this.join(k);
  }

  /** Writes a packed sint32 body. */
  packedSint32(vs: readonly number[]): void {
    const n = vs.length;
    this.ensure(n * 5 + 1);
    const k = this.fork();
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < n; i++) {
      const v = vs[i]!;
      pos = putVarint32(buf, pos, ((v << 1) ^ (v >> 31)) >>> 0);
    }
    this.pos = pos;
    this.join(k);
  }

  /** Writes a length-delimited bytes field body (length, then the bytes). */
  bytes(v: Uint8Array): void {
    const n = v.length;
    this.uint32(n);
    if (this.pos + n > this.limit) this.grow(n);
    this.buf.set(v, this.pos);
    this.pos += n;
  }

  /** Appends bytes as they are (unknown fields, pre-encoded payloads). */
  raw(v: Uint8Array): void {
    const n = v.length;
    if (this.pos + n > this.limit) this.grow(n);
    this.buf.set(v, this.pos);
    this.pos += n;
  }

  /** Writes a length-delimited string field body (length, then UTF-8). */
  string(s: string): void {
    const n = s.length;
    if (n > SHORT_STRING) return this.longString(s, n);
    // At most 3 * 24 = 72 bytes: one length byte always suffices.
    if (this.pos + 1 + n * 3 > this.limit) this.grow(1 + n * 3);
    const at = this.pos;
    const end = utf8WriteLoop(this.buf, at + 1, s);
    this.buf[at] = end - at - 1;
    this.pos = end;
  }

  /**
   * A string of more than SHORT_STRING units, through Buffer's native writer: reserves the
   * length's size for the ASCII case and shifts if the text is wider. Apart from `string`, so
   * that what V8 inlines of `string` into a message writer is the short path alone.
   */
  private longString(s: string, n: number): void {
    const maxBytes = n * 3;
    const reserve = varintSize(n);
    if (this.pos + reserve + maxBytes + 5 > this.limit) this.grow(reserve + maxBytes + 5);
    const at = this.pos;
    const len = (this.buf as unknown as NativeUtf8).utf8Write(s, at + reserve);
    const need = varintSize(len);
    if (need !== reserve) this.buf.copyWithin(at + need, at + reserve, at + reserve + len);
    this.pos = at;
    this.uint32(len);
    this.pos = at + need + len;
  }


  /** Begins a length-delimited body: reserves one byte and returns a mark for `join`. */
  fork(): number {
    if (this.pos + 1 > this.limit) this.grow(1);
    return this.pos++ - this.start;
  }

  /** Ends a length-delimited body begun by `fork`: writes its length, shifting when needed. */
  join(mark: number): void {
    const at = this.start + mark;
    const len = this.pos - at - 1;
    if (len < 128) {
      this.buf[at] = len;
      return;
    }
    this.joinSized(mark, 1);
  }

  /**
   * `fork` reserving `size` bytes for the length: what the previous element of a repeated message
   * field took, so that a list of messages of 128 bytes or more is not shifted one by one.
   */
  forkSized(size: number): number {
    if (this.pos + size > this.limit) this.grow(size);
    const mark = this.pos - this.start;
    this.pos += size;
    return mark;
  }

  /**
   * Ends a body begun by `forkSized(size)`: writes its length, shifting the body when the length
   * takes more or fewer bytes than reserved, and returns how many it took.
   */
  joinSized(mark: number, size: number): number {
    const len = this.pos - (this.start + mark) - size;
    if (len < 128 && size === 1) {
      this.buf[this.start + mark] = len;
      return 1;
    }
    const need = varintSize(len);
    if (need !== size) {
      if (need > size && this.pos + need - size > this.limit) this.grow(need - size);
      const at = this.start + mark;
      this.buf.copyWithin(at + need, at + size, this.pos);
      this.pos += need - size;
    }
    putVarint32(this.buf, this.start + mark, len);
    return need;
  }
}

/** Writes the varint of unsigned 32-bit `v` at `pos`, where the caller made room; returns the end. */
function putVarint32(buf: Uint8Array, pos: number, v: number): number {
  while (v > 127) {
    buf[pos++] = (v & 127) | 128;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/**
 * Writes the ten-byte varint of a negative int32 (sign-extended to 64 bits) at `pos`, where the
 * caller made room; returns the end. The high half is all ones, so only the first five bytes
 * carry the value. A negative fraction writes as its `v >>> 0`, sign-extended (-1.5 as -1).
 */
function putNegativeInt32(buf: Uint8Array, pos: number, v: number): number {
  const lo = v >>> 0;
  buf[pos] = (lo & 127) | 128;
  buf[pos + 1] = ((lo >>> 7) & 127) | 128;
  buf[pos + 2] = ((lo >>> 14) & 127) | 128;
  buf[pos + 3] = ((lo >>> 21) & 127) | 128;
  // Bits 28-31 of the low half, then three of the high half's ones, and more to come.
  buf[pos + 4] = (lo >>> 28) | 0xf0;
  buf[pos + 5] = 0xff;
  buf[pos + 6] = 0xff;
  buf[pos + 7] = 0xff;
  buf[pos + 8] = 0xff;
  buf[pos + 9] = 1;
  return pos + 10;
}

/**
 * The integer a map key's string stands for, when the key is exactly how String() writes an
 * integer of at most 2^53 in magnitude (every key a decoded map holds); undefined otherwise.
 */
function keyNumber(key: string): number | undefined {
  const n = Number(key);
  return n >= -TWO_53 && n <= TWO_53 && Number.isInteger(n) && String(n) === key ? n : undefined;
}

/** Number of bytes of the varint encoding of an unsigned 32-bit value. */
export function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/**
 * A bigint from a value that a bigint field holds against its type (a number or a numeric
 * string, as plain JavaScript callers and the well-known types under `--int64 number` pass):
 * accepted as before, where bigint comparisons took them; anything else is an EncodeError.
 */
function looseBigInt(v: unknown, type: string): bigint {
  try {
    return BigInt(v as number | string);
  } catch {
    throw new EncodeError(`${type} value ${String(v)} is not an integer`);
  }
}

function toBigInt(v: number, type: string): bigint {
  if (!Number.isInteger(v)) throw new EncodeError(`${type} value ${v} is not an integer`);
  return BigInt(v);
}

// Results of splitInt64, kept in module scope so the hot path allocates nothing.
let splitLo = 0;
let splitHi = 0;

/** Splits an integer number into two's complement 64-bit halves (into splitLo, splitHi). */
function splitInt64(v: number, type: string, signed: boolean): void {
  if (!Number.isInteger(v)) throw new EncodeError(`${type} value ${v} is not an integer`);
  if (v >= -MAX_SAFE && v <= MAX_SAFE) {
    // v = hi * 2^32 + lo with lo in [0, 2^32): both exact (division by a power of two, floor),
    // and hi >>> 0 is the two's complement high word of a negative v.
    splitLo = v >>> 0;
    splitHi = Math.floor(v / TWO_32) >>> 0;
    return;
  }
  const b = BigInt(v);
  if (signed ? b < MIN_I64 || b > MAX_I64 : b < 0n || b > MAX_U64) {
    throw new EncodeError(`${type} value ${v} is out of range`);
  }
  const u = BigInt.asUintN(64, b);
  splitLo = Number(u & 0xffffffffn);
  splitHi = Number(u >> 32n);
}

let encodeWriter: Writer | undefined;

/**
 * The writer behind every generated `encode()`: one per process, bump-allocating from slabs that
 * are never rewritten. Any message left half written by an encoder that threw is discarded.
 */
export function sharedWriter(): Writer {
  const w = (encodeWriter ??= new Writer());
  w.pos = w.start;
  return w;
}

/**
 * One message encoded by `encode` with the shared writer, as a view that is never rewritten; when
 * `encode` throws, the half-written message is discarded and the error rethrown.
 */
export function encodeShared(encode: (writer: Writer) => void): Buffer {
  const w = sharedWriter();
  try {
    encode(w);
  } catch (e) {
    w.discard();
    throw e;
  }
  return w.finish();
}

/** A write went past the slab's end: a bug (an unchecked tag without the room SLACK keeps). */
function overran(pos: number, length: number): never {
  throw new Error(`meridian: Writer wrote past its slab (position ${pos} of ${length}): an unchecked tag without room; this is a bug`);
}
