import type { Reader } from "./reader.js";
import type { Writer } from "./writer.js";

/**
 * The encoding of a payload, when a transport can carry more than one: a Thrift struct goes as
 * Thrift Binary (what Kitex sends by default, and what a codec writes when not told) or Thrift
 * Compact. Protobuf codecs have one encoding and ignore it.
 */
export type PayloadProtocol = "thrift-binary" | "thrift-compact";

/**
 * The codec of one message type, exported by generated code under the message's own name
 * (`export const Video: MessageCodec<Video, VideoView>`).
 *
 * The `$`-prefixed members are the contract between generated files (a message encodes its
 * fields of another file's message types through them); applications use the others.
 */
export interface MessageCodec<T extends object, V = unknown> {
  /** Fully qualified protobuf name, for example `feed.Video`. */
  readonly typeName: string;
  /** A full message with every field at its default, overlaid with `partial`. */
  create(partial?: Partial<T>): T;
  /** Encodes into bytes that are owned by the caller: a slab view that is never rewritten. */
  encode(msg: T): Uint8Array;
  /**
   * Appends the encoding of `msg` to `writer` (what transports use to build frames). `protocol`
   * is what the transport's peer speaks, for codecs with more than one encoding (Thrift Binary or
   * Compact); codecs with one ignore it.
   */
  encodeTo(msg: T, writer: Writer, protocol?: PayloadProtocol): void;
  /** Decodes eagerly. Bytes fields are views into `bytes`. Raises DecodeError on bad input. */
  decode(bytes: Uint8Array, protocol?: PayloadProtocol): T;
  /**
   * A lazy, zero-copy view: each getter decodes its field when first read. Bad input raises
   * DecodeError from the getter that meets it.
   */
  view(bytes: Uint8Array): V;
  /** Writes the fields of `msg` (no tag, no length) to `w`. */
  $write(msg: T, w: Writer): void;
  /**
   * Reads fields from `r` until `r.end` into `into` (merging, as protobuf requires for a message
   * field seen twice) or into a fresh message, at nesting `depth`. With `endTag` (a group), reads
   * until that END_GROUP tag instead, and raises DecodeError if the data ends first.
   */
  $read(r: Reader, depth: number, into?: T, endTag?: number): T;
  /** Wraps a view around `buf[start, end)` at nesting `depth`. */
  $view(buf: Uint8Array, start: number, end: number, depth: number): V;
}

/** A protobuf enum as generated code describes it: its name and values. */
export interface EnumInfo {
  readonly typeName: string;
  /** Whether unknown numbers are kept (proto3 open enums) or go to unknown fields (proto2). */
  readonly closed: boolean;
  readonly values: Readonly<Record<string, number>>;
}

/** Unknown fields kept by the decoder, raw (tag included), re-emitted after the known fields. */
export type UnknownFields = Uint8Array[];

/** Any message codec, whatever its message type. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyMessageCodec = MessageCodec<any, any>;

/** The message type of a codec. */
export type MessageOf<C> = C extends MessageCodec<infer T, unknown> ? T : never;
