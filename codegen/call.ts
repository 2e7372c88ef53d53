/**
 * `meridian call` and `meridian list`: calling a service from the terminal with nothing but its
 * .proto files (grpcurl for Meridian), on any of Meridian's transports. Built on the generic
 * client (runtime/generic): requests and responses are canonical protobuf JSON.
 */
import { resolvedMessage, type MethodModel, type ServiceModel } from "../idl/model.js";
import { Code, RpcError, type CallOptions, type ClientTransport, type Consistency, type Headers } from "../runtime/api.js";
// The generic modules it needs, not runtime/generic/index.ts (which also brings msgpackr).
import { createGenericClient } from "../runtime/generic/client.js";
import { clipText } from "../runtime/rpc/status.js";
import type { JsonValue } from "../runtime/generic/json.js";
import { ProtoSchema, findMethod } from "../runtime/generic/schema.js";

/** Where the commands write (replaceable in tests). */
export interface ToolIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The request text when none is given on the command line: stdin, or undefined at a terminal. */
  stdin(): Promise<string | undefined>;
}

export const CALL_USAGE = `usage: meridian call <address> <package.Service/Method> [json] --proto <file.proto>... [-I <dir>]...
                     [--transport tcp|grpc|nats] [-H key=value]... [--region <r>]
                     [--consistency linearizable|eventual] [--timeout <ms>] [--emit-defaults] [-v]
       meridian list --proto <file.proto>... [-I <dir>]... [package.Service]

call   Calls one method with a JSON request (canonical protobuf JSON: lowerCamelCase names,
       int64 as strings, bytes as base64, enums by name) and prints the response as JSON. The
       request is the [json] argument, or stdin when it is absent or "-" (none at a terminal:
       {}). Client-streaming and bidi methods read a sequence of JSON values. Server-streaming
       methods print one JSON value per line, as the responses arrive.
list   Lists the services of the .proto files and their methods, with their kinds.

  <address>             host:port (tcp, grpc) or a NATS server URL (nats)
  --proto <file>        a .proto file describing the service: a path, or a name inside an -I
                        directory (repeatable; imports are loaded)
  -I, --proto_path <dir> import root (repeatable; default: the current directory)
  --transport <t>       tcp (default), grpc or nats
  -H, --header k=v      a request header (repeatable)
  --region <r>          the caller's region (x-region-id)
  --consistency <c>     linearizable or eventual (x-consistency-level)
  --timeout <ms>        the call's timeout (default: 30000 for unary and client-streaming
                        calls, none for calls that stream responses)
  --emit-defaults       print fields that hold their default values too
  -v, --verbose         print the response headers (and a stream's trailers) on stderr
  -h, --help            this text

Exit status: 0 on success; 2 for bad usage; 64 + the status code when the call fails (the code's
name is printed, as "NOT_FOUND: ..."), INVALID_ARGUMENT (67) included for a request that does not
fit the .proto or a .proto that does not parse.`;

/** A usage error: exit status 2. */
class UsageError extends Error {}

interface CallArgs {
  address: string;
  service: string;
  method: string;
  json: string | undefined;
  proto: string[];
  includeDirs: string[];
  transport: "tcp" | "grpc" | "nats";
  headers: Headers;
  region: string | undefined;
  consistency: Consistency | undefined;
  timeoutMs: number | undefined;
  emitDefaults: boolean;
  verbose: boolean;
}

/** Reads `--name value`, `--name=value` and `-Xvalue` forms; returns [positionals, options]. */
function scan(args: readonly string[], takes: ReadonlySet<string>, flags: ReadonlySet<string>): { positional: string[]; options: [string, string][] } {
  const positional: string[] = [];
  const options: [string, string][] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "-" || !a.startsWith("-") || /^-\d/.test(a)) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (flags.has(name)) {
      options.push([name, ""]);
      continue;
    }
    if (takes.has(name)) {
      if (a.startsWith("--") && eq > 0) options.push([name, a.slice(eq + 1)]);
      else {
        const v = args[++i];
        if (v === undefined) throw new UsageError(`${name} needs a value`);
        options.push([name, v]);
      }
      continue;
    }
    const short = a.slice(0, 2);
    if ((short === "-I" || short === "-H") && a.length > 2) {
      options.push([short, a.slice(2)]);
      continue;
    }
    throw new UsageError(`unknown option ${a}`);
  }
  return { positional, options };
}

const VALUE_OPTIONS = new Set(["--proto", "-I", "--proto_path", "--transport", "-H", "--header", "--region", "--consistency", "--timeout"]);
const FLAG_OPTIONS = new Set(["-v", "--verbose", "--emit-defaults", "-h", "--help"]);

