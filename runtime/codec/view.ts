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
 * The base of generated lazy views. Construction stores only where the message lies. The first
 * getter call scans the top-level fields once, recording where the last occurrence of each known
 * field starts; each getter then decodes just its own field from there.
 */
export abstract class MessageView {
  /** Tag positions of the last occurrence of each field number (-1: absent), after the scan. */
  private $last: Int32Array | undefined;
  /** The same for declared field numbers past DENSE_FIELDS, when any occurred. */
  private $far: Map<number, number> | undefined;
  /** Fields seen more than once (bit per field number up to 31; larger numbers always rescan). */
  private $many = 0;

  constructor(
    protected readonly $buf: Uint8Array,
    protected readonly $start: number,
    protected readonly $end: number,
    protected readonly $depth: number,
  ) {}

  /** The highest field number the message declares (sizes the scan table). */
  protected abstract get $maxField(): number;

  private $scan(): Int32Array {
    const max = this.$maxField;
    const last = new Int32Array(Math.min(max, DENSE_FIELDS) + 1).fill(-1);
    const r = readerAt(this.$buf, this.$start, this.$end);
    let many = 0;
    while (r.pos < r.end) {
      const at = r.pos;
      const tag = r.tag();
      const no = tag >>> 3;
      if (no < last.length) {
        if (last[no] !== -1) many |= no < 31 ? 1 << no : 0x80000000;
        last[no] = at;
      } else if (no <= max) {
        const far = (this.$far ??= new Map());
        if (far.has(no)) many |= 0x80000000;
        far.set(no, at);
      }
      r.skip(tag, this.$depth);
    }
    this.$many = many;
    return (this.$last = last);
  }

  /** Tag position of the last occurrence of field `no`, or -1. */
  private $lookup(no: number): number {
    const last = this.$last ?? this.$scan();
    return no < last.length ? last[no]! : (this.$far?.get(no) ?? -1);
  }

  /**
   * A reader positioned at the value of the last occurrence of field `no`, or undefined when the
   * field is absent. Raises WRONG_WIRE_TYPE if that occurrence does not have tag `tag`.
   */
  protected $field(no: number, tag: number): Reader | undefined {
    const at = this.$lookup(no);
    if (at === -1) return undefined;
    const r = readerAt(this.$buf, at, this.$end);
    const t = r.tag();
    if (t !== tag) r.wrongWireType(t, `wire type ${tag & 7}`);
    return r;
  }

  /** Position of the last occurrence of field `no` (-1 when absent), for oneof resolution. */
  protected $position(no: number): number {
    return this.$lookup(no);
  }

  /** Calls `each` with a reader at the tag of every occurrence of field `no`, in order. */
  protected $each(no: number, each: (r: Reader, tag: number) => void): void {
    if (this.$lookup(no) === -1) return;
    const buf = this.$buf;
    const end = this.$end;
    let pos = this.$start;
    while (pos < end) {
      const r = readerAt(buf, pos, end);
      const tag = r.tag();
      if (tag >>> 3 === no) {
        each(r, tag); // consumes the value
        pos = r.pos;
      } else {
        pos = r.skip(tag, this.$depth);
      }
    }
  }

  /**
   * The view of a message field: a view of its bytes when it occurs once, or of the merged
   * message (decoded, merged, re-encoded) when it occurs several times, as protobuf requires.
   */
  protected $message<V>(no: number, tag: number, codec: AnyMessageCodec): V | undefined {
    const r = this.$field(no, tag);
    if (r === undefined) return undefined;
    const many = no < 31 ? (this.$many >>> no) & 1 : this.$many >>> 31;
    if (!many) {
      const n = r.length();
      if (this.$depth + 1 > r.depthLimit) r.checkDepth(this.$depth + 1);
      return codec.$view(this.$buf, r.pos, r.pos + n, this.$depth + 1) as V;
    }
    let merged: object | undefined;
    this.$each(no, (rr, t) => {
      if (t !== tag) rr.wrongWireType(t, `wire type ${tag & 7}`);
      const saved = rr.limit();
      const buf = rr.buf;
      const pos = rr.pos;
      const end = rr.end;
      const inner = new Reader(buf, pos, end, rr.depthLimit);
      merged = codec.$read(inner, this.$depth + 1, merged);
      rr.pos = end;
      rr.end = saved;
    });
    const bytes = codec.encode(merged);
    return codec.$view(bytes, 0, bytes.length, this.$depth + 1) as V;
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
