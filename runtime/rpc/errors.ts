/**
 * Status codes of a call: the gRPC status set, so they map one to one onto gRPC and read the same
 * on every transport.
 */
export enum Code {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** Options of an RpcError beyond its code and message. */
export interface RpcErrorOptions {
  /** Response headers that came with the error (metainfo, served region, ...). */
  headers?: Record<string, string>;
  /** The underlying error, kept for logs; never sent over the wire. */
  cause?: unknown;
  /**
   * True when the request certainly never reached a handler (no connection, refused before
   * sending, or refused by the server before any handler ran: shed under load, expired in its
   * queue), so even a non-idempotent call may be retried.
   */
  notSent?: boolean;
}

/**
 * Sets `Error.stackTraceLimit` to 0 for the Error made next; false when it cannot be set (frozen
 * intrinsics, `node --frozen-intrinsics` or a lockdown): that Error then captures its frames.
 */
function lowerStackTraceLimit(): boolean {
  try {
    Error.stackTraceLimit = 0;
    return true;
  } catch {
    return false;
  }
}

/**
 * The error every Meridian call fails with: a status code from the gRPC set and a message. What
 * a server's handler throws reaches the client as an RpcError; anything that is not an RpcError
 * (or BizError) becomes INTERNAL without its message or stack.
 *
 * An RpcError is a call's status, not a fault in the code that makes it: it captures no stack
 * frames (its `stack` is its first line, "RpcError: message"). Most are made where nothing
 * useful is on the stack (a peer's answer read off a socket, a deadline's timer, a refusal by
 * admission control), and capturing one cost more than anything else a refused call costs
 * (6-9 µs an error on a 2 GHz core): under overload, servers refuse and clients receive
 * thousands a second. The `cause` keeps its own stack; `Error.captureStackTrace(err)` gives one
 * an RpcError where wanted.
 */
export class RpcError extends Error {
  override readonly name: string = "RpcError";
  readonly headers: Record<string, string>;
  readonly notSent: boolean;

  constructor(
    readonly code: Code,
    message: string,
    options: RpcErrorOptions = {},
  ) {
    // Everything that could throw is read before the limit is lowered, so it is always restored.
    const text = message === undefined ? undefined : String(message);
    const cause = options.cause;
    const limit = Error.stackTraceLimit;
    const lowered = lowerStackTraceLimit();
    super(text, cause === undefined ? undefined : { cause });
    if (lowered) Error.stackTraceLimit = limit;
    this.headers = options.headers ?? {};
    this.notSent = options.notSent ?? false;
  }

  /** The code's name, for example "DEADLINE_EXCEEDED". */
  get codeName(): string {
    return Code[this.code] ?? `CODE_${this.code}`;
  }

  override toString(): string {
    return `RpcError [${this.codeName}]: ${this.message}`;
  }

  /** Wraps any thrown value as an RpcError, keeping RpcErrors as they are. */
  static from(e: unknown, fallback: Code = Code.UNKNOWN): RpcError {
    if (e instanceof RpcError) return e;
    if (e instanceof Error && e.name === "AbortError") return new RpcError(Code.CANCELLED, "call cancelled", { cause: e });
    return new RpcError(fallback, e instanceof Error ? e.message : String(e), { cause: e });
  }
}

/**
 * A business error: the call itself worked, the service said no (Kitex's BizStatusError). A
 * handler throws it; it travels in the response headers `biz-status`, `biz-message` and
 * `biz-extra` (JSON) and the client rejects with an equal BizError. Its RpcError code is UNKNOWN,
 * so it is never retried, and circuit breakers count it as a success of the transport.
 */
export class BizError extends RpcError {
  override readonly name: string = "BizError";
  readonly extra: Readonly<Record<string, string>>;

  constructor(
    readonly bizCode: number,
    readonly bizMessage: string,
    extra: Readonly<Record<string, string>> = {},
    options: RpcErrorOptions = {},
  ) {
    super(Code.UNKNOWN, `biz error ${bizCode}: ${bizMessage}`, options);
    this.extra = extra;
  }
}

/** Why a configuration was refused. */
export type ConfigErrorCode = "CONFLICTING_OPTIONS" | "INVALID_OPTION" | "ALREADY_LISTENING";

/**
 * An invalid client or server configuration, raised by createClient / createServer before any
 * call is made. The message names the option and what to change.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";

  constructor(
    readonly code: ConfigErrorCode,
    message: string,
  ) {
    super(message);
  }
}
