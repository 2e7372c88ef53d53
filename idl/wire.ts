import type { ScalarType } from "./model.js";

/**
 * Protobuf's wire format as the model sees it: the wire types, how a tag is made of a field
 * number and a wire type, and the wire type of each scalar. The reader and writer of
 * runtime/codec implement the encodings; this is what the emitter needs to know to call them.
 */

/** Wire types. */
export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

/** A tag as the number the reader returns (unsigned; field numbers up to 2^29 - 1). */
export function tagOf(no: number, wire: number): number {
  return no * 8 + wire;
}

const SCALAR_WIRE: Record<ScalarType, number> = {
  double: WIRE_FIXED64,
  float: WIRE_FIXED32,
  int64: WIRE_VARINT,
  uint64: WIRE_VARINT,
  int32: WIRE_VARINT,
  fixed64: WIRE_FIXED64,
  fixed32: WIRE_FIXED32,
  bool: WIRE_VARINT,
  string: WIRE_LEN,
  bytes: WIRE_LEN,
  uint32: WIRE_VARINT,
  sfixed32: WIRE_FIXED32,
  sfixed64: WIRE_FIXED64,
  sint32: WIRE_VARINT,
  sint64: WIRE_VARINT,
};

/** The wire type of a scalar. */
export function scalarWire(t: ScalarType): number {
  return SCALAR_WIRE[t];
}

/** Whether repeated values of a scalar may be packed (all but strings and bytes). */
export function isPackable(t: ScalarType): boolean {
  return t !== "string" && t !== "bytes";
}
