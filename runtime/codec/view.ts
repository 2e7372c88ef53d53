import { Reader } from "./reader.js";
import type { AnyMessageCodec } from "./types.js";

// One reader for every view getter: getters run to completion and never nest across views.
const shared = new Reader(new Uint8Array(0));

function readerAt(buf: Uint8Array, pos: number, end: number): Reader {
  shared.buf = buf;
  shared.pos = pos;
  shared.end = end;
  return shared;
}

/** Field numbers up to this are tracked in a dense table; larger ones (rare) in a Map. */
const DENSE_FIELDS = 256;

/**
 * Messages of at most this many bytes are not indexed: each lookup scans them, which costs less
 * than allocating and filling the table for the one or two getters a small message gets.
 */
const SCAN_LIMIT = 64;

/** The bit of `$many` for field `no` (field numbers from 31 share the top bit). */
function manyBit(no: number): number {
  return no < 31 ? 1 << no : 0x80000000;
}

/**
 * Where a view's message lies and what scanning it found. Every view holds one, of this one class:
 * the shared code below reads only these, so its property accesses stay monomorphic however many
 * message types an application views. (Read off the views themselves, whose classes differ per
 * message type, they went megamorphic past four types and a small view cost 7x as much.)
 */
export class ViewState {
  /** Tag positions of the last occurrence of each field number (-1: absent), after the scan. */
  last: Int32Array | undefined = undefined;
  /** The same for declared field numbers past DENSE_FIELDS, when any occurred. */
  far: Map<number, number> | undefined = undefined;
  /** Fields seen more than once (see manyBit; numbers from 31 share a bit and always rescan). */
  many = 0;

  constructor(
    readonly buf: Uint8Array,
    readonly start: number,
    readonly end: number,
    readonly depth: number,
  ) {}
}

/** The state of a view of `buf[start, end)` at nesting depth `depth`, for a generated view's constructor. */
export function viewState(buf: Uint8Array, start: number, end: number, depth: number): ViewState {
  return new ViewState(buf, start, end, depth);
}

/** Scans the top-level fields of `s` once, recording the last occurrence of each up to `max`. */
function scan(s: ViewState, max: number): Int32Array {
  const last = new Int32Array(Math.min(max, DENSE_FIELDS) + 1).fill(-1);
  const r = readerAt(s.buf, s.start, s.end);
  let many = 0;
  while (r.pos < r.end) {
    const at = r.pos;
    const tag = r.tag();
    const no = tag >>> 3;
    if (no < last.length) {
      if (last[no] !== -1) many |= manyBit(no);
      last[no] = at;
    } else if (no <= max) {
      const far = (s.far ??= new Map());
      if (far.has(no)) many |= 0x80000000;
      far.set(no, at);
    }
    r.skip(tag, s.depth);
  }
  s.many = many;
  return (s.last = last);
}

/**
 * The last occurrence of field `no` found by scanning the whole message, without a table
 * (small messages); records in `many` whether it occurs more than once.
 */
function find(s: ViewState, no: number): number {
  const r = readerAt(s.buf, s.start, s.end);
  let found = -1;
  while (r.pos < r.end) {
    const at = r.pos;
    const tag = r.tag();
    if (tag >>> 3 === no) {
      if (found !== -1) s.many |= manyBit(no);
      found = at;
    }
    r.skip(tag, s.depth);
  }
  return found;
}

/** A reader at the value of field `no` whose tag is at `at`; WRONG_WIRE_TYPE unless the tag is `tag`. */
function valueAt(s: ViewState, at: number, tag: number): Reader {
  const r = readerAt(s.buf, at, s.end);
  const t = r.tag();
  if (t !== tag) r.wrongWireType(t, `wire type ${tag & 7}`);
  return r;
}

/**
 * The base of generated lazy views. Construction stores only where the message lies. Getters of
 * a small message scan its bytes for their field; in a larger one the first getter call scans
 * the top-level fields once, recording where the last occurrence of each known field starts, and
 * each getter then decodes just its own field from there.
 */
