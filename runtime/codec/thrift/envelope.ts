/**
 * What surrounds a Thrift struct on the wire, for transports that carry Thrift: the message
 * envelope (function name, message type, sequence id) and Apache's TApplicationException, the
 * struct of an EXCEPTION message (1: string message, 2: i32 type).
 */
import { Reader } from "../reader.js";
import type { PayloadProtocol } from "../types.js";
import type { Writer } from "../writer.js";
import { payloadReader, payloadWriter, TType, type FieldHeader, type MessageType } from "./protocol.js";
import { skipValue } from "./struct.js";

/** A Thrift message envelope as read from a payload. */
export interface ThriftEnvelope {
  readonly name: string;
  /** TMessageType: 1 call, 2 reply, 3 exception, 4 oneway. */
  readonly type: MessageType;
  /** The sequence id, unsigned. */
  readonly seqId: number;
  /** Where the struct that follows starts. */
  readonly bodyStart: number;
}

/** TApplicationException's types, as Apache numbers them. */
export const TApplicationError = {
  Unknown: 0,
  UnknownMethod: 1,
  InvalidMessageType: 2,
  WrongMethodName: 3,
  BadSequenceId: 4,
  MissingResult: 5,
  InternalError: 6,
  ProtocolError: 7,
} as const;

/** Reads the envelope at `buf[start, end)`. Throws DecodeError when it is not one. */
export function readThriftEnvelope(buf: Uint8Array, start: number, end: number, protocol: PayloadProtocol): ThriftEnvelope {
  const tr = payloadReader(protocol, new Reader(buf, start, end));
  const h = tr.messageBegin();
  return { name: h.name, type: h.type, seqId: h.seqId >>> 0, bodyStart: tr.r.pos };
}

/** Appends an envelope. */
export function writeThriftEnvelope(w: Writer, protocol: PayloadProtocol, type: MessageType, name: string, seqId: number): void {
  payloadWriter(protocol, w).messageBegin({ name, type, seqId: seqId | 0 });
}

/** Appends a TApplicationException struct. */
export function writeApplicationException(w: Writer, protocol: PayloadProtocol, type: number, message: string): void {
  const tw = payloadWriter(protocol, w);
  tw.structBegin();
  tw.fieldBegin(TType.STRING, 1);
  tw.string(message);
  tw.fieldBegin(TType.I32, 2);
  tw.i32(type);
  tw.fieldStop();
  tw.structEnd();
}

/**
 * Reads a TApplicationException struct at `buf[start, end)`; unknown fields are skipped. Bytes
 * that are not one give type Unknown and an empty message (the caller says what it knows).
 */
export function readApplicationException(buf: Uint8Array, start: number, end: number, protocol: PayloadProtocol): { type: number; message: string } {
  let type: number = TApplicationError.Unknown;
  let message = "";
  try {
    const tr = payloadReader(protocol, new Reader(buf, start, end));
    const h: FieldHeader = { type: TType.STOP, id: 0 };
    tr.structBegin();
    for (;;) {
      tr.fieldBegin(h);
      if (h.type === TType.STOP) break;
      if (h.id === 1 && h.type === TType.STRING) message = tr.string();
      else if (h.id === 2 && h.type === TType.I32) type = tr.i32();
      else skipValue(tr, h.type, 1, true);
    }
  } catch {
    return { type: TApplicationError.Unknown, message: "" };
  }
  return { type, message };
}
