/**
 * The exit-status policy every command shares: `--help` answers before the command runs (0);
 * a UsageError prints the problem and the usage line (2); an error the command did not expect
 * prints its message (1; its stack too with MERIDIAN_DEBUG set). A command returns its own
 * status for failures it reports itself (0 ok, 1 failed; call and list: 64 + a status code).
 */
import { formatHelp, formatUsageError, UsageError, wantsHelp, type CommandSpec } from "./args.js";
import type { CliIo } from "./io.js";

/** A command's body: reads its words and runs, returning its exit status. */
export type CommandBody = (args: readonly string[], io: CliIo) => number | Promise<number>;

function failed(spec: CommandSpec, e: unknown, io: CliIo): number {
  if (e instanceof UsageError) {
    io.stderr(formatUsageError(spec, e.message));
    return 2;
  }
  const debug = io.env.MERIDIAN_DEBUG !== undefined && io.env.MERIDIAN_DEBUG !== "" && e instanceof Error && e.stack !== undefined;
  io.stderr(`meridian ${spec.name}: ${debug ? e.stack : e instanceof Error ? e.message : String(e)}\n`);
  return 1;
}

/**
 * Runs `body` under the policy above. Synchronous bodies answer synchronously (`meridian gen`
 * returns a number, not a promise).
 */
export function runCommand(spec: CommandSpec, body: CommandBody, args: readonly string[], io: CliIo): number | Promise<number> {
  if (wantsHelp(args)) {
    io.stdout(formatHelp(spec));
    return 0;
  }
  try {
    const status = body(args, io);
    return typeof status === "number" ? status : status.catch((e: unknown) => failed(spec, e, io));
  } catch (e) {
    return failed(spec, e, io);
  }
}
