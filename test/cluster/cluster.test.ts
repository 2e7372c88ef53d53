/**
 * runCluster with real processes on 127.0.0.1: workers share one port, connections spread over
 * them, a rolling restart under load fails no call, and the primary gathers every worker's
 * metrics.
 */
import { fork, type ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { createClient } from "meridian-rpc";
import { TcpClientTransport } from "meridian-rpc/transports/tcp";
import { EchoService } from "../rpc/gen/echo.js";

const children: ChildProcess[] = [];
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
});

interface Reply {
  type: string;
  address?: string;
  pids: number[];
  result?: unknown;
  error?: string;
}

/** Starts the clustered server; `ask(type)` sends a command and resolves with its reply. */
async function startCluster(workers: number) {
  const child = fork(new URL("./cluster-server.ts", import.meta.url).pathname, [String(workers)], {
    execArgv: ["--conditions=meridian-source", "--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.push(child);
  const next = (type: string, ms: number): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} from the cluster within ${ms} ms`)), ms);
      const on = (m: Reply): void => {
        if (m.type !== type && m.type !== "failed") return;
        clearTimeout(timer);
        child.off("message", on);
        if (m.type === "failed") reject(new Error(m.error));
        else resolve(m);
      };
      child.on("message", on);
    });
  const ready = await next("ready", 60_000);
  const ask = (type: string, ms = 30_000): Promise<Reply> => {
    const reply = next(type, ms);
    child.send({ type });
    return reply;
  };
  cleanup.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    await ask("close").catch(() => undefined);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  });
  return { address: ready.address!, pids: ready.pids, ask };
}

describe("cluster", () => {
  it("cluster - two workers serve one port; a rolling restart under calls fails none; metrics add up over the workers", async () => {
    const { address, pids, ask } = await startCluster(2);
    expect(pids).toHaveLength(2);
    const transport = new TcpClientTransport({ connectionsPerAddress: 4 });
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs: 5000 });

    const served = new Set<string>();
    for (let i = 0; i < 40; i++) served.add((await client.echo({ text: "" })).text);
    expect([...served].sort()).toEqual(pids.map(String).sort());

    // Calls keep flowing while every worker is replaced, one at a time.
    let stop = false;
    let ok = 0;
    const failures: unknown[] = [];
    const loop = async (): Promise<void> => {
      while (!stop) {
        await client.echo({ text: "" }).then(
          () => ok++,
          (e: unknown) => failures.push(e),
        );
      }
    };
    const loops = Array.from({ length: 4 }, loop);
    const restarted = await ask("restart", 60_000);
    stop = true;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    expect(restarted.pids).toHaveLength(2);
    for (const p of restarted.pids) expect(pids).not.toContain(p);

    const after = new Set<string>();
    for (let i = 0; i < 40; i++) after.add((await client.echo({ text: "" })).text);
    for (const p of after) expect(restarted.pids.map(String)).toContain(p);

    const m = (await ask("metrics")).result as { calls: number; errors: number; eventLoopDelayP99Ms: number; workers: { pid: number; metrics: { calls: number } }[] };
    expect(m.workers.map((w) => w.pid).sort()).toEqual([...restarted.pids].sort());
    expect(m.calls).toBe(m.workers.reduce((n, w) => n + w.metrics.calls, 0));
    expect(m.calls).toBeGreaterThanOrEqual(40);
    expect(m.eventLoopDelayP99Ms).toBeGreaterThanOrEqual(0);
  }, 120_000);
});
