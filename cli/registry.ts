/**
 * `meridian registry ...`: run a registry server, and operator commands on a running registry.
 *
 *   meridian registry serve --data <dir> --listen host:port [TLS, fsync flags]   runs a server
 *   meridian registry status --registry <url>                                    its health
 *   meridian registry primary <service> --registry <url>                  prints primary and epoch
 *   meridian registry primary <service> --move-to <region> --registry <url>  moves it (CAS)
 *   meridian registry etcd-roles --registry etcds://... --principal <spec>...  etcd RBAC set-up
 */
import { formatGroupHelp, formatUsageError, type CommandSpec } from "./args.js";
import { REGISTRY_ETCD_ROLES, REGISTRY_GROUP, REGISTRY_PRIMARY, REGISTRY_SERVE, REGISTRY_STATUS } from "./commands.js";
import { completeIo, type CliIoInput } from "./io.js";
import { etcdRolesCommand } from "./registry-etcd-roles.js";
import type { RegistryCommandDeps } from "./registry-options.js";
import { primaryCommand } from "./registry-primary.js";
import { serveCommand } from "./registry-serve.js";
import { statusCommand } from "./registry-status.js";
import { runCommand, type CommandBody } from "./run.js";

export type { Credentials, RegistryCommandDeps, ServeTransportOptions } from "./registry-options.js";

/** The body of each registry command, by its name after `registry`. */
function bodies(deps: RegistryCommandDeps): ReadonlyMap<string, [CommandSpec, CommandBody]> {
  return new Map<string, [CommandSpec, CommandBody]>([
    ["serve", [REGISTRY_SERVE, (args, io) => serveCommand(args, io, deps)]],
    ["status", [REGISTRY_STATUS, (args, io) => statusCommand(args, io, deps)]],
    ["primary", [REGISTRY_PRIMARY, (args, io) => primaryCommand(args, io, deps)]],
    ["etcd-roles", [REGISTRY_ETCD_ROLES, (args, io) => etcdRolesCommand(args, io)]],
  ]);
}

/**
 * Runs `meridian registry <argv>` and resolves with the exit status: 0 on success; 1 when the
 * registry could not answer, the move lost to a concurrent change (or, when only reading, the
 * service has no primary), when `status` finds it unhealthy, or when `serve` could not start or
 * its log failed; 2 for bad usage. `serve` resolves only once the server stopped. `deps`
 * replaces the transports, the store and the shutdown signal (tests).
 */
export async function registryCommand(argv: readonly string[], ioInput: CliIoInput, deps: RegistryCommandDeps = {}): Promise<number> {
  const io = completeIo(ioInput);
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "-h" || sub === "--help") {
    (sub === undefined ? io.stderr : io.stdout)(formatGroupHelp(REGISTRY_GROUP));
    return sub === undefined ? 2 : 0;
  }
  const command = bodies(deps).get(sub);
  if (command === undefined) {
    io.stderr(formatUsageError({ name: "registry", synopsis: "<command> [options]" }, `unknown registry command "${sub}" (serve, status, primary or etcd-roles)`));
    return 2;
  }
  return runCommand(command[0], command[1], rest, io);
}
