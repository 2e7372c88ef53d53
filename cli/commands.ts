/**
 * Every command of `meridian`, described in one place: names, arguments, options with their
 * defaults, exit status. The reader (args.ts) and the help read these; the commands themselves
 * live in gen.ts, call.ts and registry*.ts and are loaded only when run.
 */
import type { CommandGroup, CommandSpec, OptionSpec } from "./args.js";

const PROTO_PATH: OptionSpec = {
  name: "--proto_path",
  aliases: ["-I"],
  value: "<dir>",
  repeatable: true,
  default: "the current directory",
  help: "an import root. A file's name is its path relative to the first root that contains it.",
};

/** `meridian gen`. */
export const GEN: CommandSpec = {
  name: "gen",
  synopsis: "<file.proto>... --out <dir> [-I <dir>]... [--target ts|js|dts] [options]",
  summary: "generate code from .proto or .thrift files (one module per file)",
  description:
    "Generates one module per .proto file (foo/bar.proto -> <out>/foo/bar.ts): message types, codecs, views and service descriptors. Given .thrift files instead (all of one kind per run), one TypeScript module per .thrift file and per file it includes: enums, typedefs, constants, struct, union and exception types with their codecs, and service descriptors (docs/thrift-gen.md). Every file is generated before anything is written: a bad file leaves no partial output.",
  arguments: [
    {
      name: "<file.proto>...",
      help: "the .proto files to generate, or .thrift files (not both): paths, inside one of the import roots",
    },
  ],
  options: [
    {
      ...PROTO_PATH,
      help: "an import root (for .thrift files, where includes are looked for after the including file's folder). A file's name is its path relative to the first root that contains it.",
    },
    { name: "--out", aliases: ["-o"], value: "<dir>", required: true, help: "the output directory" },
    {
      name: "--target",
      value: "<t>",
      repeatable: true,
      default: "ts",
      help: "what to print: ts (typed TypeScript), js (plain JavaScript) or dts (its type declarations); repeat it or separate targets by commas (--target js,dts). .thrift files: ts only",
    },
    {
      name: "--int64",
      value: "<mode>",
      default: "bigint",
      help: "64-bit integers as bigint, number or string; a field's [jstype = JS_NUMBER | JS_STRING] overrides it. .proto only (Thrift's i64 is bigint)",
    },
    {
      name: "--runtime",
      value: "<module|path>",
      default: "meridian-rpc/runtime",
      help: "where generated code imports the runtime from: a package specifier or, starting with . or /, the path of the runtime's index module, imported relatively (for code generated into Meridian's own sources: ./runtime/index.ts)",
    },
    { name: "--wkt", value: "<module|path>", default: "meridian-rpc/wkt", help: "the same for the well-known types (.proto only)" },
  ],
  exitStatus: "0 when the files were written; 1 for an error in the IDL (printed as file:line:column: message; nothing is written); 2 for bad usage.",
};

const PROTO: OptionSpec = {
  name: "--proto",
  value: "<file.proto>",
  repeatable: true,
  required: "it describes the service",
  help: "a .proto file describing the service: a path, or a name inside an -I directory (its imports are loaded)",
};