export abstract class MessageView {
  // Both are set by the generated subclass (its static `of`), not here: a store in this shared
  // constructor would see every view class, go megamorphic and cost ~10x (see ViewState).
  /** Where the message lies and what scanning it found. */
  declare protected $s: ViewState;
  /** Nesting depth of the message (0 for the outermost). */
  declare protected $depth: number;

  /** Code generated before the subclasses set `$s` themselves passes the message here. */
  constructor(buf?: Uint8Array, start = 0, end = 0, depth = 0) {
    if (buf !== undefined) {
      this.$s = viewState(buf, start, end, depth);
      this.$depth = depth;
    }
  }

  /** The highest field number the message declares (sizes the scan table). */
  protected abstract get $maxField(): number;

  /** Tag position of the last occurrence of field `no`, or -1. */
  private $lookup(s: ViewState, no: number): number {
    if (s.end - s.start <= SCAN_LIMIT) return find(s, no);
    const last = s.last ?? scan(s, this.$maxField);
    return no < last.length ? last[no]! : (s.far?.get(no) ?? -1);
  }

  /**
   * A reader positioned at the value of the last occurrence of field `no`, or undefined when the
   * field is absent. Raises WRONG_WIRE_TYPE if that occurrence does not have tag `tag`.
   */
  protected $field(no: number, tag: number): Reader | undefined {
    const s = this.$s;
    const at = this.$lookup(s, no);
    return at === -1 ? undefined : valueAt(s, at, tag);
  }

  /** Position of the last occurrence of field `no` (-1 when absent), for oneof resolution. */
  protected $position(no: number): number {
    return this.$lookup(this.$s, no);
  }

  /**
   * Calls `each` with a reader at the value of every occurrence of field `no`, in order, with its
   * tag and the position of the tag. `each` must consume the value.
   */
  protected $each(no: number, each: (r: Reader, tag: number, pos: number) => void): void {
    const s = this.$s;
    if (this.$lookup(s, no) === -1) return;
    const { buf, end, depth } = s;
    let pos = s.start;
    while (pos < end) {
      const r = readerAt(buf, pos, end);
      const tag = r.tag();
      if (tag >>> 3 === no) {
        each(r, tag, pos); // consumes the value
        pos = r.pos;
      } else {
        pos = r.skip(tag, depth);
      }
    }
  }

  /**
   * The view of a message field: a view of its bytes when it occurs once, or of the merged
   * message (decoded, merged, re-encoded) when it occurs several times, as protobuf requires.
   * Occurrences whose tag lies before `after` are left out of the merge: a oneof member is
   * merged only with the occurrences since another member of its oneof last cleared it.
   */
  protected $message<V>(no: number, tag: number, codec: AnyMessageCodec, after = -1): V | undefined {
    const s = this.$s;
    const at = this.$lookup(s, no);
    if (at === -1) return undefined;
    const r = valueAt(s, at, tag);
    const depth = s.depth;
    if ((s.many & manyBit(no)) === 0) {
      const n = r.length();
      if (depth + 1 > r.depthLimit) r.checkDepth(depth + 1);
      return codec.$view(s.buf, r.pos, r.pos + n, depth + 1) as V;
    }
    let merged: object | undefined;
    this.$each(no, (rr, t, pos) => {
      if (t !== tag) rr.wrongWireType(t, `wire type ${tag & 7}`);
      const saved = rr.limit();
      if (pos >= after) merged = codec.$read(new Reader(rr.buf, rr.pos, rr.end, rr.depthLimit), depth + 1, merged);
      rr.pos = rr.end;
      rr.end = saved;
    });
    const bytes = codec.encode(merged);
    return codec.$view(bytes, 0, bytes.length, depth + 1) as V;
  }
}

/**
 * Sets `map[key] = value`, defining `__proto__` as an own property instead of changing the
 * object's prototype when a peer sends that key.
 */
export function setEntry<V>(map: Record<string, V>, key: string, value: V): void {
  if (key === "__proto__") {
    Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    map[key] = value;
  }
}
