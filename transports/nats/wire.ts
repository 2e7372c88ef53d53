import { MsgHdrsImpl, type Msg, type MsgHdrs } from "@nats-io/transport-node";
import type { Headers } from "../../runtime/api.js";

/**
 * Header keys of Meridian's NATS protocol. They travel in the NATS header block beside the call's
 * own headers and are taken out before a dispatcher or a caller sees the headers.
 */
export const NatsKey = {
  /** Request: the caller's remaining budget in ms (rounded up); the server turns it back into a deadline. */
  timeout: "rpc-timeout",
  /** Streaming: what a control message is (see StreamFrame); absent on data messages and on unary calls. */
  frame: "rpc-frame",
  /** Streaming data: 1-based sequence number per direction, to detect a lost message. */
  seq: "rpc-seq",
  /** Streaming: how many more data messages the receiver lets the sender send (credit). */
  credit: "rpc-credit",
  /** Wire keys whose key and value are percent-encoded, comma-separated (see encodeHeaders). */
  escaped: "rpc-escaped",
} as const;

/** The control messages of a stream (values of `rpc-frame`); docs/nats.md describes the protocol. */
export const StreamFrame = {
  /** Client to the method subject: opens a stream; carries the call's headers and the first response credit. */
  open: "open",
  /** Server to the client: the stream is taken; its reply subject is where the client sends from now on. */
  accept: "accept",
  /** Server to the client: response headers sent ahead of any message. */
  headers: "headers",
  /** Either way: more credit only. */
  credit: "credit",
  /** Client: half-close (no more requests). Server: the call is over; the headers are its trailers. */
  end: "end",
  /** Either way: the call is cancelled; the receiver stops at once. */
  cancel: "cancel",
  /** Either way: nothing else was sent for a while; keeps the stream alive. */
  ping: "ping",
} as const;
export type StreamFrame = (typeof StreamFrame)[keyof typeof StreamFrame];

const PROTOCOL_KEYS = new Set<string>(Object.values(NatsKey));

/**
 * An already encoded NATS header block. nats.js asks the headers of a publish only for their
 * bytes (`encode()`), so Meridian writes the block itself, in one pass and without nats.js's
 * per-key validation; the MsgHdrs methods of this object see no entries.
 */
class EncodedHeaders extends MsgHdrsImpl {
  constructor(readonly block: Uint8Array) {
    super();
  }

  override encode(): Uint8Array {
    return this.block;
  }
}

/**
 * A key percent-encoded so that it differs from the key itself (a protocol key a caller uses as a
 * header name has nothing to encode: its first character is encoded anyway).
 */
function escapeKey(key: string): string {
  if (key === "") return "%"; // not a valid percent-encoding of anything else
  const k = encodeURIComponent(key);
  return k === key ? `%${key.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}${key.slice(1)}` : k;
}

/** True when NATS carries `key` as it is: printable ASCII (33-126) except the colon. */
function plainKey(key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 33 || c > 126 || c === 58) return false;
  }
  return key.length > 0;
}

/** True when NATS carries `value` as it is: no CR or LF, nothing the receiver's trim() would strip. */
function plainValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 10 || c === 13) return false;
  }
  return value.length === 0 || value.trim().length === value.length;
}

/**
 * Encodes headers as a NATS header block (`NATS/1.0\r\nkey: value\r\n...\r\n`, UTF-8) for
 * `publish`: `headers` first, then the protocol headers in `extra`. Keys keep their
 * case. A key or value NATS cannot carry as it is (non-ASCII or control characters in the key; CR,
 * LF or surrounding white space in the value), and a caller's header named like a protocol key, is
 * sent percent-encoded, both key and value, and its wire key listed in `rpc-escaped`, so every
 * string header survives the trip exactly.
 */
export function encodeHeaders(headers: Headers | undefined, extra?: Readonly<Record<string, string>>): EncodedHeaders {
  let s = "NATS/1.0\r\n";
  let escaped: string | undefined;
  if (headers !== undefined) {
    for (const key in headers) {
      const value = headers[key]!;
      if (plainKey(key) && plainValue(value) && !PROTOCOL_KEYS.has(key)) {
        s += `${key}: ${value}\r\n`;
      } else {
        const k = escapeKey(key);
        s += `${k}: ${encodeURIComponent(value)}\r\n`;
        escaped = escaped === undefined ? k : `${escaped},${k}`;
      }
    }
  }
  if (extra !== undefined) for (const key in extra) s += `${key}: ${extra[key]!}\r\n`;
  if (escaped !== undefined) s += `${NatsKey.escaped}: ${escaped}\r\n`;
  return new EncodedHeaders(Buffer.from(`${s}\r\n`));
}

/** The byte length of an encoded header block. */
export function headerBytes(h: MsgHdrs): number {
  return (h as EncodedHeaders).block.length;
}

/** What a received message carries in its header block, split into the call's headers and the protocol's. */
export interface ReceivedHeaders {
  /** The call's headers, protocol keys removed, escaped entries decoded. */
  readonly headers: Headers;
  /** NATS status code of the message (503 = no responders), 0 when none. */
  readonly code: number;
  readonly timeout: string | undefined;
  readonly frame: string | undefined;
  readonly seq: string | undefined;
  readonly credit: string | undefined;
}

const NONE: ReceivedHeaders = {
  headers: {},
  code: 0,
  timeout: undefined,
  frame: undefined,
  seq: undefined,
  credit: undefined,
};

/**
 * Reads a message's header block: the call's headers (the first value of each key, keys as sent)
 * and the protocol headers. Throws when nats.js cannot parse the block (a key with characters no
 * Meridian peer sends).
 */
export function decodeHeaders(msg: Msg): ReceivedHeaders {
  const h = msg.headers;
  if (h === undefined) return { ...NONE, headers: {} };
  const headers: Headers = {};
  let timeout: string | undefined;
  let frame: string | undefined;
  let seq: string | undefined;
  let credit: string | undefined;
  let escaped: string | undefined;
  for (const [key, values] of h) {
    const value = values[0] ?? "";
    switch (key) {
      case NatsKey.timeout:
        timeout = value;
        break;
      case NatsKey.frame:
        frame = value;
        break;
      case NatsKey.seq:
        seq = value;
        break;
      case NatsKey.credit:
        credit = value;
        break;
      case NatsKey.escaped:
        escaped = value;
        break;
      default:
        headers[key] = value;
    }
  }
  if (escaped !== undefined) {
    for (const k of escaped.split(",")) {
      const v = headers[k];
      if (v === undefined) continue;
      delete headers[k];
      try {
        headers[k === "%" ? "" : decodeURIComponent(k)] = decodeURIComponent(v);
      } catch {
        headers[k] = v; // not ours after all: keep it as it came
      }
    }
  }
  return { headers, code: h.code, timeout, frame, seq, credit };
}

/** True for NATS's "no responders" status message (503, empty body): nobody subscribes to the subject. */
export function isNoResponders(msg: Msg, code: number): boolean {
  return code === 503 && msg.data.length === 0;
}
