/**
 * The `meridian` command: dispatch, help and version. Every command is described in
 * commands.ts and runs under one exit-status policy (run.ts): 0 ok, 1 the command failed,
 * 2 bad usage (`call` and `list`: 64 + the status code of a failed call). `gen` runs
 * synchronously and loads only the code generator; the commands that talk to the network load
 * their modules (the runtime, a transport) only when they run.
 *
 * bin/meridian.js runs the built dist/cli/main.js; during development run this file through
 * tsx: `node --conditions=meridian-source --import tsx cli/main.ts gen ...`.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { VERSION } from "../codegen/index.js";
import { formatGroupHelp, formatHelp, type CommandGroup } from "./args.js";
import { CALL, COMMANDS, GEN, LIST, REGISTRY_GROUP, SERVE } from "./commands.js";
import { genCommand } from "./gen.js";
import { completeIo, processIo, type CliIo, type CliIoInput } from "./io.js";
import { runCommand } from "./run.js";

export type { CliIo, CliIoInput } from "./io.js";

/** `meridian` itself as its help shows it. */
export const MERIDIAN: CommandGroup = {
  name: "",
  description: "Meridian's command line: code generation from .proto files, calls from the terminal, servers on every core, and the registry.",
  commands: COMMANDS,
  options: [{ name: "--version", help: "print the version and exit" }],
  exitStatus: "0 on success, 1 when the command failed, 2 for bad usage; call and list: 64 + the status code of a failed call.",
};

const TOP_COMMANDS = ["gen", "call", "list", "serve", "registry"];

function unknownCommand(io: CliIo, what: string): number {
  io.stderr(`meridian: unknown command "${what}" (${TOP_COMMANDS.slice(0, -1).join(", ")} or ${TOP_COMMANDS.at(-1)!})\nRun "meridian --help" for the commands.\n`);
  return 2;
}

/** `meridian help [command...]`: the help of the command named, or of meridian itself. */
function help(words: readonly string[], io: CliIo): number {
  if (words.length === 0) {
    io.stdout(formatGroupHelp(MERIDIAN));
    return 0;
  }
  const spec = COMMANDS.find((c) => c.name === words.join(" "));
  if (spec !== undefined) {
    io.stdout(formatHelp(spec));
    return 0;
  }
  if (words.join(" ") === "registry") {
    io.stdout(formatGroupHelp(REGISTRY_GROUP));
    return 0;
  }
  return unknownCommand(io, words.join(" "));
}

/**
 * Runs the `meridian` command line and returns its exit status. `gen`, help, version and usage
 * errors answer synchronously; the commands that talk to the network (`call`, `list`, `serve`,
 * `registry`) answer with a promise of it. `io` replaces the process's stdout, stderr, stdin
 * and environment (tests).
 */
export function main(argv: readonly string[], ioInput: CliIoInput = processIo): number | Promise<number> {
  const io = completeIo(ioInput);
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      io.stderr(formatGroupHelp(MERIDIAN));
      return 2;
    case "-h":
    case "--help":
      return help([], io);
    case "help":
      return help(rest, io);
    case "--version":
    case "version":
      io.stdout(`meridian v${VERSION}\n`);
      return 0;
    case "gen":
      return runCommand(GEN, genCommand, rest, io);
    case "call":
      return runCommand(CALL, async (args, io) => (await import("./call.js")).callCommand(args, io), rest, io);
    case "list":
      return runCommand(LIST, async (args, io) => (await import("./call.js")).listCommand(args, io), rest, io);
    case "serve":
      return runCommand(SERVE, async (args, io) => (await import("./serve.js")).serveCommand(args, io), rest, io);
    case "registry":
      return import("./registry.js").then((m) => m.registryCommand(rest, io));
    default:
      return unknownCommand(io, command);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  void Promise.resolve(main(process.argv.slice(2))).then((code) => (process.exitCode = code));
}
