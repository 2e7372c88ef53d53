/**
 * The `meridian` command for tests: as a child process (codegen/cli.ts through tsx, as an
 * operator runs it during development) and in this process (its `main`, output captured).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { main } from "../../codegen/cli.js";
import { REPO_ROOT } from "../../codegen/regen.js";

/** What a finished `meridian` child process left. */
export interface MeridianExit {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `meridian <args>` in a child process; `env` is added to this process's environment. */
export function meridianChild(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<MeridianExit> {
  const tsx = join(REPO_ROOT, "node_modules", "tsx", "dist", "esm", "index.mjs");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=meridian-source", "--import", tsx, join(REPO_ROOT, "codegen", "cli.ts"), ...args], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** Runs `meridian <args>` in this process, capturing its output. */
export async function meridianInProcess(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main([...args], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}
