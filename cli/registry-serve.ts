/**
 * `meridian registry serve`: a durable embedded registry server over TCP, until SIGINT or
 * SIGTERM (or until its log on disk fails, so that a supervisor restarts it).
 */
import {
  readRegistryAuth,
  type RegistryAuth,
  type FsyncPolicy,
  serveRegistry,
  type RegistryServer,
  type RegistryServerOptions,
} from "../runtime/registry/index.js";
import type { ServerTls, ServerTransport } from "../runtime/api.js";
import { integer, oneOf, parseArgs, UsageError } from "./args.js";
import { REGISTRY_SERVE } from "./commands.js";
import { shutdownRequested, type CliIo } from "./io.js";
import { optionFile, serverTransportOf, type RegistryCommandDeps } from "./registry-options.js";

interface ServeArgs {
  dataDir: string;
  host: string;
  port: number;
  tls: ServerTls | undefined;
  plaintext: boolean;
  /** The registry's identities and roles; undefined: --insecure. */
  auth: RegistryAuth | undefined;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number | undefined;
  compactAfterBytes: number | undefined;
  compactIntervalMs: number | undefined;
}

function parseServeArgs(args: readonly string[]): ServeArgs {
  const parsed = parseArgs(args, REGISTRY_SERVE.options);
  if (parsed.positional.length > 0) throw new UsageError(`unexpected argument "${parsed.positional[0]}"`);
  const dataDir = parsed.value("--data")!;
  const listen = parsed.value("--listen") ?? "127.0.0.1:7000";
  const cert = parsed.value("--cert");
  const key = parsed.value("--key");
  const ca = parsed.value("--ca");
  const plaintext = parsed.flag("--plaintext");
  const insecure = parsed.flag("--insecure");
  const authFile = parsed.value("--auth");
  const fsync = oneOf("--fsync", parsed.value("--fsync") ?? "always", ["always", "interval"]);
  const number = (name: string, min: number): number | undefined => {
    const v = parsed.value(name);
    return v === undefined ? undefined : integer(name, v, min);
  };
  const fsyncIntervalMs = number("--fsync-interval", 1);
  const compactAfterMiB = number("--compact-after", 1);
  const compactIntervalS = number("--compact-interval", 0);
  const m = /^(.+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen must be host:port, not "${listen}"`);
  const host = m[1]!.replace(/^\[(.*)\]$/, "$1");
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("--cert and --key go together");
  if (ca !== undefined && cert === undefined) throw new UsageError("--ca (mutual TLS) needs --cert and --key");
  if (cert !== undefined && plaintext) throw new UsageError("--plaintext and --cert contradict each other");
  if (fsyncIntervalMs !== undefined && fsync !== "interval") throw new UsageError("--fsync-interval goes with --fsync interval");
  // Authentication is a choice to make: the registry's identities and roles (--auth, see
  // docs/security.md), or --insecure.
  if (insecure === (authFile !== undefined)) {
    throw new UsageError(
      insecure
        ? "--auth and --insecure contradict each other"
        : "choose how clients authenticate: --auth <file> (identities and roles, docs/security.md) or --insecure (anyone who reaches the port may read and write)",
    );
  }
  let auth: RegistryAuth | undefined;
  if (authFile !== undefined) {
    try {
      auth = readRegistryAuth(authFile);
    } catch (e) {
      throw new UsageError(`--auth ${authFile}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const tls =
    cert === undefined
      ? undefined
      : {
          cert: optionFile("--cert", cert),
          key: optionFile("--key", key!),
          ...(ca === undefined ? {} : { ca: optionFile("--ca", ca), requireClientCert: true }),
        };
  return {
    dataDir,
    host,
    port,
    tls,
    plaintext,
    auth,
    fsync,
    fsyncIntervalMs,
    compactAfterBytes: compactAfterMiB === undefined ? undefined : compactAfterMiB * 1024 * 1024,
    compactIntervalMs: compactIntervalS === undefined ? undefined : compactIntervalS * 1000,
  };
}

/**
 * Runs `meridian registry serve <args>`: serves until shut down (exit 0), or until its log on
 * disk fails (exit 1: a supervisor restarts it and it recovers from the data directory); 1 too
 * when it cannot start. Throws UsageError for bad usage.
 */
export async function serveCommand(argv: readonly string[], io: CliIo, deps: RegistryCommandDeps): Promise<number> {
  const args = parseServeArgs(argv);
  const serverTransport = await serverTransportOf(deps);
  let transport: ServerTransport;
  try {
    transport = serverTransport({ host: args.host, port: args.port, ...(args.tls ? { tls: args.tls } : {}), ...(args.plaintext ? { plaintext: true } : {}) });
  } catch (e) {
    throw new UsageError(`${(e as Error).message} (flags: --cert <file> --key <file>, or --plaintext)`);
  }
  let failed: (error: Error) => void = () => {};
  const storageFailed = new Promise<Error>((resolve) => (failed = resolve));
  const options: RegistryServerOptions = {
    transport,
    ...(args.auth === undefined ? { insecure: true } : { auth: args.auth }),
    dataDir: args.dataDir,
    fsync: args.fsync,
    ...(args.fsyncIntervalMs === undefined ? {} : { fsyncIntervalMs: args.fsyncIntervalMs }),
    ...(args.compactAfterBytes === undefined ? {} : { compactAfterBytes: args.compactAfterBytes }),
    ...(args.compactIntervalMs === undefined ? {} : { compactIntervalMs: args.compactIntervalMs }),
    onStorageFailure: failed,
  };
  const shutdown = shutdownRequested(deps.shutdown);
  let server: RegistryServer;
  try {
    server = await serveRegistry(options);
  } catch (e) {
    shutdown.dispose();
    io.stderr(`meridian registry serve: cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const recovery = server.node.status().storage?.recovery;
  const security = args.tls ? (args.tls.ca ? "mutual TLS" : "TLS") : "plaintext";
  io.stdout(
    `meridian registry: serving ${args.dataDir} on ${server.address} (${security}, ${args.auth === undefined ? "no authentication" : "authentication and roles"}, fsync ${args.fsync}); ` +
      `revision ${server.node.machine.revision}, ${recovery?.replayed ?? 0} log record(s) replayed` +
      `${recovery?.truncatedBytes ? `, a torn last record of ${recovery.truncatedBytes} bytes cut off` : ""}\n`,
  );
  try {
    const outcome = await Promise.race([shutdown.stopped.then((name) => ({ name })), storageFailed.then((error) => ({ error }))]);
    if ("error" in outcome) {
      io.stderr(`meridian registry serve: ${outcome.error.message}\n`);
      await server.close().catch(() => undefined);
      return 1;
    }
    io.stdout(`meridian registry: ${outcome.name}: closing\n`);
    await server.close();
    return 0;
  } finally {
    shutdown.dispose();
  }
}