/** `meridian call`. */
export const CALL: CommandSpec = {
  name: "call",
  synopsis: "<address> <package.Service/Method> [json] --proto <file.proto>... [-I <dir>]... [options]",
  summary: "call a method with a JSON request, from its .proto files (tcp, grpc, nats)",
  description:
    'Calls one method with a JSON request (canonical protobuf JSON: lowerCamelCase names, int64 as strings, bytes as base64, enums by name) and prints the response as JSON. The request is the [json] argument, or stdin when it is absent or "-" (none at a terminal: {}). Client-streaming and bidi methods read a sequence of JSON values. Server-streaming methods print one JSON value per line, as the responses arrive.',
  arguments: [
    { name: "<address>", help: "host:port (tcp, grpc) or a NATS server URL (nats)" },
    { name: "<package.Service/Method>", help: "the method (package.Service.Method also works)" },
    { name: "[json]", help: 'the request; "-" or absent: stdin' },
  ],
  options: [
    PROTO,
    PROTO_PATH,
    { name: "--transport", value: "<t>", default: "tcp", help: "tcp, grpc or nats" },
    { name: "--header", aliases: ["-H"], value: "<k=v>", repeatable: true, help: "a request header" },
    { name: "--region", value: "<r>", help: "the caller's region (x-region-id)" },
    { name: "--consistency", value: "<c>", help: "linearizable or eventual (x-consistency-level)" },
    {
      name: "--timeout",
      value: "<ms>",
      default: "30000 for unary and client-streaming calls, none for calls that stream responses",
      help: "the call's timeout",
    },
    { name: "--emit-defaults", help: "print fields that hold their default values too" },
    { name: "--verbose", aliases: ["-v"], help: "print the response headers (and a stream's trailers) on stderr" },
  ],
  exitStatus:
    '0 on success; 2 for bad usage; 64 + the status code when the call fails (the code\'s name is printed, as "NOT_FOUND: ..."), INVALID_ARGUMENT (67) included for a request that does not fit the .proto or a .proto that does not parse.',
};

/** `meridian list`. */
export const LIST: CommandSpec = {
  name: "list",
  synopsis: "--proto <file.proto>... [-I <dir>]... [package.Service]...",
  summary: "list the services of .proto files and their methods",
  description: "Lists the services of the .proto files (or only the services named) and their methods, with their kinds, request and response types, and idempotency level.",
  arguments: [{ name: "[package.Service]...", help: "the services to list (default: every service of the files)" }],
  options: [{ ...PROTO, help: "a .proto file: a path, or a name inside an -I directory (its imports are loaded)", required: true }, PROTO_PATH],
  exitStatus: "0 on success; 2 for bad usage; 67 (64 + INVALID_ARGUMENT) for a .proto that does not parse or a service it does not define.",
};

const REGISTRY_URL: OptionSpec = {
  name: "--registry",
  value: "<url>",
  default: "$MERIDIAN_REGISTRY",
  help: "embedded://host:port (a Meridian registry server, over TCP) or etcd://host:port[,host:port...] (etcds:// with TLS)",
};
const TIMEOUT: OptionSpec = { name: "--timeout", value: "<ms>", default: "5000", help: "the timeout of each registry call" };
const JSON_OUTPUT: OptionSpec = { name: "--json", help: "print the result as JSON" };

/** The options that say who the command is to the registry (shared by status, primary, etcd-roles). */
export const CREDENTIAL_OPTIONS: readonly OptionSpec[] = [
  { name: "--ca", value: "<file>", help: "PEM of the CA that signs the registry's (or the etcd members') certificates (TLS)", default: "Node's roots" },
  { name: "--cert", value: "<file>", help: "this client's certificate (PEM; the mTLS identity), with --key" },
  { name: "--key", value: "<file>", help: "its private key (PEM)" },
  { name: "--token", value: "<token>", default: "$MERIDIAN_REGISTRY_TOKEN", help: "a bearer token (Meridian registry servers with --auth)" },
  {
    name: "--user",
    value: "<name>",
    help: "an etcd user; its password from $MERIDIAN_ETCD_PASSWORD or --password-file (never on the command line)",
  },
  { name: "--password-file", value: "<file>", help: "a file holding the etcd user's password (one line)" },
];

