/**
 * `meridian serve` as an operator runs it: a real process whose workers share one port, signals
 * for metrics, rolling restart and shutdown, and the exit status of a module that cannot serve.
 */
import type { ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { createClient } from "meridian-rpc";
import { TcpClientTransport } from "meridian-rpc/transports/tcp";
import { EchoService } from "../rpc/gen/echo.js";
import { meridianChild, spawnMeridian } from "../support/meridian-cli.js";

const MODULE = "test/cluster/serve-module.ts";
const children: ChildProcess[] = [];
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** `meridian serve` in a child process; `line(re)` waits for a line of its stdout that matches. */
function serve(args: readonly string[]) {
  const child = spawnMeridian(["serve", MODULE, ...args]);
  children.push(child);
  const lines: string[] = [];
  let stderr = "";
  const waiters: { re: RegExp; done: (m: RegExpMatchArray) => void }[] = [];
  let buffered = "";
  child.stdout!.on("data", (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(text);
      for (const w of waiters.splice(0)) {
        const m = text.match(w.re);
        if (m) w.done(m);
        else waiters.push(w);
      }
    }
  });
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const line = (re: RegExp, ms = 60_000): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms; stdout: ${lines.join("\n")}; stderr: ${stderr}`)), ms);
      waiters.push({
        re,
        done: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, line, exited, stderr: () => stderr };
}

describe("meridian serve", () => {
  it("serve - workers share the printed port; SIGUSR2 prints their metrics summed; SIGHUP replaces them one at a time; SIGTERM stops it with 0", async () => {
    const s = serve(["--workers", "2", "--grace", "2000"]);
    const ready = await s.line(/^listening on (\S+) \(2 workers: (\d+), (\d+)\)$/);
    const address = ready[1]!;
    const pids = [ready[2]!, ready[3]!];
    const transport = new TcpClientTransport({ connectionsPerAddress: 4 });
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs: 5000 });
    const served = new Set<string>();
    for (let i = 0; i < 40; i++) served.add((await client.echo({ text: "" })).text);
    expect([...served].sort()).toEqual([...pids].sort());

    const metricsLine = s.line(/^\{/);
    s.child.kill("SIGUSR2");
    const m = JSON.parse((await metricsLine).input!) as { calls: number; workers: { pid: number; calls: number }[] };
    expect(m.workers.map((w) => String(w.pid)).sort()).toEqual([...pids].sort());
    expect(m.calls).toBe(40);
    expect(m.calls).toBe(m.workers.reduce((n, w) => n + w.calls, 0));

    const restartedLine = s.line(/^restarted \(workers: (\d+), (\d+)\)$/);
    s.child.kill("SIGHUP");
    const restarted = await restartedLine;
    const after = [restarted[1]!, restarted[2]!];
    for (const p of after) expect(pids).not.toContain(p);
    // The client moves to the new workers (the old ones told it to, then closed).
    const later = new Set<string>();
    for (let i = 0; i < 40; i++) later.add((await client.echo({ text: "" })).text);
    for (const p of later) expect(after).toContain(p);

    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    expect(s.stderr()).toContain("SIGTERM: stopping the workers");
    for (const p of after) expect(() => process.kill(Number(p), 0)).toThrow();
  }, 120_000);

  it("serve - a module without the export named is refused with exit 1 and the exports it has; bad usage is 2", async () => {
    const missing = await meridianChild(["serve", MODULE, "--export", "notAFunction", "--workers", "1"]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('has no function exported as "notAFunction" (its exports: default, notAFunction)');
    const nothing = await meridianChild(["serve", "./no-such-module.js"]);
    expect(nothing.status).toBe(1);
    expect(nothing.stderr).toContain("cannot load ./no-such-module.js");
    const usage = await meridianChild(["serve", MODULE, "--workers", "0"]);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain("--workers must be an integer >= 1");
  }, 120_000);
});
