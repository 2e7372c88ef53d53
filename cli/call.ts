/**
 * `meridian call` and `meridian list`: calling a service from the terminal with nothing but its
 * .proto files (grpcurl for Meridian), on any of Meridian's transports. Built on the generic
 * client (runtime/generic): requests and responses are canonical protobuf JSON. The transport
 * asked for is loaded only then.
 */
import type { MethodModel, ServiceModel } from "../codegen/index.js";
import { resolvedMessage } from "../idl/model.js";
import { Code, RpcError, type CallOptions, type ClientTransport, type Consistency, type Headers } from "../runtime/api.js";
// The generic modules it needs, not runtime/generic/index.ts (which also brings msgpackr).
import { createGenericClient, type JsonValue, ProtoSchema, findMethod } from "../runtime/generic/index.js";
import { clipText } from "../runtime/transport.js";
import { oneOf, parseArgs, positive, UsageError } from "./args.js";
import { CALL, LIST } from "./commands.js";
import type { CliIo } from "./io.js";

type TransportKind = "tcp" | "grpc" | "nats";

interface CallArgs {
  address: string;
  service: string;
  method: string;
  json: string | undefined;
  proto: string[];
  includeDirs: string[];
  transport: TransportKind;
  headers: Headers;
  region: string | undefined;
  consistency: Consistency | undefined;
  timeoutMs: number | undefined;
  emitDefaults: boolean;
  verbose: boolean;
}

function parseCallArgs(args: readonly string[]): CallArgs {
  const parsed = parseArgs(args, CALL.options);
  const headers: Headers = {};
  for (const v of parsed.values("--header")) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new UsageError(`-H wants key=value, got "${v}"`);
    headers[v.slice(0, eq).trim().toLowerCase()] = v.slice(eq + 1);
  }
  const consistency = parsed.value("--consistency");
  const timeout = parsed.value("--timeout");
  const [address, target, json, ...extra] = parsed.positional;
  if (address === undefined || target === undefined) throw new UsageError("call needs an address and a method (package.Service/Method)");
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}; quote the JSON request as one argument`);
  const slash = target.lastIndexOf("/");
  const dot = target.lastIndexOf(".");
  const cut = slash > 0 ? slash : dot;
  if (cut <= 0 || cut === target.length - 1) throw new UsageError(`"${target}" is not package.Service/Method`);
  const includeDirs = [...parsed.values("--proto_path")];
  return {
    address,
    service: target.slice(0, cut),
    method: target.slice(cut + 1),
    json: json === "-" ? undefined : json,
    proto: [...parsed.values("--proto")],
    includeDirs: includeDirs.length === 0 ? ["."] : includeDirs,
    transport: oneOf("--transport", parsed.value("--transport") ?? "tcp", ["tcp", "grpc", "nats"]),
    headers,
    region: parsed.value("--region"),
    consistency: consistency === undefined ? undefined : oneOf("--consistency", consistency, ["linearizable", "eventual"]),
    timeoutMs: timeout === undefined ? undefined : positive("--timeout", timeout),
    emitDefaults: parsed.flag("--emit-defaults"),
    verbose: parsed.flag("--verbose"),
  };
}

/** The client transport of `--transport`, aimed at `address`. */
async function transportFor(kind: TransportKind, address: string): Promise<ClientTransport> {
  switch (kind) {
    case "tcp": {
      const { TcpClientTransport } = await import("../transports/tcp/index.js");
      return new TcpClientTransport({ address });
    }
    case "grpc": {
      const { GrpcClientTransport } = await import("../transports/grpc/index.js");
      return new GrpcClientTransport({ address });
    }
    case "nats": {
      const { NatsClientTransport } = await import("../transports/nats/index.js");
      return new NatsClientTransport({ servers: /^\w+:\/\//.test(address) ? address : `nats://${address}` });
    }
  }
}

/**
 * Splits text holding JSON values one after another (whitespace between them optional after an
 * object, array or string) into those values.
 */