/** `meridian registry serve`. */
export const REGISTRY_SERVE: CommandSpec = {
  name: "registry serve",
  synopsis: "--data <dir> [--listen <host:port>] [--cert <file> --key <file> [--ca <file>]] (--auth <file> | --insecure) [options]",
  summary: "run a durable registry server until SIGINT or SIGTERM",
  description: "Runs a durable embedded registry server (the Registry service over TCP) until SIGINT or SIGTERM. Clients use --registry embedded://<host:port>.",
  options: [
    {
      name: "--data",
      value: "<dir>",
      required: "the folder that keeps the registry across restarts",
      help: "the data directory: snapshot.json, the log segments wal-*.log and LOCK; created if missing, recovered on start",
    },
    { name: "--listen", value: "<host:port>", default: "127.0.0.1:7000", help: "where to listen (port 0 picks a free one)" },
    { name: "--cert", value: "<file>", help: "TLS: the server's certificate chain (PEM), with --key" },
    { name: "--key", value: "<file>", help: "its private key (PEM)" },
    { name: "--ca", value: "<file>", help: "mutual TLS: clients must present a certificate signed by this CA" },
    { name: "--plaintext", help: "listen on a non-loopback address without TLS (refused otherwise)" },
    {
      name: "--auth",
      value: "<file>",
      help: "identities, roles and quotas (JSON; docs/security.md): every call is authenticated (client certificate with --ca, or a bearer token)",
    },
    { name: "--insecure", help: "no authentication: anyone who reaches the port may read and write" },
    {
      name: "--fsync",
      value: "<policy>",
      default: "always",
      help: "always: every acknowledged write is fsynced first (group commit), nothing acknowledged is lost even on power loss; interval: written before the acknowledgement, fsynced every --fsync-interval ms: a kill -9 loses nothing, a power loss up to that interval",
    },
    { name: "--fsync-interval", value: "<ms>", default: "100", help: "how often --fsync interval fsyncs" },
    { name: "--compact-after", value: "<MiB>", default: "64", help: "write a snapshot and drop the log once it holds this much" },
    { name: "--compact-interval", value: "<s>", default: "600", help: "also compact this often when anything was logged (0: never)" },
  ],
  exitStatus: "0 once stopped by SIGINT or SIGTERM; 1 when it cannot start, or when its log on disk fails (a supervisor restarts it and it recovers from --data); 2 for bad usage.",
};

/** `meridian serve`. */
export const SERVE: CommandSpec = {
  name: "serve",
  synopsis: "<module> [--workers <n>] [--export <name>] [--grace <ms>]",
  summary: "run a server on every core until SIGINT or SIGTERM",
  description:
    "Runs the server a module builds in --workers processes that share its port (runCluster, docs/overload.md). The module exports a function that returns the server, registered but not listening (or a promise of it); it runs in every worker. Prints `listening on <address>` once every worker listens. SIGHUP: rolling restart, one worker at a time (`restarted`); SIGUSR2: the workers' metrics, summed, as one line of JSON; SIGINT or SIGTERM: every worker stops gracefully, then the command exits.",
  arguments: [{ name: "<module>", help: "the module: a path (relative to the current directory) or a package name. TypeScript needs a loader: node --import tsx" }],
  options: [
    { name: "--workers", value: "<n>", default: "os.availableParallelism()", help: "worker processes" },
    { name: "--export", value: "<name>", default: "default", help: "which export of the module builds the server" },
    { name: "--grace", value: "<ms>", default: "5000", help: "how long a stopping worker's calls in flight may take" },
  ],
  exitStatus: "0 once stopped by SIGINT or SIGTERM; 1 when the module cannot be loaded, does not export a function, or a worker does not start; 2 for bad usage.",
};

/** `meridian registry status`. */
export const REGISTRY_STATUS: CommandSpec = {
  name: "registry status",
  synopsis: "[--registry <url>] [--timeout <ms>] [--json] [--ca <file> [--cert <file> --key <file>]] [--token <token>]",
  summary: "print a registry server's health",
  description:
    "Prints a registry server's health: revision, keys, leases, log size, last compaction, uptime. A registry with authentication answers any principal it knows. For etcd, use etcdctl endpoint status.",
  options: [{ ...REGISTRY_URL, help: "embedded://host:port: a Meridian registry server" }, TIMEOUT, JSON_OUTPUT, ...CREDENTIAL_OPTIONS],
  exitStatus: '0 when it answers "ok"; 1 when it cannot be reached or reports a failure; 2 for bad usage.',
};

