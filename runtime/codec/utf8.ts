/**
 * UTF-8 helpers for the codec. Short strings go through these JavaScript loops, which beat a
 * call into C++ for a handful of characters; long ones go through Buffer's native routines.
 *
 * Encoding policy: a lone surrogate is written as U+FFFD, exactly like TextEncoder and Buffer.
 * Decoding policy: see Reader#string (strict) and Reader#stringLenient (U+FFFD replacement).
 */

/**
 * Writes `s` as UTF-8 into `buf` at `pos` and returns the new position. The caller guarantees
 * room for `3 * s.length` bytes.
 *
 * The loop handles the basic multilingual plane only, which keeps it small enough for V8 to
 * optimize well (it beats Buffer#utf8Write by 2-4x on strings of a few dozen characters); the
 * first surrogate hands the rest of the string to `utf8WriteFrom`.
 */
export function utf8WriteLoop(buf: Uint8Array, pos: number, s: string): number {
  const n = s.length;
  let i = 0;
  // ASCII four units at a time, one test for the four: a third less time a character than one
  // at a time. The first group with anything wider goes on one by one below.
  for (; i + 4 <= n; i += 4) {
    const a = s.charCodeAt(i);
    const b = s.charCodeAt(i + 1);
    const c = s.charCodeAt(i + 2);
    const d = s.charCodeAt(i + 3);
    if ((a | b | c | d) >= 0x80) break;
    buf[pos] = a;
    buf[pos + 1] = b;
    buf[pos + 2] = c;
    buf[pos + 3] = d;
    pos += 4;
  }
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[pos++] = c;
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c > 0xdfff) {
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else {
      return utf8WriteFrom(buf, pos, s, i);
    }
  }
  return pos;
}

/** Writes `s` from index `i` on, surrogate pairs included (a lone surrogate becomes U+FFFD). */
function utf8WriteFrom(buf: Uint8Array, pos: number, s: string, i: number): number {
  for (const n = s.length; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[pos++] = c;
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        i++;
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        buf[pos++] = 0xf0 | (c >> 18);
        buf[pos++] = 0x80 | ((c >> 12) & 0x3f);
        buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
        buf[pos++] = 0x80 | (c & 0x3f);
      } else {
        buf[pos++] = 0xef; // lone surrogate: U+FFFD
        buf[pos++] = 0xbf;
        buf[pos++] = 0xbd;
      }
    } else {
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

/**
 * Decodes `buf[start, end)` as UTF-8 with a JavaScript loop. Returns undefined when the bytes are
 * not valid UTF-8 (overlong forms, surrogates, code points past U+10FFFF, truncated sequences),
 * so the caller decides between an error and replacement.
 */
export function utf8ReadLoop(buf: Uint8Array, start: number, end: number): string | undefined {
  let s = "";
  let i = start;
  while (i < end) {
    const a = buf[i++]!;
    if (a < 0x80) {
      s += String.fromCharCode(a);
      continue;
    }
    if (a >= 0xc2 && a <= 0xdf) {
      if (i >= end) return undefined;
      const b = buf[i++]!;
      if ((b & 0xc0) !== 0x80) return undefined;
      s += String.fromCharCode(((a & 0x1f) << 6) | (b & 0x3f));
    } else if (a >= 0xe0 && a <= 0xef) {
      if (i + 1 >= end) return undefined;
      const b = buf[i++]!;
      const c = buf[i++]!;
      if ((b & 0xc0) !== 0x80 || (c & 0xc0) !== 0x80) return undefined;
      const cp = ((a & 0x0f) << 12) | ((b & 0x3f) << 6) | (c & 0x3f);
      if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
      s += String.fromCharCode(cp);
    } else if (a >= 0xf0 && a <= 0xf4) {
      if (i + 2 >= end) return undefined;
      const b = buf[i++]!;
      const c = buf[i++]!;
      const d = buf[i++]!;
      if ((b & 0xc0) !== 0x80 || (c & 0xc0) !== 0x80 || (d & 0xc0) !== 0x80) return undefined;
      const cp = ((a & 0x07) << 18) | ((b & 0x3f) << 12) | ((c & 0x3f) << 6) | (d & 0x3f);
      if (cp < 0x10000 || cp > 0x10ffff) return undefined;
      const u = cp - 0x10000;
      s += String.fromCharCode(0xd800 + (u >> 10), 0xdc00 + (u & 0x3ff));
    } else {
      return undefined;
    }
  }
  return s;
}

const fromCharCode = String.fromCharCode;

/** Longest string `shortAscii` makes. */
export const SHORT_ASCII_MAX = 24;

/**
 * `b[s, s + n)`, 1 to SHORT_ASCII_MAX bytes that the caller checked are ASCII, as a string:
 * `String.fromCharCode` with one argument per byte makes the flat string in one builtin call,
 * 8-35 ns on Node 20 where a call into Buffer's native decoders costs 40-55 ns whatever the
 * length.
 */
export function shortAscii(b: Uint8Array, s: number, n: number): string {
  switch (n) {
    case 1:
      return fromCharCode(b[s]!);
    case 2:
      return fromCharCode(b[s]!, b[s + 1]!);
    case 3:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!);
    case 4:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!);
    case 5:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!);
    case 6:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!);
    case 7:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!);
    case 8:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!);
    case 9:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!
      );
    case 10:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!
      );
    case 11:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!
      );
    case 12:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!
      );
    case 13:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!
      );
    case 14:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!
      );
    case 15:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!
      );
    case 16:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!, b[s + 15]!
      );
    case 17:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!, b[s + 15]!, b[s + 16]!
      );
    case 18:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!, b[s + 15]!, b[s + 16]!,
        b[s + 17]!
      );
    case 19:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!, b[s + 15]!, b[s + 16]!,
        b[s + 17]!, b[s + 18]!
      );
    case 20:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!, b[s + 15]!, b[s + 16]!,
        b[s + 17]!, b[s + 18]!, b[s + 19]!
      );
    case 21:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!, b[s + 15]!, b[s + 16]!,
        b[s + 17]!, b[s + 18]!, b[s + 19]!, b[s + 20]!
      );
    case 22:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!, b[s + 15]!, b[s + 16]!,
        b[s + 17]!, b[s + 18]!, b[s + 19]!, b[s + 20]!, b[s + 21]!
      );
    case 23:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!, b[s + 15]!, b[s + 16]!,
        b[s + 17]!, b[s + 18]!, b[s + 19]!, b[s + 20]!, b[s + 21]!, b[s + 22]!
      );
    case 24:
      return fromCharCode(
        b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!,
        b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!, b[s + 15]!, b[s + 16]!,
        b[s + 17]!, b[s + 18]!, b[s + 19]!, b[s + 20]!, b[s + 21]!, b[s + 22]!, b[s + 23]!
      );
  }
  throw new RangeError(`shortAscii takes 1 to ${SHORT_ASCII_MAX} bytes, not ${n}`);
}

