import { DecodeError } from "./errors.js";
import { SHORT_ASCII_MAX, WIDE_MAX, isValidUtf8, shortAscii, utf8DecodeWide } from "./utf8.js";

/** Protobuf wire types. */
export const WireType = {
  Varint: 0,
  Fixed64: 1,
  LengthDelimited: 2,
  StartGroup: 3,
  EndGroup: 4,
  Fixed32: 5,
} as const;

/** Default limit on message nesting, as in protobuf's C++ and Java runtimes. */
export const DEFAULT_DEPTH_LIMIT = 100;

const TWO_32 = 4294967296;

// One scratch buffer for floats and doubles: decoding allocates no DataView.
const f64 = new Float64Array(1);
const f32 = new Float32Array(1);
const f64b = new Uint8Array(f64.buffer);
const f32b = new Uint8Array(f32.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// One 64-bit slot for bigint results: the halves go in as two Uint32s and come out as one
// bigint, which V8 does faster than BigInt(number) and without intermediate bigints.
const I64 = new BigInt64Array(1);
const U64 = new BigUint64Array(I64.buffer);
const HALVES = new Uint32Array(I64.buffer);
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = 1 - LO;

/**
 * Packed fixed-width values are copied a chunk at a time into this aligned scratch and read back
 * through typed arrays over it: one native copy and a typed load per value, where reading bytes
 * one by one costs eight loads and stores per double. A chunk bounds the scratch.
 */
const SCRATCH_BYTES = 4096;
const scratch = new ArrayBuffer(SCRATCH_BYTES);
const scratchBytes = new Uint8Array(scratch);
const scratchF64 = new Float64Array(scratch);
const scratchF32 = new Float32Array(scratch);
const scratchU32 = new Uint32Array(scratch);
const scratchI32 = new Int32Array(scratch);
const scratchU64 = new BigUint64Array(scratch);
const scratchI64 = new BigInt64Array(scratch);

const utf8Slice = Buffer.prototype.utf8Slice as (this: Uint8Array, start: number, end: number) => string;

/**
 * Short ASCII strings repeat a lot in RPC payloads (regions, enum-like values, map keys): they
 * are interned in a small direct-mapped cache, so a repeat costs a hash and a compare instead of
 * a string allocation. ASCII up to SHORT_ASCII_MAX bytes is made by `shortAscii`; anything
 * longer, or not ASCII, is decoded natively (or by utf8DecodeWide).
 */
const INTERN_MAX = 16;
const INTERN_SLOTS = 4096;
const internCache: (string | undefined)[] = new Array<string | undefined>(INTERN_SLOTS).fill(undefined);
/**
 * The hash of each slot's string: a miss is told from it without touching the cached string,
 * whose memory is rarely in the CPU's cache when the strings coming in are all new (unique ids).
 */
const internHashes = new Int32Array(INTERN_SLOTS);

/** `buf[start, end)`, 1 to INTERN_MAX bytes, as an interned string; undefined when not ASCII. */
function decodeShortAscii(buf: Uint8Array, start: number, end: number): string | undefined {
  // The slot hashes the length and five of the bytes (both ends, where short values differ
  // most, and two inside): a hit costs the compare alone. Strings that share those five bytes
  // share a slot; the compare keeps that correct. A miss makes the string in one
  // String.fromCharCode call (shortAscii), which costs half of Buffer's native decoder.
  const n = end - start;
  const sample =
    buf[start]! ^ (buf[start + (n >>> 2)]! << 6) ^ (buf[start + (n >>> 1)]! << 12) ^ (buf[end - (n > 1 ? 2 : 1)]! << 18) ^ (buf[end - 1]! << 24);
  const h = Math.imul(sample ^ n, 0x9e3779b1);
  const slot = (h ^ (h >>> 17)) & (INTERN_SLOTS - 1);
  if (internHashes[slot] === h) {
    const hit = internCache[slot];
    if (hit !== undefined && hit.length === n && sameAscii(hit, buf, start, n)) return hit;
  }
  // Only ASCII is cached: the compare above matches UTF-16 units against bytes.
  if (!isAscii(buf, start, end)) return undefined;
  const s = shortAscii(buf, start, n);
  internCache[slot] = s;
  internHashes[slot] = h;
  return s;
}

/**
 * `buf[start, end)` (at least one byte) decoded by the JavaScript paths: a short ASCII string
 * (interned up to INTERN_MAX bytes), or text that looks wide and is valid UTF-8. Undefined for
 * what goes to the native decoder: longer ASCII, and anything else (invalid bytes included).
 */
function decodeInJs(buf: Uint8Array, start: number, end: number): string | undefined {
  const n = end - start;
  if (n <= INTERN_MAX) return decodeShortAscii(buf, start, end);
  if (n <= SHORT_ASCII_MAX && isAscii(buf, start, end)) return shortAscii(buf, start, n);
  if (n <= WIDE_MAX && looksWide(buf, start, end)) return utf8DecodeWide(buf, start, end);
  return undefined;
}

/** Whether the `n` units of `s` are the bytes `buf[start, start + n)`, four at a time. */
function sameAscii(s: string, buf: Uint8Array, start: number, n: number): boolean {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = start + i;
    if (((s.charCodeAt(i) ^ buf[p]!) | (s.charCodeAt(i + 1) ^ buf[p + 1]!) | (s.charCodeAt(i + 2) ^ buf[p + 2]!) | (s.charCodeAt(i + 3) ^ buf[p + 3]!)) !== 0) {
      return false;
    }
  }
  for (; i < n; i++) if (s.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}

/** Whether `buf[start, end)` is all ASCII. */
function isAscii(buf: Uint8Array, start: number, end: number): boolean {
  let high = 0;
  for (let p = start; p < end; p++) high |= buf[p]!;
  return high < 0x80;
}

/**
 * Whether a string's bytes look mostly non-ASCII, by the first byte and the middle one: such
 * text is decoded faster by utf8DecodeWide than natively, while ASCII is faster natively.
 */
function looksWide(buf: Uint8Array, start: number, end: number): boolean {
  return (buf[start]! | buf[(start + end) >>> 1]!) >= 0x80;
}

/**
 * Reads protobuf wire data from a byte array, bounds-checked: every read that would pass `end`
 * raises a DecodeError rather than reading garbage. `bytes()` and views return subarrays of the
 * input (no copy), so the input must not be modified while they are in use.
 */
export class Reader {
  pos: number;
  end: number;
  /** High 32 bits of the last 64-bit varint or fixed64 read by `varint64` / `fixed64Parts`. */
  hi = 0;
  /** Low 32 bits of the last 64-bit varint or fixed64 read by `varint64` / `fixed64Parts`. */
  lo = 0;

  constructor(
    public buf: Uint8Array,
    pos = 0,
    end = buf.length,
    /** Nesting limit: decoders raise DEPTH_EXCEEDED past it. */
    readonly depthLimit = DEFAULT_DEPTH_LIMIT,
  ) {
    this.pos = pos;
    this.end = end;
  }

  /**
   * Reads a length prefix and narrows `end` to the body it announces. Returns the previous end,
   * which the caller restores after reading the body: nested reads can never pass their body.
   */
  limit(): number {
    const n = this.length();
    const saved = this.end;
    this.end = this.pos + n;
    return saved;
  }

  /** Raises a TRUNCATED DecodeError at the end of the data (where the value was cut off). */
  truncated(what: string): never {
    this.pos = this.end;
    throw new DecodeError("TRUNCATED", this.end, `truncated ${what}: the data ends inside it`);
  }

  /** Reads a tag, checking that it names a valid field number and wire type. */
  tag(): number {
    const at = this.pos;
    const t = this.uint32();
    if (this.pos - at >= 5 && (this.pos - at > 5 || this.buf[this.pos - 1]! > 0x0f)) {
      throw new DecodeError("INVALID_TAG", at, "tag does not fit in 32 bits");
    }
    if (t >>> 3 === 0) throw new DecodeError("INVALID_TAG", at, `invalid tag ${t}: field number 0`);
    const wt = t & 7;
    if (wt > 5) throw new DecodeError("INVALID_WIRE_TYPE", at, `invalid wire type ${wt} in tag ${t}`);
    return t;
  }

  /** Reads a varint and returns its low 32 bits as an unsigned number. Accepts up to 10 bytes. */
  uint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos < this.end) {
      const b = buf[pos]!;
      if (b < 128) {
        this.pos = pos + 1;
        return b;
      }
    }
    let v = 0;
    let shift = 0;
    for (;;) {
      if (pos >= this.end) {
        this.pos = pos;
        this.truncated("varint");
      }
      const b = buf[pos++]!;
      if (shift < 32) v |= (b & 127) << shift;
      if (b < 128) break;
      shift += 7;
      if (shift >= 70) {
        throw new DecodeError("VARINT_TOO_LONG", this.pos, "varint longer than 10 bytes");
      }
    }
    this.pos = pos;
    return v >>> 0;
  }

  /** Reads an int32 (or enum) varint. */
  int32(): number {
    return this.uint32() | 0;
  }

  /** Reads a zigzag sint32 varint. */
  sint32(): number {
    const v = this.uint32();
    return (v >>> 1) ^ -(v & 1);
  }

  /** Reads a bool varint (any non-zero value is true). */
  bool(): boolean {
    const pos = this.pos;
    if (pos < this.end && this.buf[pos]! < 128) {
      this.pos = pos + 1;
      return this.buf[pos] !== 0;
    }
    this.varint64();
    return (this.lo | this.hi) !== 0;
  }

  /** Reads a 64-bit varint into `lo` and `hi` (unsigned halves). */
  varint64(): void {
    // With ten bytes left no byte needs a bounds check: unrolled, the common short varints end
    // after a test or two. Anything else (near the end, over ten bytes) takes the checked loop.
    const buf = this.buf;
    const pos = this.pos;
    if (pos + 10 <= this.end) {
      let b = buf[pos]!;
      let lo = b & 127;
      if (b < 128) return this.setVarint64(pos + 1, lo, 0);
      b = buf[pos + 1]!;
      lo |= (b & 127) << 7;
      if (b < 128) return this.setVarint64(pos + 2, lo, 0);
      b = buf[pos + 2]!;
      lo |= (b & 127) << 14;
      if (b < 128) return this.setVarint64(pos + 3, lo, 0);
      b = buf[pos + 3]!;
      lo |= (b & 127) << 21;
      if (b < 128) return this.setVarint64(pos + 4, lo, 0);
      b = buf[pos + 4]!;
      lo |= (b & 127) << 28;
      let hi = (b & 127) >> 4;
      if (b < 128) return this.setVarint64(pos + 5, lo, hi);
      b = buf[pos + 5]!;
      hi |= (b & 127) << 3;
      if (b < 128) return this.setVarint64(pos + 6, lo, hi);
      b = buf[pos + 6]!;
      hi |= (b & 127) << 10;
      if (b < 128) return this.setVarint64(pos + 7, lo, hi);
      b = buf[pos + 7]!;
      hi |= (b & 127) << 17;
      if (b < 128) return this.setVarint64(pos + 8, lo, hi);
      b = buf[pos + 8]!;
      hi |= (b & 127) << 24;
      if (b < 128) return this.setVarint64(pos + 9, lo, hi);
      b = buf[pos + 9]!;
      hi |= (b & 127) << 31;
      if (b < 128) return this.setVarint64(pos + 10, lo, hi);
    }
    this.varint64Checked();
  }

  private setVarint64(pos: number, lo: number, hi: number): void {
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** varint64 with a bounds check per byte: near the end of the data, and for errors. */
  private varint64Checked(): void {
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let i = 0;
    for (;; i++) {
      if (pos >= this.end) {
        this.pos = pos;
        this.truncated("varint");
      }
      const b = buf[pos++]!;
      if (i < 4) lo |= (b & 127) << (i * 7);
      else if (i === 4) {
        lo |= (b & 127) << 28;
        hi |= (b & 127) >> 4;
      } else if (i < 10) hi |= (b & 127) << (i * 7 - 32);
      if (b < 128) break;
      if (i === 9) throw new DecodeError("VARINT_TOO_LONG", this.pos, "varint longer than 10 bytes");
    }
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** Reads 8 little-endian bytes into `lo` and `hi`. */
  fixed64Parts(): void {
    this.lo = this.fixed32();
    this.hi = this.fixed32();
  }

  /** Reads a fixed32 as an unsigned number. */
  fixed32(): number {
    const pos = this.pos;
    if (pos + 4 > this.end) this.truncated("fixed32");
    const b = this.buf;
    this.pos = pos + 4;
    return (b[pos]! | (b[pos + 1]! << 8) | (b[pos + 2]! << 16)) + b[pos + 3]! * 0x1000000;
  }

  /** Reads an sfixed32. */
  sfixed32(): number {
    return this.fixed32() | 0;
  }

  /** Reads a 32-bit float. */
  float(): number {
    const pos = this.pos;
    if (pos + 4 > this.end) this.truncated("float");
    const b = this.buf;
    if (LITTLE_ENDIAN) {
      f32b[0] = b[pos]!;
      f32b[1] = b[pos + 1]!;
      f32b[2] = b[pos + 2]!;
      f32b[3] = b[pos + 3]!;
    } else {
      f32b[3] = b[pos]!;
      f32b[2] = b[pos + 1]!;
      f32b[1] = b[pos + 2]!;
      f32b[0] = b[pos + 3]!;
    }
    this.pos = pos + 4;
    return f32[0]!;
  }

  /** Reads a 64-bit double. */
  double(): number {
    const pos = this.pos;
    if (pos + 8 > this.end) this.truncated("double");
    const b = this.buf;
    if (LITTLE_ENDIAN) {
      f64b[0] = b[pos]!;
      f64b[1] = b[pos + 1]!;
      f64b[2] = b[pos + 2]!;
      f64b[3] = b[pos + 3]!;
      f64b[4] = b[pos + 4]!;
      f64b[5] = b[pos + 5]!;
      f64b[6] = b[pos + 6]!;
      f64b[7] = b[pos + 7]!;
    } else {
      for (let i = 0; i < 8; i++) f64b[7 - i] = b[pos + i]!;
    }
    this.pos = pos + 8;
    return f64[0]!;
  }

  /** Reads a 64-bit double stored big-endian (Thrift Binary), through the same scratch as `double`. */
  doubleBE(): number {
    const pos = this.pos;
    if (pos + 8 > this.end) this.truncated("double");
    const b = this.buf;
    for (let i = 0; i < 8; i++) f64b[LITTLE_ENDIAN ? 7 - i : i] = b[pos + i]!;
    this.pos = pos + 8;
    return f64[0]!;
  }

  // int64 family, bigint representation

  /** Reads an int64 varint as a bigint. */
  int64(): bigint {
    this.varint64();
    return joinSigned(this.lo, this.hi);
  }

  /** Reads a uint64 varint as a bigint. */
  uint64(): bigint {
    this.varint64();
    return joinUnsigned(this.lo, this.hi);
  }

  /** Reads a zigzag sint64 varint as a bigint. */
  sint64(): bigint {
    this.zigzag64();
    return joinSigned(this.lo, this.hi);
  }

  /**
   * Reads a zigzag varint into `lo`/`hi` as the two's complement halves of its value: zigzag
   * decoding on the halves, (u >>> 1) ^ -(u & 1), so that the caller converts once (bigint
   * arithmetic would allocate an intermediate per operation).
   */
  private zigzag64(): void {
    this.varint64();
    const lo = this.lo;
    const hi = this.hi;
    const l = ((lo >>> 1) | (hi << 31)) >>> 0;
    const h = hi >>> 1;
    const neg = lo & 1;
    this.lo = neg ? ~l >>> 0 : l;
    this.hi = neg ? ~h >>> 0 : h;
  }

  /** Reads a fixed64 as a bigint. */
  fixed64(): bigint {
    this.fixed64Parts();
    return joinUnsigned(this.lo, this.hi);
  }

  /** Reads an sfixed64 as a bigint. */
  sfixed64(): bigint {
    this.fixed64Parts();
    return joinSigned(this.lo, this.hi);
  }

  // int64 family, number representation (values past 2^53 lose precision, by the user's choice)

  /** Reads an int64 varint as a number. */
  int64Number(): number {
    this.varint64();
    return signedNumber(this.lo, this.hi);
  }

  /** Reads a uint64 varint as a number. */
  uint64Number(): number {
    this.varint64();
    return this.hi * TWO_32 + this.lo;
  }

  /** Reads a zigzag sint64 varint as a number. */
  sint64Number(): number {
    this.varint64();
    const lo = this.lo;
    const hi = this.hi;
    const neg = lo & 1;
    const l = ((lo >>> 1) | (hi << 31)) >>> 0;
    const h = hi >>> 1;
    // -(value + 1) with one rounding: l + 1 is exact (at most 2^32).
    return neg ? -(h * TWO_32 + (l + 1)) : h * TWO_32 + l;
  }

  /** Reads a fixed64 as a number. */
  fixed64Number(): number {
    this.fixed64Parts();
    return this.hi * TWO_32 + this.lo;
  }

  /** Reads an sfixed64 as a number. */
  sfixed64Number(): number {
    this.fixed64Parts();
    return signedNumber(this.lo, this.hi);
  }

  // 64-bit map keys. A map is an object, so a key is its decimal string; these return the key as
  // a number while it is exact in a double (|value| <= 2^53), which the object stores as it
  // stores its string (`m[12]` is `m["12"]`) without making the string or a bigint, and as the
  // exact decimal string past that.

  /** Reads an int64 varint as a map key. */
  int64Key(): number | string {
    this.varint64();
    return signedKey(this.lo, this.hi);
  }

  /** Reads a uint64 varint as a map key. */
  uint64Key(): number | string {
    this.varint64();
    return unsignedKey(this.lo, this.hi);
  }

  /** Reads a zigzag sint64 varint as a map key. */
  sint64Key(): number | string {
    this.zigzag64();
    return signedKey(this.lo, this.hi);
  }

  /** Reads a fixed64 as a map key. */
  fixed64Key(): number | string {
    this.fixed64Parts();
    return unsignedKey(this.lo, this.hi);
  }

  /** Reads an sfixed64 as a map key. */
  sfixed64Key(): number | string {
    this.fixed64Parts();
    return signedKey(this.lo, this.hi);
  }

  // Packed repeated fields: each method reads the length prefix and appends every value of the
  // body to `out`, one call per field. A body that ends inside a value raises TRUNCATED at its
  // end, as reading value by value does. One method per type rather than one generic one, so
  // that each loop stays monomorphic over its own typed array and value type.

  /** Reads a packed double body into `out`. */
  packedDouble(out: number[]): void {
    const saved = this.limit();
    for (let n = 0; (n = this.toScratch(8)) > 0; ) for (let i = 0; i < n; i++) out.push(scratchF64[i]!);
    while (this.pos < this.end) out.push(this.double());
    this.end = saved;
  }

  /** Reads a packed float body into `out`. */
  packedFloat(out: number[]): void {
    const saved = this.limit();
    for (let n = 0; (n = this.toScratch(4)) > 0; ) for (let i = 0; i < n; i++) out.push(scratchF32[i]!);
    while (this.pos < this.end) out.push(this.float());
    this.end = saved;
  }

  /** Reads a packed fixed32 body into `out`. */
  packedFixed32(out: number[]): void {
    const saved = this.limit();
    for (let n = 0; (n = this.toScratch(4)) > 0; ) for (let i = 0; i < n; i++) out.push(scratchU32[i]!);
    while (this.pos < this.end) out.push(this.fixed32());
    this.end = saved;
  }

  /** Reads a packed sfixed32 body into `out`. */
  packedSfixed32(out: number[]): void {
    const saved = this.limit();
    for (let n = 0; (n = this.toScratch(4)) > 0; ) for (let i = 0; i < n; i++) out.push(scratchI32[i]!);
    while (this.pos < this.end) out.push(this.sfixed32());
    this.end = saved;
  }

  /** Reads a packed fixed64 body into `out` as bigints. */
  packedFixed64(out: bigint[]): void {
    const saved = this.limit();
    for (let n = 0; (n = this.toScratch(8)) > 0; ) for (let i = 0; i < n; i++) out.push(scratchU64[i]!);
    while (this.pos < this.end) out.push(this.fixed64());
    this.end = saved;
  }

  /** Reads a packed sfixed64 body into `out` as bigints. */
  packedSfixed64(out: bigint[]): void {
    const saved = this.limit();
    for (let n = 0; (n = this.toScratch(8)) > 0; ) for (let i = 0; i < n; i++) out.push(scratchI64[i]!);
    while (this.pos < this.end) out.push(this.sfixed64());
    this.end = saved;
  }

  /** Reads a packed fixed64 body into `out` as numbers. */
  packedFixed64Number(out: number[]): void {
    const saved = this.limit();
    for (let n = 0; (n = this.toScratch(8)) > 0; ) {
      for (let i = 0; i < n; i++) out.push(scratchU32[2 * i + HI]! * TWO_32 + scratchU32[2 * i + LO]!);
    }
    while (this.pos < this.end) out.push(this.fixed64Number());
    this.end = saved;
  }

  /** Reads a packed sfixed64 body into `out` as numbers. */
  packedSfixed64Number(out: number[]): void {
    const saved = this.limit();
    for (let n = 0; (n = this.toScratch(8)) > 0; ) {
      for (let i = 0; i < n; i++) out.push(signedNumber(scratchU32[2 * i + LO]!, scratchU32[2 * i + HI]!));
    }
    while (this.pos < this.end) out.push(this.sfixed64Number());
    this.end = saved;
  }

  /**
   * Copies the next whole values of `size` bytes before `end` (at most a scratch's worth) into the
   * scratch and returns how many. None on a big-endian host: its callers then read value by value.
   */
  private toScratch(size: number): number {
    if (!LITTLE_ENDIAN) return 0;
    const pos = this.pos;
    const n = Math.min(this.end - pos, SCRATCH_BYTES);
    const whole = n - (n % size);
    if (whole === 0) return 0;
    const buf = this.buf;
    // A plain Uint8Array view: Buffer#subarray goes through slower JavaScript in node:buffer.
    scratchBytes.set(new Uint8Array(buf.buffer, buf.byteOffset + pos, whole));
    this.pos = pos + whole;
    return whole / size;
  }

  /** Reads a packed uint32 body into `out`. */
  packedUint32(out: number[]): void {
    const saved = this.limit();
    while (this.pos < this.end) out.push(this.varint32InBody());
    this.end = saved;
  }

  /** Reads a packed int32 (or open enum) body into `out`. */
  packedInt32(out: number[]): void {
    const saved = this.limit();
    while (this.pos < this.end) out.push(this.varint32InBody() | 0);
    this.end = saved;
  }

  /** Reads a packed sint32 body into `out`. */
  packedSint32(out: number[]): void {
    const saved = this.limit();
    while (this.pos < this.end) {
      const v = this.varint32InBody();
      out.push((v >>> 1) ^ -(v & 1));
    }
    this.end = saved;
  }

  /** Reads a packed int64 body into `out` as bigints. */
  packedInt64(out: bigint[]): void {
    const saved = this.limit();
    while (this.pos < this.end) out.push(this.int64());
    this.end = saved;
  }

  /** Reads a packed uint64 body into `out` as bigints. */
  packedUint64(out: bigint[]): void {
    const saved = this.limit();
    while (this.pos < this.end) out.push(this.uint64());
    this.end = saved;
  }

  /** Reads a packed sint64 body into `out` as bigints. */
  packedSint64(out: bigint[]): void {
    const saved = this.limit();
    while (this.pos < this.end) out.push(this.sint64());
    this.end = saved;
  }

  /** Reads a packed int64 body into `out` as numbers. */
  packedInt64Number(out: number[]): void {
    const saved = this.limit();
    while (this.pos < this.end) out.push(this.int64Number());
    this.end = saved;
  }

  /** Reads a packed uint64 body into `out` as numbers. */
  packedUint64Number(out: number[]): void {
    const saved = this.limit();
    while (this.pos < this.end) out.push(this.uint64Number());
    this.end = saved;
  }

  /** Reads a packed sint64 body into `out` as numbers. */
  packedSint64Number(out: number[]): void {
    const saved = this.limit();
    while (this.pos < this.end) out.push(this.sint64Number());
    this.end = saved;
  }

  /** Reads a packed bool body into `out`: one byte a value, but any varint is read (non-zero is true). */
  packedBool(out: boolean[]): void {
    const saved = this.limit();
    const buf = this.buf;
    while (this.pos < this.end) {
      const b = buf[this.pos]!;
      if (b < 128) {
        out.push(b !== 0);
        this.pos++;
      } else out.push(this.bool());
    }
    this.end = saved;
  }

  /**
   * `uint32()` for the values of a packed body: a varint of up to five bytes that ends before
   * `end` is decoded without a bounds check per byte, and one of ten (a negative int32) only
   * looks for its end past the fifth; anything else takes the checked loop.
   */
  private varint32InBody(): number {
    const buf = this.buf;
    const pos = this.pos;
    if (pos + 5 <= this.end) {
      let b = buf[pos]!;
      let v = b & 127;
      if (b < 128) return this.at(pos + 1, v);
      b = buf[pos + 1]!;
      v |= (b & 127) << 7;
      if (b < 128) return this.at(pos + 2, v);
      b = buf[pos + 2]!;
      v |= (b & 127) << 14;
      if (b < 128) return this.at(pos + 3, v);
      b = buf[pos + 3]!;
      v |= (b & 127) << 21;
      if (b < 128) return this.at(pos + 4, v >>> 0);
      b = buf[pos + 4]!;
      v = (v | (b << 28)) >>> 0;
      if (b < 128) return this.at(pos + 5, v);
      // A negative int32 takes ten bytes, sign-extended: the last five carry none of the low
      // 32 bits, so only where the varint ends matters.
      const last = Math.min(pos + 10, this.end);
      for (let p = pos + 5; p < last; p++) if (buf[p]! < 128) return this.at(p + 1, v);
    }
    return this.uint32();
  }

  /** Moves to `pos` and returns `v`. */
  private at(pos: number, v: number): number {
    this.pos = pos;
    return v;
  }

  /** Reads a length prefix and checks it against the end of the enclosing message. */
  length(): number {
    const at = this.pos;
    if (at < this.end) {
      const b = this.buf[at]!;
      if (b < 128) {
        if (b > this.end - at - 1) this.lengthPastEnd(at, b, this.end - at - 1);
        this.pos = at + 1;
        return b;
      }
    }
    const n = this.uint32();
    if (this.pos - at >= 5) {
      // Lengths are 32-bit: re-read as 64 bits and refuse anything past that.
      this.pos = at;
      this.varint64();
      if (this.hi !== 0) {
        throw new DecodeError("LENGTH_OUT_OF_RANGE", at, "length does not fit in 32 bits");
      }
    }
    if (n > this.end - this.pos) this.lengthPastEnd(at, n, this.end - this.pos);
    return n;
  }

  private lengthPastEnd(at: number, n: number, left: number): never {
    throw new DecodeError("LENGTH_OUT_OF_RANGE", at, `length ${n} runs past the end of the data (${left} bytes left)`);
  }

  /** Reads a bytes field as a view into the input (no copy). */
  bytes(): Uint8Array {
    const n = this.length();
    const start = this.pos;
    this.pos = start + n;
    const buf = this.buf;
    // A plain Uint8Array view: Buffer#subarray goes through slower JavaScript in node:buffer.
    return new Uint8Array(buf.buffer, buf.byteOffset + start, n);
  }

  /** Reads a string field; invalid UTF-8 raises INVALID_UTF8 (proto3 `string` semantics). */
  string(): string {
    return this.utf8(this.length());
  }

  /**
   * Reads the next `n` bytes, which the caller checked are there, as a string; invalid UTF-8
   * raises INVALID_UTF8. For formats whose lengths are not varints (Thrift Binary).
   */
  utf8(n: number): string {
    const start = this.pos;
    const end = start + n;
    this.pos = end;
    if (n === 0) return "";
    // Valid UTF-8 comes back decoded; anything else goes the native way below, which reports it.
    const js = decodeInJs(this.buf, start, end);
    if (js !== undefined) return js;
    const s = utf8Slice.call(this.buf, start, end);
    // The native decoder substitutes U+FFFD for bad sequences; only then check strictly.
    if (s.indexOf("\uFFFD") !== -1 && !isValidUtf8(this.buf, start, end)) {
      throw new DecodeError("INVALID_UTF8", start, "invalid UTF-8 in a string field");
    }
    return s;
  }

  /** Reads a string field, replacing invalid UTF-8 with U+FFFD (proto2 `string` semantics). */
  stringLenient(): string {
    const n = this.length();
    const start = this.pos;
    this.pos = start + n;
    if (n === 0) return "";
    return decodeInJs(this.buf, start, start + n) ?? utf8Slice.call(this.buf, start, start + n);
  }

  /**
   * Skips the value of a field whose tag was just read, checking it is well formed (groups must
   * close with a matching end tag within the depth limit). Returns the position after it.
   */
  skip(tag: number, depth = 0): number {
    switch (tag & 7) {
      case WireType.Varint: {
        const buf = this.buf;
        let pos = this.pos;
        for (let i = 0; ; i++) {
          if (pos >= this.end) {
            this.pos = pos;
            this.truncated("varint");
          }
          if (i === 10) throw new DecodeError("VARINT_TOO_LONG", this.pos, "varint longer than 10 bytes");
          if (buf[pos++]! < 128) break;
        }
        return (this.pos = pos);
      }
      case WireType.Fixed64:
        if (this.pos + 8 > this.end) this.truncated("fixed64");
        return (this.pos += 8);
      case WireType.LengthDelimited: {
        const n = this.length();
        return (this.pos += n);
      }
      case WireType.StartGroup: {
        if (depth >= this.depthLimit) {
          throw new DecodeError("DEPTH_EXCEEDED", this.pos, `groups nested deeper than ${this.depthLimit}`);
        }
        for (;;) {
          if (this.pos >= this.end) this.truncated(`group ${tag >>> 3}`);
          const t = this.tag();
          if ((t & 7) === WireType.EndGroup) {
            if (t >>> 3 !== tag >>> 3) {
              throw new DecodeError(
                "INVALID_GROUP",
                this.pos,
                `end group ${t >>> 3} does not match start group ${tag >>> 3}`,
              );
            }
            return this.pos;
          }
          this.skip(t, depth + 1);
        }
      }
      case WireType.EndGroup:
        throw new DecodeError("INVALID_GROUP", this.pos, `end group ${tag >>> 3} without a start group`);
      case WireType.Fixed32:
        if (this.pos + 4 > this.end) this.truncated("fixed32");
        return (this.pos += 4);
      default:
        throw new DecodeError("INVALID_WIRE_TYPE", this.pos, `invalid wire type ${tag & 7}`);
    }
  }

  /**
   * Skips an unknown field whose tag started at `tagStart` and returns its raw bytes, tag
   * included, to be kept and re-emitted.
   */
  unknown(tag: number, tagStart: number, depth = 0): Uint8Array {
    this.skip(tag, depth);
    return this.buf.subarray(tagStart, this.pos);
  }

  /** Raises WRONG_WIRE_TYPE for a known field that arrived with an unexpected wire type. */
  wrongWireType(tag: number, expected: string): never {
    throw new DecodeError(
      "WRONG_WIRE_TYPE",
      this.pos,
      `field ${tag >>> 3} has wire type ${tag & 7}, expected ${expected}`,
    );
  }

  /** Raises DEPTH_EXCEEDED when `depth` is past the limit. */
  checkDepth(depth: number): void {
    if (depth > this.depthLimit) {
      throw new DecodeError("DEPTH_EXCEEDED", this.pos, `messages nested deeper than ${this.depthLimit}`);
    }
  }

  /**
   * Raises MISSING_REQUIRED for a proto2 required field absent from the input. `field` is the
   * field's property name: it ends the error's path (the enclosing messages add theirs while
   * the error unwinds).
   */
  missingRequired(field: string): never {
    const e = new DecodeError("MISSING_REQUIRED", this.pos, `required field ${field} is missing`);
    e.path.push(field);
    throw e;
  }
}

/** Joins unsigned 32-bit halves into an unsigned bigint. */
export function joinUnsigned(lo: number, hi: number): bigint {
  HALVES[LO] = lo;
  HALVES[HI] = hi;
  return U64[0]!;
}

/** Joins unsigned 32-bit halves into a signed (two's complement) bigint. */
export function joinSigned(lo: number, hi: number): bigint {
  HALVES[LO] = lo;
  HALVES[HI] = hi;
  return I64[0]!;
}

/** Unsigned 32-bit halves as a map key: a number below 2^53, else the exact decimal string. */
function unsignedKey(lo: number, hi: number): number | string {
  return hi < 0x200000 ? hi * TWO_32 + lo : String(joinUnsigned(lo, hi));
}

/** Two's complement 32-bit halves as a map key: a number within ±2^53, else the exact decimal string. */
function signedKey(lo: number, hi: number): number | string {
  // hi as a signed 32-bit value: in [-2^21, 2^21) the value is within [-2^53, 2^53), exact.
  const h = hi | 0;
  return h >= -0x200000 && h < 0x200000 ? h * TWO_32 + lo : String(joinSigned(lo, hi));
}

function signedNumber(lo: number, hi: number): number {
  if (hi >= 0x80000000) {
    // Two's complement negative: -(~value + 1)
    const l = (~lo + 1) >>> 0;
    const h = (~hi + (l === 0 ? 1 : 0)) >>> 0;
    return -(h * TWO_32 + l);
  }
  return hi * TWO_32 + lo;
}

const decodeReader = new Reader(new Uint8Array(0));

/**
 * The reader behind every generated `decode()`, reset to cover all of `bytes`. Decoders run to
 * completion without calling user code, so one per process is enough.
 */
export function readerFor(bytes: Uint8Array): Reader {
  const r = decodeReader;
  r.buf = bytes;
  r.pos = 0;
  r.end = bytes.length;
  return r;
}
