import type { SourceLocation } from "./model.js";

/**
 * An error in the IDL: a .proto file that does not parse, names a type that does not exist,
 * breaks a protobuf rule. Its message starts with `file:line:column:` so editors and terminals
 * can jump to it.
 */
export class IdlError extends Error {
  override readonly name = "IdlError";
  readonly code = "INVALID_IDL";

  constructor(
    /** The file the error is in (as imports name it). */
    readonly file: string,
    /** 1-based line; 0 when the error is about the file as a whole (then the message is `file: ...`). */
    readonly line: number,
    /** 1-based column; 0 when unknown. */
    readonly column: number,
    /** What is wrong, without the location prefix. */
    readonly detail: string,
  ) {
    super(line === 0 ? `${file}: ${detail}` : `${file}:${line}:${column}: ${detail}`);
  }

  /** An error at `loc`, or at the start of `file` when the location is not known. */
  static at(loc: SourceLocation | undefined, file: string, detail: string): IdlError {
    return loc === undefined ? new IdlError(file, 1, 1, detail) : new IdlError(loc.file, loc.line, loc.column, detail);
  }
}