/** Longest text, in UTF-16 units, that utf8DecodeWide decodes (its scratch is twice that in bytes). */
export const WIDE_MAX = 32 * 1024;

const ucs2Slice = Buffer.prototype.ucs2Slice as (this: Uint8Array, start: number, end: number) => string;
let wide = new Uint16Array(1024);
let wideBytes = Buffer.from(wide.buffer);

/**
 * Decodes `buf[start, end)` as UTF-8 into a scratch array of UTF-16 units and makes the string
 * with one native copy (ucs2Slice). For text that is mostly not ASCII this is about three times
 * Buffer#utf8Slice on Node 20, whose decoder leaves its fast path at the first wide character;
 * for ASCII it is slower, so callers use it only when the text looks wide. Returns undefined
 * when the bytes are not valid UTF-8 (as utf8ReadLoop), and the caller keeps texts longer than
 * WIDE_MAX bytes away from it, which bounds the scratch.
 */
export function utf8DecodeWide(buf: Uint8Array, start: number, end: number): string | undefined {
  // UTF-8 never takes fewer bytes than UTF-16 units: end - start units always suffice.
  if (end - start > wide.length) {
    wide = new Uint16Array(Math.min(WIDE_MAX, Math.max(end - start, wide.length * 2)));
    wideBytes = Buffer.from(wide.buffer);
  }
  const out = wide;
  let n = 0;
  let i = start;
  while (i < end) {
    const a = buf[i]!;
    if (a < 0x80) {
      out[n++] = a;
      i++;
    } else if (a >= 0xe0 && a <= 0xef && i + 2 < end) {
      const b = buf[i + 1]!;
      const c = buf[i + 2]!;
      const cp = ((a & 0x0f) << 12) | ((b & 0x3f) << 6) | (c & 0x3f);
      if ((b & 0xc0) !== 0x80 || (c & 0xc0) !== 0x80 || cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
      out[n++] = cp;
      i += 3;
    } else if (a >= 0xc2 && a <= 0xdf && i + 1 < end) {
      const b = buf[i + 1]!;
      if ((b & 0xc0) !== 0x80) return undefined;
      out[n++] = ((a & 0x1f) << 6) | (b & 0x3f);
      i += 2;
    } else if (a >= 0xf0 && a <= 0xf4 && i + 3 < end) {
      const b = buf[i + 1]!;
      const c = buf[i + 2]!;
      const d = buf[i + 3]!;
      if ((b & 0xc0) !== 0x80 || (c & 0xc0) !== 0x80 || (d & 0xc0) !== 0x80) return undefined;
      const cp = ((a & 0x07) << 18) | ((b & 0x3f) << 12) | ((c & 0x3f) << 6) | (d & 0x3f);
      if (cp < 0x10000 || cp > 0x10ffff) return undefined;
      const u = cp - 0x10000;
      out[n++] = 0xd800 + (u >> 10);
      out[n++] = 0xdc00 + (u & 0x3ff);
      i += 4;
    } else {
      return undefined;
    }
  }
  return ucs2Slice.call(wideBytes, 0, n * 2);
}

/** True when `buf[start, end)` is valid UTF-8. */
export function isValidUtf8(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const a = buf[i++]!;
    if (a < 0x80) continue;
    let need: number;
    let min: number;
    if (a >= 0xc2 && a <= 0xdf) (need = 1), (min = 0x80);
    else if (a >= 0xe0 && a <= 0xef) (need = 2), (min = 0x800);
    else if (a >= 0xf0 && a <= 0xf4) (need = 3), (min = 0x10000);
    else return false;
    if (i + need > end) return false;
    let cp = a & (0x3f >> need);
    for (let k = 0; k < need; k++) {
      const b = buf[i++]!;
      if ((b & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
  }
  return true;
}