/** `meridian registry primary`. */
export const REGISTRY_PRIMARY: CommandSpec = {
  name: "registry primary",
  synopsis: "<service> [--move-to <region>] [--expect-epoch <n>] [--lease-ms <ms>] --registry <url> [options]",
  summary: "print the primary region of a service, or move it (compare-and-set)",
  description:
    "Prints the primary region of <service> and its epoch; with --move-to, moves the primary there by compare-and-set on the record just read (bumping the epoch), and fails if anyone changed it meanwhile. The new primary accepts writes once the old primary's lease has passed. An authenticating registry lets only the operator role move a primary.",
  arguments: [{ name: "<service>", help: "the service's fully qualified name, like demo.Accounts" }],
  options: [
    REGISTRY_URL,
    { name: "--move-to", value: "<region>", help: "the region to make primary" },
    { name: "--expect-epoch", value: "<n>", default: "the epoch just read", help: "move only if the epoch is still <n>; 0 when the service has no primary yet" },
    { name: "--lease-ms", value: "<ms>", default: "the current record's", help: "the new record's lease" },
    TIMEOUT,
    JSON_OUTPUT,
    ...CREDENTIAL_OPTIONS,
  ],
  exitStatus:
    "0 on success; 1 when the registry cannot answer, the move lost to a concurrent change, or (reading only) the service has no primary; 2 for bad usage.",
};

/** `meridian registry etcd-roles`. */
export const REGISTRY_ETCD_ROLES: CommandSpec = {
  name: "registry etcd-roles",
  synopsis: "--registry etcd[s]://host:port[,...] --principal <spec>... [--enable-auth] [options]",
  summary: "create or update etcd roles and users for the registry's roles",
  description:
    'Creates (or brings up to date) etcd roles and users for the registry\'s roles, on key ranges (docs/registry.md, "etcd roles"). Run it as etcd\'s root user; running it again is harmless.',
  options: [
    { ...REGISTRY_URL, help: "etcd://host:port[,host:port...] or etcds://..." },
    {
      name: "--principal",
      value: "<spec>",
      repeatable: true,
      help: "<user>=<role>[+<role>...][:<service>,<service>...], roles instance, reader, operator; services for instance (e.g. eu-1=instance+reader:demo.Accounts)",
    },
    {
      name: "--passwords",
      value: "<file>",
      help: 'lines "<user> <password>" for users that log in with a password; other new users get none (they authenticate by a client certificate, CN=<user>)',
    },
    {
      name: "--enable-auth",
      help: "on an etcd without authentication yet: set up, then create the root user (password: $MERIDIAN_ETCD_PASSWORD, else certificate-only, CN=root) and turn authentication on",
    },
    { name: "--prefix", value: "<p>", default: "meridian/", help: "the registry's key prefix" },
    TIMEOUT,
    JSON_OUTPUT,
    ...CREDENTIAL_OPTIONS,
  ],
  exitStatus: "0 when etcd matches (changed or already so); 1 when etcd refused or could not be reached; 2 for bad usage.",
};

/** The registry's subcommands, in the order the help lists them. */
export const REGISTRY_COMMANDS: readonly CommandSpec[] = [REGISTRY_SERVE, REGISTRY_STATUS, REGISTRY_PRIMARY, REGISTRY_ETCD_ROLES];

/** `meridian registry` as its help shows it. */
export const REGISTRY_GROUP: CommandGroup = {
  name: "registry",
  description: "Runs a registry server, and operator commands on a running registry (Meridian's embedded registry server, or etcd).",
  commands: REGISTRY_COMMANDS,
  options: [],
  exitStatus: "0 on success, 1 when the command failed, 2 for bad usage.",
};

/** Every command, in the order `meridian --help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [GEN, CALL, LIST, SERVE, ...REGISTRY_COMMANDS];
