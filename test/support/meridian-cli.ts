/**
 * The `meridian` command for tests, run the one way every test runs it: as a child process
 * (cli/main.ts through tsx, as an operator runs it during development), or in this process
 * (its `main`, output captured).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { main } from "../../cli/main.js";
import { REPO_ROOT } from "../../codegen/regen.js";

/** What a finished `meridian` run left. */
export interface MeridianExit {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Options of a `meridian` child process. */
export interface MeridianChildOptions {
  /** Working directory (default: the repository). */
  cwd?: string;
  /** Written to its stdin, then closed; absent: no stdin. */
  input?: string;
  /** Killed (SIGKILL) after this long (default 60 s), so a hung command cannot hang the test. */
  timeoutMs?: number;
}

/** The node arguments that run `meridian <args>` from the sources (through tsx). */
export function meridianArgv(args: readonly string[]): string[] {
  const tsx = join(REPO_ROOT, "node_modules", "tsx", "dist", "esm", "index.mjs");
  return ["--conditions=meridian-source", "--import", tsx, join(REPO_ROOT, "cli", "main.ts"), ...args];
}

/** Starts `meridian <args>` as a child process with piped output (the caller reads and ends it). */
export function spawnMeridian(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: boolean } = {}): ChildProcess {
  return spawn(process.execPath, meridianArgv(args), {
    cwd: options.cwd ?? REPO_ROOT,
    stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
  });
}

/** Runs `meridian <args>` in a child process to its end; `env` is added to this process's environment. */
export function meridianChild(args: readonly string[], env: NodeJS.ProcessEnv = {}, options: MeridianChildOptions = {}): Promise<MeridianExit> {
  return new Promise((resolve, reject) => {
    const child = spawnMeridian(args, { env, ...(options.cwd === undefined ? {} : { cwd: options.cwd }), stdin: options.input !== undefined });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** Runs `meridian <args>` in this process, capturing its output; `env` and `stdin` replace the process's. */
export async function meridianInProcess(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main([...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.stdin === undefined ? {} : { stdin: () => Promise.resolve(options.stdin) }),
  });
  return { code, stdout, stderr };
}