function parseCallArgs(args: readonly string[]): CallArgs {
  const { positional, options } = scan(args, VALUE_OPTIONS, FLAG_OPTIONS);
  const out: CallArgs = {
    address: "",
    service: "",
    method: "",
    json: undefined,
    proto: [],
    includeDirs: [],
    transport: "tcp",
    headers: {},
    region: undefined,
    consistency: undefined,
    timeoutMs: undefined,
    emitDefaults: false,
    verbose: false,
  };
  for (const [name, v] of options) {
    switch (name) {
      case "--proto":
        out.proto.push(v);
        break;
      case "-I":
      case "--proto_path":
        out.includeDirs.push(v);
        break;
      case "--transport":
        if (v !== "tcp" && v !== "grpc" && v !== "nats") throw new UsageError(`--transport must be tcp, grpc or nats, not "${v}"`);
        out.transport = v;
        break;
      case "-H":
      case "--header": {
        const eq = v.indexOf("=");
        if (eq <= 0) throw new UsageError(`-H wants key=value, got "${v}"`);
        out.headers[v.slice(0, eq).trim().toLowerCase()] = v.slice(eq + 1);
        break;
      }
      case "--region":
        out.region = v;
        break;
      case "--consistency":
        if (v !== "linearizable" && v !== "eventual") throw new UsageError(`--consistency must be linearizable or eventual, not "${v}"`);
        out.consistency = v;
        break;
      case "--timeout": {
        const n = Number(v);
        if (!(n > 0)) throw new UsageError(`--timeout wants a positive number of milliseconds, got "${v}"`);
        out.timeoutMs = n;
        break;
      }
      case "--emit-defaults":
        out.emitDefaults = true;
        break;
      case "-v":
      case "--verbose":
        out.verbose = true;
        break;
    }
  }
  const [address, target, json, ...extra] = positional;
  if (address === undefined || target === undefined) throw new UsageError("call needs an address and a method (package.Service/Method)");
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}; quote the JSON request as one argument`);
  const slash = target.lastIndexOf("/");
  const dot = target.lastIndexOf(".");
  const cut = slash > 0 ? slash : dot;
  if (cut <= 0 || cut === target.length - 1) throw new UsageError(`"${target}" is not package.Service/Method`);
  if (out.proto.length === 0) throw new UsageError("--proto <file.proto> is required: it describes the service");
  out.address = address;
  out.service = target.slice(0, cut);
  out.method = target.slice(cut + 1);
  out.json = json === "-" ? undefined : json;
  if (out.includeDirs.length === 0) out.includeDirs.push(".");
  return out;
}

/** The client transport of `--transport`, aimed at `address`. */
async function transportFor(kind: CallArgs["transport"], address: string): Promise<ClientTransport> {
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

function printHeaders(io: ToolIo, title: string, headers: Headers): void {
  const keys = Object.keys(headers).sort();
  io.stderr(`${title}:${keys.length === 0 ? " (none)" : ""}\n`);
  for (const k of keys) io.stderr(`  ${printable(k)}: ${printable(headers[k]!)}\n`);
}

/** Exit status of a failed call: 64 + its code, as grpcurl does. */
function failure(io: ToolIo, e: unknown): number {
  const err = RpcError.from(e);
  io.stderr(`${err.codeName}: ${printable(err.message)}\n`);
  return 64 + err.code;
}

/** Runs `meridian call`; resolves with the exit status. */
export async function runCall(args: readonly string[], io: ToolIo): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    io.stdout(CALL_USAGE + "\n");
    return 0;
  }
  let parsed: CallArgs;
  try {
    parsed = parseCallArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`meridian call: ${e.message}\n\n${CALL_USAGE}\n`);
      return 2;
    }
    throw e;
  }
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

/** Runs `meridian list`; resolves with the exit status. */
export async function runList(args: readonly string[], io: ToolIo): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    io.stdout(CALL_USAGE + "\n");
    return 0;
  }
  let proto: string[] = [];
  let includeDirs: string[] = [];
  let only: string[];
  try {
    const { positional, options } = scan(args, new Set(["--proto", "-I", "--proto_path"]), new Set());
    proto = options.filter(([n]) => n === "--proto").map(([, v]) => v);
    includeDirs = options.filter(([n]) => n !== "--proto").map(([, v]) => v);
    if (proto.length === 0) throw new UsageError("--proto <file.proto> is required");
    only = positional;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`meridian list: ${e.message}\n\n${CALL_USAGE}\n`);
      return 2;
    }
    throw e;
  }
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

/** stdin as text, or undefined when it is a terminal (nothing piped in). */
export async function readStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
