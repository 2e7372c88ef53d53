/**
 * `meridian serve <module>`: the server a module builds, on every core (runCluster), until SIGINT
 * or SIGTERM; SIGHUP restarts the workers one at a time, SIGUSR2 prints their metrics.
 */
import cluster from "node:cluster";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { runCluster } from "../runtime/cluster/index.js";
import type { Server } from "../runtime/rpc/server.js";
import { integer, parseArgs, positive, UsageError } from "./args.js";
import { SERVE } from "./commands.js";
import { shutdownRequested, type CliIo } from "./io.js";

interface ServeArgs {
  module: string;
  exportName: string;
  workers: number | undefined;
  graceMs: number;
}

function parseServeArgs(args: readonly string[]): ServeArgs {
  const parsed = parseArgs(args, SERVE.options);
  const [module, extra] = parsed.positional;
  if (module === undefined) throw new UsageError("the module that builds the server is missing");
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const workers = parsed.value("--workers");
  const grace = parsed.value("--grace");
  return {
    module,
    exportName: parsed.value("--export") ?? "default",
    workers: workers === undefined ? undefined : integer("--workers", workers, 1),
    graceMs: grace === undefined ? 5000 : positive("--grace", grace),
  };
}

/** A path (it starts with . or /, or names a file) as a file URL; anything else is a package name. */
function specifier(module: string): string {
  return module.startsWith(".") || module.startsWith("/") || /\.[cm]?[jt]s$/.test(module) ? pathToFileURL(resolve(module)).href : module;
}

/** The module's function that builds the server; an Error that says what is wrong otherwise. */
async function serverFactory(a: ServeArgs): Promise<() => Server | Promise<Server>> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier(a.module))) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`cannot load ${a.module}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const build = mod[a.exportName];
  if (typeof build !== "function") {
    const names = Object.keys(mod).join(", ") || "none";
    throw new Error(`${a.module} has no function exported as "${a.exportName}" (its exports: ${names}); export one that returns the server, registered but not listening`);
  }
  return build as () => Server | Promise<Server>;
}

/**
 * Runs `meridian serve <args>`. In the primary: starts the workers, prints where they listen and
 * serves until SIGINT or SIGTERM (0), or fails to start (1). In a worker (node:cluster runs this
 * same command line again): builds and runs its server; a worker that cannot exits with 1.
 */
export async function serveCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const a = parseServeArgs(argv);
  let build: () => Server | Promise<Server>;
  try {
    // The primary loads the module too, so that a bad one fails here, with its reason, once.
    build = await serverFactory(a);
  } catch (e) {
    if (cluster.isWorker) process.exit(1);
    throw e;
  }
  const server = async (): Promise<Server> => {
    const s = await build();
    if (typeof (s as Partial<Server> | undefined)?.listen !== "function") {
      throw new Error(`the function exported as "${a.exportName}" by ${a.module} did not return a server`);
    }
    return s;
  };
  // Ctrl-C reaches every process of the terminal's group: the primary stops the workers
  // gracefully, so a worker leaves SIGINT to it.
  if (cluster.isWorker) process.on("SIGINT", () => {});
  let running: Awaited<ReturnType<typeof runCluster>>;
  try {
    running = await runCluster({ server, workers: a.workers, graceMs: a.graceMs });
  } catch (e) {
    if (!cluster.isWorker) throw e;
    io.stderr(`meridian serve (worker ${process.pid}): ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  if (running === undefined) return new Promise(() => {}); // a worker: it serves until the primary stops it
  const c = running;
  io.stdout(`listening on ${c.address} (${c.pids().length} workers: ${c.pids().join(", ")})\n`);

  const onHangUp = (): void =>
    void c.restart().then(
      () => io.stdout(`restarted (workers: ${c.pids().join(", ")})\n`),
      (e: unknown) => io.stderr(`meridian serve: restart failed: ${e instanceof Error ? e.message : String(e)}\n`),
    );
  const onMetrics = (): void =>
    void c.metrics().then((m) => io.stdout(`${JSON.stringify({ calls: m.calls, errors: m.errors, errorsByCode: m.errorsByCode, eventLoopDelayP99Ms: m.eventLoopDelayP99Ms, workers: m.workers.map((w) => ({ pid: w.pid, calls: w.metrics.calls, errors: w.metrics.errors, eventLoopDelayP99Ms: w.metrics.eventLoopDelay.p99Ms })) })}\n`));
  process.on("SIGHUP", onHangUp);
  process.on("SIGUSR2", onMetrics);
  const shutdown = shutdownRequested(undefined);
  const signal = await shutdown.stopped;
  shutdown.dispose();
  process.off("SIGHUP", onHangUp);
  process.off("SIGUSR2", onMetrics);
  io.stderr(`meridian serve: ${signal}: stopping the workers\n`);
  await c.close();
  return 0;
}
