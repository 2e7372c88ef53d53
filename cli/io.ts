/**
 * The IO seam of the `meridian` command: every command writes, reads stdin and looks at the
 * environment through a CliIo, so a test runs a command in process with its own output sinks,
 * input and environment.
 */

/** Where a command writes, what it reads, and the environment it sees. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The whole of stdin as text, or undefined when it is a terminal (nothing piped in). */
  stdin(): Promise<string | undefined>;
  /** The environment (MERIDIAN_REGISTRY, MERIDIAN_REGISTRY_TOKEN, ...). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** What a caller must give: the two output sinks; stdin and env default to the process's. */
export type CliIoInput = Pick<CliIo, "stdout" | "stderr"> & Partial<Pick<CliIo, "stdin" | "env">>;

/** stdin of this process as text, or undefined when it is a terminal. */
export async function readProcessStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The process's own IO: its stdout, stderr, stdin and environment. */
export const processIo: CliIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  stdin: readProcessStdin,
  env: process.env,
};

/** A full CliIo from what the caller gave, the process's stdin and environment filling the rest. */
export function completeIo(io: CliIoInput): CliIo {
  return {
    stdout: (t) => io.stdout(t),
    stderr: (t) => io.stderr(t),
    stdin: io.stdin ?? readProcessStdin,
    env: io.env ?? process.env,
  };
}

/** Resolves when `signal` aborts, or on SIGINT / SIGTERM when there is no signal. */
export function shutdownRequested(signal: AbortSignal | undefined): { stopped: Promise<string>; dispose: () => void } {
  if (signal) {
    return {
      stopped: new Promise((resolve) => (signal.aborted ? resolve("shutdown") : signal.addEventListener("abort", () => resolve("shutdown"), { once: true }))),
      dispose: () => {},
    };
  }
  let onSignal: (name: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<string>((resolve) => (onSignal = (name) => resolve(name)));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    stopped,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
