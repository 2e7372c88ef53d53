/**
 * The child processes of the benchmarks (a server in one, a load generator in another, so each
 * has a core): forking one, waiting for its next message, stopping it.
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The Node options of a benchmark's children: Meridian from its TypeScript source, or with
 * `dist` from the built package (exits 2 when there is none), and with `cpuProf` a CPU profile of
 * each child in .tmp/prof/.
 */
export function childExecArgv(dist: boolean, cpuProf: boolean): string[] {
  if (dist && !existsSync(fileURLToPath(new URL("../../dist/runtime/api.js", import.meta.url)))) {
    console.error("--dist: no dist/ to load: run `npm run build` first");
    process.exit(2);
  }
  const execArgv = dist ? ["--import", "tsx"] : ["--conditions=meridian-source", "--import", "tsx"];
  if (cpuProf) execArgv.push("--cpu-prof", "--cpu-prof-dir=.tmp/prof");
  return execArgv;
}

/** Forks `script` with `args`, running TypeScript through `execArgv` (tsx), stdout and stderr shared. */
export function forkChild(script: URL, args: readonly string[], execArgv: readonly string[]): ChildProcess {
  return fork(fileURLToPath(script), [...args], { execArgv: [...execArgv], stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

/** The next message of `type` from a child, failing after `ms`, on a "failed" message, or if it exits first. */
export function next<T>(c: ChildProcess, type: string, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no "${type}" from the child within ${ms} ms`)), ms);
    const onMessage = (m: { type: string; error?: string }): void => {
      if (m.type === type) done(undefined, m as T);
      else if (m.type === "failed") done(new Error(m.error));
    };
    const onExit = (code: number | null): void => done(new Error(`the child exited (${code}) before "${type}"`));
    const done = (err: Error | undefined, value?: T): void => {
      clearTimeout(timer);
      c.off("message", onMessage);
      c.off("exit", onExit);
      if (err) reject(err);
      else resolve(value!);
    };
    c.on("message", onMessage);
    c.on("exit", onExit);
  });
}

/** Asks a child to close, and kills it if it has not exited within 3 s. */
export async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return;
  const exited = new Promise((r) => c.once("exit", r));
  c.send({ type: "close" });
  const timer = setTimeout(() => c.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}
