import { Metadata, type StatusObject } from "@grpc/grpc-js";
import { BizError, Code, RpcError, MetainfoPrefix, HeaderKeys, type Headers } from "../../runtime/api.js";
import { statusFromHeaders } from "../../runtime/transport.js";

/**
 * How Meridian's string headers travel as gRPC metadata, and how statuses map. See docs/grpc.md.
 *
 * - Keys: gRPC metadata keys are lower-case ASCII (`0-9 a-z _ . -`); header names are
 *   lower-cased on the way out. Metainfo keeps working because the runtime matches its prefixes
 *   in any case; a metainfo key written in Kitex's convention (upper-case CGI style, `TRACE_ID`)
 *   travels the way Kitex's gRPC transport sends it, `rpc-persist-trace-id`, and comes back as
 *   `RPC_PERSIST_TRACE_ID`; any other metainfo key travels lower-cased (`rpc_persist_user`).
 * - Values: printable ASCII goes as is; anything else (UTF-8 text) goes as binary metadata under
 *   `<key>-bin` (base64 on the wire, as gRPC requires) and comes back as text under `<key>`.
 * - Keys owned by gRPC or HTTP/2 (`grpc-*`, pseudo-headers, content-type, te, user-agent, ...)
 *   are neither sent from headers nor reported as headers.
 */

/** Metadata keys that belong to HTTP/2 or gRPC itself (besides `grpc-*` and `:` pseudo-headers). */
const TRANSPORT_KEYS = new Set([
  "content-type",
  "te",
  "user-agent",
  "host",
  "date",
  "accept-encoding",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
]);

const LEGAL_KEY = /^[0-9a-z_.-]+$/;
const PRINTABLE = /^[ -~]*$/;
/** A metainfo key in Kitex's CGI convention: upper-case letters, digits and underscores. */
const CGI_KEY = /^[A-Z0-9_]+$/;

/** Kitex's HTTP/2 spelling of each metainfo prefix (bytedance/gopkg metainfo: HTTPPrefix*). */
const KITEX_PREFIXES: readonly (readonly [http: string, meridian: string])[] = [
  ["rpc-transit-", MetainfoPrefix.transient],
  ["rpc-persist-", MetainfoPrefix.persistent],
  ["rpc-backward-", MetainfoPrefix.backward],
];

/** True for metadata keys that carry gRPC or HTTP/2 machinery rather than a header of the call. */
export function isTransportKey(key: string): boolean {
  return key.startsWith("grpc-") || key.charCodeAt(0) === 58 /* ":" */ || TRANSPORT_KEYS.has(key);
}

/** The metadata key of a header name: lower-cased; Kitex-style metainfo in Kitex's HTTP/2 form. */
export function metadataKey(name: string): string {
  // Cheap filter: every metainfo prefix starts with "RPC_" in some case.
  if (name.length > 12 && name.charCodeAt(3) === 95 /* "_" */ && (name.charCodeAt(0) | 32) === 114 /* "r" */) {
    for (const [http, prefix] of KITEX_PREFIXES) {
      if (name.length > prefix.length && name.slice(0, prefix.length).toUpperCase() === prefix) {
        const key = name.slice(prefix.length);
        if (CGI_KEY.test(key)) return http + key.toLowerCase().replaceAll("_", "-");
        break;
      }
    }
  }
  return name.toLowerCase();
}

/** The header name of a metadata key: Kitex's `rpc-persist-a-b` becomes `RPC_PERSIST_A_B`. */
export function headerName(key: string): string {
  if (key.length > 12 && key.charCodeAt(3) === 45 /* "-" */ && key.startsWith("rpc-")) {
    for (const [http, prefix] of KITEX_PREFIXES) {
      if (key.length > http.length && key.startsWith(http)) return prefix + key.slice(http.length).toUpperCase().replaceAll("-", "_");
    }
  }
  return key;
}

/**
 * Writes headers into gRPC metadata (see the rules above). Throws an INVALID_ARGUMENT RpcError
 * naming the header when a name cannot be a metadata key (characters outside `0-9 a-z _ . -`
 * once lower-cased). `skip`, when given, leaves out the headers it returns true for.
 */
export function toMetadata(headers: Headers, md: Metadata = new Metadata(), skip?: (name: string) => boolean): Metadata {
  for (const name in headers) {
    if (skip?.(name)) continue;
    const value = headers[name]!;
    const key = metadataKey(name);
    if (isTransportKey(key)) continue;
    if (!LEGAL_KEY.test(key)) {
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        `header ${JSON.stringify(name)} cannot travel as gRPC metadata: names may only hold letters, digits, "_", "." and "-"`,
      );
    }
    if (key.endsWith("-bin")) md.set(key, Buffer.from(value, "utf8"));
    else if (PRINTABLE.test(value)) md.set(key, value);
    else md.set(`${key}-bin`, Buffer.from(value, "utf8"));
  }
  return md;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads gRPC metadata into headers (see the rules above). Several values under one key are
 * joined with ", " (HTTP's rule). A binary value that is not UTF-8 keeps its `-bin` key and
 * arrives base64-encoded.
 */
export function fromMetadata(md: Metadata, into: Headers = {}): Headers {
  const all = md.toJSON();
  for (const key in all) {
    if (isTransportKey(key)) continue;
    const values = all[key]!;
    if (values.length === 0) continue;
    const first = values[0]!;
    if (typeof first === "string") {
      into[headerName(key)] = values.length === 1 ? first : values.join(", ");
      continue;
    }
    let text: string | undefined;
    try {
      text = utf8.decode(first);
    } catch {
      text = undefined;
    }
    if (text !== undefined && key.endsWith("-bin")) into[headerName(key.slice(0, -4))] = text;
    else into[headerName(key)] = first.toString("base64");
  }
  return into;
}

/** True for the headers that gRPC carries in its status rather than in metadata. */
export function isStatusHeader(name: string): boolean {
  return name === HeaderKeys.status || name === HeaderKeys.message;
}

/**
 * The gRPC status code of a reply's headers: `rpc-status` as a number, OK when absent, UNKNOWN
 * when it is not a valid code. Meridian's codes are gRPC's, one to one.
 */
export function statusOf(headers: Headers): Code {
  const s = headers[HeaderKeys.status];
  if (s === undefined || s === "0") return Code.OK;
  const n = Number(s);
  return Number.isInteger(n) && n > 0 && n <= 16 ? (n as Code) : Code.UNKNOWN;
}

/**
 * The RpcError of a gRPC status that is not OK: a BizError when the trailers carry `biz-status`
 * (Meridian's and Kitex's business errors), else an RpcError with the status code and message.
 * `headers` (response headers and trailers, already read) get `rpc-status` and `rpc-message`
 * added, as on every transport, and travel with the error.
 */
export function statusError(status: Pick<StatusObject, "code" | "details">, headers: Headers): RpcError {
  const n: number = status.code;
  const code = Number.isInteger(n) && n > 0 && n <= 16 ? (n as Code) : Code.UNKNOWN;
  headers[HeaderKeys.status] = String(code);
  headers[HeaderKeys.message] = status.details;
  if (headers[HeaderKeys.bizStatus] !== undefined) return statusFromHeaders(headers) as BizError;
  return new RpcError(code, status.details, { headers });
}

/** The HTTP/2 `:path` of a method, as every gRPC implementation routes it: `/<package.Service>/<Method>`. */
export function grpcPath(service: string, method: string): string {
  return `/${service}/${method}`;
}
