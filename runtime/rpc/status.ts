import { BizError, Code, RpcError } from "./errors.js";
import { copyHeaders, HeaderKeys, type Headers } from "./transport.js";

/**
 * Longest `rpc-message` and `biz-message` a reply carries, in UTF-16 units. Longer ones are cut
 * (with a note of how much was left out), so that an error quoting a peer's input, or a handler's
 * runaway message, can never make an error reply larger than a frame or a header block.
 */
export const MAX_STATUS_MESSAGE = 4096;

/**
 * `text` cut to at most `max` UTF-16 units (never inside a surrogate pair), with a note of how many
 * were left out: how anything a peer sent is quoted back in an error message.
 */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  // Room for the note at its longest (the count never has more digits than text.length).
  let end = Math.max(0, max - `... (${text.length} more characters)`.length);
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return `${text.slice(0, end)}... (${text.length - end} more characters)`;
}

/**
 * Writes an error into response headers: `rpc-status` and `rpc-message`, and for a BizError also
 * `biz-status`, `biz-message` and `biz-extra` (JSON). What servers send; transports copy the
 * headers onto the wire unchanged. Messages are cut to {@link MAX_STATUS_MESSAGE}.
 */
export function statusToHeaders(err: RpcError, headers: Headers): Headers {
  headers[HeaderKeys.status] = String(err.code);
  headers[HeaderKeys.message] = clipText(err.message, MAX_STATUS_MESSAGE);
  if (err instanceof BizError) {
    headers[HeaderKeys.bizStatus] = String(err.bizCode);
    headers[HeaderKeys.bizMessage] = clipText(err.bizMessage, MAX_STATUS_MESSAGE);
    if (Object.keys(err.extra).length > 0) headers[HeaderKeys.bizExtra] = JSON.stringify(err.extra);
  }
  return headers;
}

/** The headers that carry `err` to a peer: a copy of its own headers, its status written in. */
export function statusHeaders(err: RpcError): Headers {
  return statusToHeaders(err, copyHeaders(err.headers));
}

/**
 * The reply headers for an error that escaped a dispatcher (which should not happen) or a reply
 * that cannot go out as it is: an RpcError's status, message and headers; anything else as
 * INTERNAL "internal error", its text kept from the peer. Never throws: what every server
 * transport answers with when it has nothing better.
 */
export function errorHeaders(e: unknown): Headers {
  const err = e instanceof RpcError ? e : new RpcError(Code.INTERNAL, "internal error");
  try {
    return statusHeaders(err);
  } catch {
    return { [HeaderKeys.status]: String(Code.INTERNAL), [HeaderKeys.message]: "internal error" };
  }
}

/**
 * Reads the error a response carries, if any: a BizError when `biz-status` is present, an
 * RpcError when `rpc-status` is present and not 0 (`notSent` when `rpc-refused` is there too),
 * otherwise undefined. What client transports call on every response before decoding its
 * payload; the error keeps the response headers.
 */
export function statusFromHeaders(headers: Headers): RpcError | undefined {
  const biz = headers[HeaderKeys.bizStatus];
  if (biz !== undefined) {
    const extra = parseExtra(headers[HeaderKeys.bizExtra]);
    return new BizError(Number(biz) || 0, headers[HeaderKeys.bizMessage] ?? "", extra, { headers });
  }
  const status = headers[HeaderKeys.status];
  if (status === undefined || status === "0") return undefined;
  const n = Number(status);
  const code = Number.isInteger(n) && Code[n] !== undefined ? (n as Code) : Code.UNKNOWN;
  // A call the server refused before any handler saw it was as good as never sent.
  return new RpcError(code, headers[HeaderKeys.message] ?? "", { headers, notSent: headers[HeaderKeys.refused] !== undefined });
}

/** Parses `biz-extra`, keeping only string values; anything malformed reads as no extra. */
function parseExtra(json: string | undefined): Record<string, string> {
  if (json === undefined) return {};
  try {
    const v: unknown = JSON.parse(json);
    if (typeof v !== "object" || v === null || Array.isArray(v)) return {};
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) if (typeof x === "string" && k !== "__proto__") out[k] = x;
    return out;
  } catch {
    return {};
  }
}
