/**
 * Why a decode failed. Every kind of bad input maps to exactly one code, so callers can branch on
 * it without parsing messages.
 */
export type DecodeErrorCode =
  | "TRUNCATED"
  | "VARINT_TOO_LONG"
  | "INVALID_TAG"
  | "INVALID_WIRE_TYPE"
  | "WRONG_WIRE_TYPE"
  | "LENGTH_OUT_OF_RANGE"
  | "INVALID_GROUP"
  | "DEPTH_EXCEEDED"
  | "INVALID_UTF8"
  | "MISSING_REQUIRED";

/**
 * A decode failure: the bytes are not a valid encoding of the expected message. Carries the byte
 * offset where decoding stopped and the field path from the outermost message (for example
 * `feed.FeedResponse.items[3].author.name`), filled in as the error unwinds through the
 * generated decoders.
 */
export class DecodeError extends Error {
  override readonly name = "DecodeError";
  /** Field names from the outermost message down to the field being read when it failed. */
  readonly path: string[] = [];
  /** The message type whose decoder was running when it failed (outermost once unwound). */
  typeName = "";

  constructor(
    readonly code: DecodeErrorCode,
    readonly offset: number,
    readonly detail: string,
  ) {
    super(`${detail} at byte ${offset}`);
  }

  /** Called by generated decoders while unwinding: records the enclosing field and type. */
  within(typeName: string, field: string | undefined): this {
    if (field !== undefined) this.path.unshift(field);
    this.typeName = typeName;
    this.message = `${this.detail} at byte ${this.offset} in ${this.fieldPath()}`;
    return this;
  }

  /** The full path as one string: type name, then fields joined by dots. */
  fieldPath(): string {
    let s = this.typeName;
    for (const p of this.path) s += p.startsWith("[") ? p : `.${p}`;
    return s;
  }
}

/**
 * An encode failure: a message value that protobuf cannot represent (an int64 out of range, a
 * non-integer in an integer field, a value of the wrong JavaScript type).
 */
export class EncodeError extends Error {
  override readonly name = "EncodeError";
  constructor(message: string) {
    super(message);
  }
}