export function parseJsonSequence(text: string): JsonValue[] {
  const out: JsonValue[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && /\s/.test(text[i]!)) i++;
    if (i >= n) break;
    const start = i;
    const c = text[i]!;
    if (c === "{" || c === "[") {
      let depth = 0;
      let inString = false;
      for (; i < n; i++) {
        const ch = text[i]!;
        if (inString) {
          if (ch === "\\") i++;
          else if (ch === '"') inString = false;
        } else if (ch === '"') inString = true;
        else if (ch === "{" || ch === "[") depth++;
        else if (ch === "}" || ch === "]") {
          depth--;
          if (depth === 0) {
            i++;
            break;
          }
        }
      }
    } else if (c === '"') {
      for (i++; i < n; i++) {
        if (text[i] === "\\") i++;
        else if (text[i] === '"') {
          i++;
          break;
        }
      }
    } else {
      while (i < n && !/[\s{["]/.test(text[i]!)) i++;
    }
    const piece = text.slice(start, i);
    try {
      out.push(JSON.parse(piece) as JsonValue);
    } catch (e) {
      throw new RpcError(Code.INVALID_ARGUMENT, `the request is not JSON: ${(e as Error).message} in ${JSON.stringify(piece.length > 60 ? `${piece.slice(0, 57)}...` : piece)}`);
    }
  }
  return out;
}

/**
 * The timeout of a call whose responses do not stream when `--timeout` is not given: a server that
 * accepts a call and never answers must not hang the terminal.
 */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/** Longest header value or error message printed, in characters: a server decides their size. */
const MAX_PRINTED = 4096;

/**
 * Text a server sent, made safe for a terminal: control characters (escape sequences could
 * rewrite the screen or the title) are shown as \u escapes, and the text is cut to MAX_PRINTED.
 */
export function printable(text: string): string {
  return clipText(text, MAX_PRINTED).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function printHeaders(io: CliIo, title: string, headers: Headers): void {
  const keys = Object.keys(headers).sort();
  io.stderr(`${title}:${keys.length === 0 ? " (none)" : ""}\n`);
  for (const k of keys) io.stderr(`  ${printable(k)}: ${printable(headers[k]!)}\n`);
}

/** Exit status of a failed call: 64 + its code, as grpcurl does. */
function failure(io: CliIo, e: unknown): number {
  const err = RpcError.from(e);
  io.stderr(`${err.codeName}: ${printable(err.message)}\n`);
  return 64 + err.code;
}

/**
 * Runs `meridian call <args>` and resolves with its exit status: 0, or 64 + the status code of a
 * failed call. Throws UsageError for bad usage.
 */
export async function callCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCallArgs(args);
  let transport: ClientTransport | undefined;
  try {
    const schema = ProtoSchema.load({ proto: parsed.proto, includeDirs: parsed.includeDirs });
    const service = schema.requireService(parsed.service);
    const method = findMethod(service, parsed.method);
    if (method === undefined) {
      throw new RpcError(Code.INVALID_ARGUMENT, `unknown method ${parsed.method} of ${service.fullName}: it has ${service.methods.map((m) => m.name).join(", ") || "no methods"}`);
    }
    const text = parsed.json ?? (await io.stdin()) ?? "";
    const values = parseJsonSequence(text);
    const streamsIn = method.kind === "client_streaming" || method.kind === "bidi_streaming";
    if (!streamsIn && values.length > 1) throw new RpcError(Code.INVALID_ARGUMENT, `${method.name} takes one request, and ${values.length} JSON values were given`);
    transport = await transportFor(parsed.transport, parsed.address);
    const client = createGenericClient({
      schema,
      service: service.fullName,
      transport,
      json: { emitDefaults: parsed.emitDefaults },
      headers: parsed.headers,
      inheritContext: false,
    });
    const streamsOut = method.kind === "server_streaming" || method.kind === "bidi_streaming";
    const timeoutMs = parsed.timeoutMs ?? (streamsOut ? undefined : DEFAULT_CALL_TIMEOUT_MS);
    const options: CallOptions = {
      ...(parsed.region === undefined ? {} : { region: parsed.region }),
      ...(parsed.consistency === undefined ? {} : { consistency: parsed.consistency }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    };
    const call = client.call(method.name, streamsIn ? values : (values[0] ?? {}), options);
    try {
      if (streamsOut) {
        let first = true;
        for await (const v of call) {
          if (first && parsed.verbose) printHeaders(io, "response headers", await call.headers);
          first = false;
          io.stdout(`${JSON.stringify(v)}\n`);
        }
        if (parsed.verbose) {
          if (first) printHeaders(io, "response headers", await call.headers);
          printHeaders(io, "response trailers", await call.trailers);
        }
      } else {
        const v = await call;
        if (parsed.verbose) printHeaders(io, "response headers", await call.headers);
        io.stdout(`${JSON.stringify(v, null, 2)}\n`);
      }
    } catch (e) {
      if (parsed.verbose) printHeaders(io, "response headers", e instanceof RpcError ? e.headers : {});
      throw e;
    }
    return 0;
  } catch (e) {
    return failure(io, e);
  } finally {
    await transport?.close().catch(() => undefined);
  }
}

/** A method as `list` prints it: name, kind, types. */
function methodLine(m: MethodModel): [string, string, string, string] {
  const input = resolvedMessage(m.input).fullName;
  const output = resolvedMessage(m.output).fullName;
  const streamIn = m.kind === "client_streaming" || m.kind === "bidi_streaming" ? "stream " : "";
  const streamOut = m.kind === "server_streaming" || m.kind === "bidi_streaming" ? "stream " : "";
  return [m.name, m.kind, `${streamIn}${input} -> ${streamOut}${output}`, m.idempotency === "IDEMPOTENCY_UNKNOWN" ? "" : m.idempotency];
}

/**
 * Runs `meridian list <args>` and resolves with its exit status: 0, or 64 + INVALID_ARGUMENT for
 * a .proto that does not load or a service it does not define. Throws UsageError for bad usage.
 */
export async function listCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(args, LIST.options);
  const proto = [...parsed.values("--proto")];
  const includeDirs = [...parsed.values("--proto_path")];
  const only = parsed.positional;
  try {
    const schema = ProtoSchema.load({ proto, includeDirs: includeDirs.length === 0 ? ["."] : includeDirs });
    const services: ServiceModel[] = only.length === 0 ? schema.files.flatMap((f) => f.services) : only.map((s) => schema.requireService(s));
    if (services.length === 0) io.stderr("the .proto files define no services\n");
    for (const s of services) {
      io.stdout(`${s.fullName}\n`);
      const rows = s.methods.map(methodLine);
      const widths = [0, 1, 2].map((c) => Math.max(0, ...rows.map((r) => r[c]!.length)));
      for (const r of rows) {
        const line = `  ${r[0].padEnd(widths[0]!)}  ${r[1].padEnd(widths[1]!)}  ${r[3] === "" ? r[2] : `${r[2].padEnd(widths[2]!)}  ${r[3]}`}`;
        io.stdout(`${line.trimEnd()}\n`);
      }
    }
    return 0;
  } catch (e) {
    return failure(io, e);
  }
}
