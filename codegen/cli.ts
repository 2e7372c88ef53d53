import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { IdlError } from "../idl/errors.js";
import { generate } from "./index.js";
import type { Int64Mode } from "../idl/model.js";
import { loadProtoFiles } from "../idl/parse.js";
import { VERSION } from "../emit/version.js";

const USAGE = `usage: meridian gen <file.proto>... [-I <dir>]... --out <dir> [--int64 bigint|number|string]
                    [--runtime <module|path>] [--wkt <module|path>]
       meridian call <address> <package.Service/Method> [json] --proto <file.proto> ...  (see meridian call --help)
       meridian list --proto <file.proto>... [-I <dir>]...

Generates one TypeScript module per .proto file (foo/bar.proto -> <out>/foo/bar.ts).

  -I, --proto_path <dir>  import root (repeatable; default: the current directory). A file's
                          name is its path relative to the first root that contains it.
  --out <dir>             output directory
  --int64 <mode>          64-bit integers as bigint (default), number or string; a field's
                          [jstype = JS_NUMBER | JS_STRING] overrides it
  --runtime <module|path> where generated code imports the runtime from: a package
                          specifier (default meridian-rpc/runtime) or, starting with . or /,
                          the path of the runtime's index module, imported relatively (for
                          code generated into Meridian's own sources: ./runtime/index.ts)
  --wkt <module|path>     the same for the well-known types (default meridian-rpc/wkt)
  -h, --help              this text
  --version               the version

       meridian registry serve --data <dir> --listen <host:port> ...   (a durable registry server)
       meridian registry status --registry <url>                        (its health)
       meridian registry primary <service> [--move-to <region>] --registry <url>
                    (the primary region of a service; see meridian registry --help)`;

/** Where the CLI writes its messages (replaceable in tests). */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

class UsageError extends Error {}

interface GenArgs {
  files: string[];
  includeDirs: string[];
  out: string;
  int64: Int64Mode;
  runtime: string | undefined;
  wkt: string | undefined;
}

function parseGenArgs(args: readonly string[]): GenArgs {
  const files: string[] = [];
  const includeDirs: string[] = [];
  let out: string | undefined;
  let int64: Int64Mode = "bigint";
  let runtime: string | undefined;
  let wkt: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (name: string): string => {
      const eq = a.indexOf("=");
      if (a.startsWith("--") && eq > 0) return a.slice(eq + 1);
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    if (a === "-I" || a === "--proto_path" || a.startsWith("--proto_path=")) includeDirs.push(value("-I"));
    else if (a.startsWith("-I")) includeDirs.push(a.slice(2));
    else if (a === "--out" || a.startsWith("--out=") || a === "-o") out = value("--out");
    else if (a === "--int64" || a.startsWith("--int64=")) {
      const v = value("--int64");
      if (v !== "bigint" && v !== "number" && v !== "string") {
        throw new UsageError(`--int64 must be bigint, number or string, not "${v}"`);
      }
      int64 = v;
    } else if (a === "--runtime" || a.startsWith("--runtime=")) runtime = value("--runtime");
    else if (a === "--wkt" || a.startsWith("--wkt=")) wkt = value("--wkt");
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
    else files.push(a);
  }
  if (files.length === 0) throw new UsageError("no .proto files given");
  if (out === undefined) throw new UsageError("--out <dir> is required");
  return { files, includeDirs: includeDirs.length === 0 ? ["."] : includeDirs, out, int64, runtime, wkt };
}

/** `meridian registry ...` (runtime/registry/cli.ts), loaded only when asked for. */
async function registry(args: readonly string[], io: CliIo): Promise<number> {
  const [{ registryCommand }, { TcpClientTransport, TcpServerTransport }] = await Promise.all([import("../runtime/registry/cli.js"), import("../transports/tcp/index.js")]);
  return registryCommand(args, io, { clientTransport: (options) => new TcpClientTransport(options), serverTransport: (options) => new TcpServerTransport(options) });
}

/** `meridian call` and `meridian list` (codegen/call.ts), loaded only when asked for. */
async function runTool(command: "call" | "list", args: readonly string[], io: CliIo): Promise<number> {
  const tool = await import("./call.js");
  const toolIo = { stdout: io.stdout, stderr: io.stderr, stdin: tool.readStdin };
  return command === "call" ? tool.runCall(args, toolIo) : tool.runList(args, toolIo);
}

/**
 * Runs the `meridian` command line and returns its exit code: 0 on success, 1 for an error in
 * the IDL (reported as `file:line:column: message`, nothing written), 2 for bad usage. The
 * commands that talk to the network (`registry`, `call`, `list`) answer with a promise of it.
 */
export function main(argv: readonly string[], io: CliIo = processIo): number | Promise<number> {
  const [command, ...rest] = argv;
  if (command === "registry") return registry(rest, io);
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    io.stdout(USAGE + "\n");
    return command === undefined ? 2 : 0;
  }
  if (command === "--version" || command === "version") {
    io.stdout(`meridian v${VERSION}\n`);
    return 0;
  }
  if (command === "call" || command === "list") return runTool(command, rest, io);
  if (command !== "gen") {
    io.stderr(`meridian: unknown command "${command}"\n\n${USAGE}\n`);
    return 2;
  }
  try {
    const args = parseGenArgs(rest);
    if (rest.includes("-h") || rest.includes("--help")) {
      io.stdout(USAGE + "\n");
      return 0;
    }
    const files = loadProtoFiles(args.files, { includeDirs: args.includeDirs });
    // Everything is generated before anything is written: a bad file leaves no partial output.
    const outputs = generate(files, {
      int64: args.int64,
      outDir: args.out,
      ...(args.runtime === undefined ? {} : { runtime: args.runtime }),
      ...(args.wkt === undefined ? {} : { wkt: args.wkt }),
    });
    for (const o of outputs) {
      const path = join(resolve(args.out), o.name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, o.content);
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`meridian: ${e.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (e instanceof IdlError) {
      io.stderr(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  void Promise.resolve(main(process.argv.slice(2))).then((code) => (process.exitCode = code));
}
