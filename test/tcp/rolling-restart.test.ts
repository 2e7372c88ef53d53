/**
 * Graceful restarts under load over real TCP: instances close with `close({ graceMs })` while a
 * client keeps calling with retries on, and no call fails.
 */
import { setTimeout as wait } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { createClient, createServer, RpcError, type Endpoint, type Resolver, type Server } from "meridian-rpc/runtime";
import { TcpClientTransport, TcpServerTransport } from "../../transports/tcp/index.js";
import { EchoService } from "../rpc/gen/echo.js";
import { echoHandlers, type EchoServer } from "../rpc/helpers.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

interface Instance {
  readonly name: string;
  readonly server: Server;
  readonly address: string;
  readonly calls: EchoServer["calls"];
}

async function start(name: string): Promise<Instance> {
  const calls: EchoServer["calls"] = [];
  const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }) });
  server.register(EchoService, echoHandlers(name, calls));
  const { address } = await server.listen();
  cleanup.push(() => server.close({ graceMs: 0 }));
  return { name, server, address, calls };
}

/** A resolver over a list the test changes, as a registry would (a new array per change). */
class ListResolver implements Resolver {
  endpoints: readonly Endpoint[] = [];
  resolve(): readonly Endpoint[] {
    return this.endpoints;
  }
  add(address: string): void {
    this.endpoints = [...this.endpoints, { address }];
  }
  remove(address: string): void {
    this.endpoints = this.endpoints.filter((e) => e.address !== address);
  }
}

/**
 * Keeps `concurrency` callers calling until `done` settles (at most `max` calls in all), counting
 * outcomes; the failures are listed by code and message.
 */
async function load(
  done: Promise<unknown>,
  max: number,
  concurrency: number,
  call: (i: number) => Promise<unknown>,
): Promise<{ ok: number; failed: string[] }> {
  let over = false;
  void done.finally(() => (over = true));
  let next = 0;
  let ok = 0;
  const failed: string[] = [];
  const worker = async (): Promise<void> => {
    while (!over && next < max) {
      const i = next++;
      try {
        await call(i);
        ok++;
      } catch (e) {
        failed.push(e instanceof RpcError ? `${e.codeName}: ${e.message}` : String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ok, failed };
}

describe("tcp rolling restart", () => {
  it("tcp rolling restart - two instances replaced one by one under load: no call fails", async () => {
    const resolver = new ListResolver();
    const instances = [await start("i0"), await start("i1")];
    for (const i of instances) resolver.add(i.address);
    const transport = new TcpClientTransport({ backoffBaseMs: 20, backoffMaxMs: 200 });
    cleanup.push(() => transport.close());
    // Echo is not idempotent: only attempts that surely never reached a handler may be retried.
    const client = createClient(EchoService, { transport, resolver, retry: { maxAttempts: 3 }, timeoutMs: 10_000 });

    // Each round: a new instance joins, the oldest closes gracefully while still listed, and the
    // registry drops it a while after it is gone.
    const restarts = (async () => {
      for (let r = 2; r < 6; r++) {
        await wait(150);
        const fresh = await start(`i${r}`);
        instances.push(fresh);
        resolver.add(fresh.address);
        await wait(100);
        const old = instances[r - 2]!;
        await old.server.close({ graceMs: 5000 });
        await wait(100);
        resolver.remove(old.address);
      }
      await wait(100);
    })();
    const result = await load(restarts, 20_000, 12, (i) => client.echo({ text: `c${i}`, delayMs: 5 + (i % 10) }));
    await restarts;

    const served = instances.map((i) => i.calls.length);
    console.log(`rolling restart: ${result.ok} ok, ${result.failed.length} failed, served per instance ${served.join(" ")}`);
    expect(result.failed).toEqual([]);
    expect(result.ok).toBeGreaterThan(200);
    // Every instance took calls, and no call ran twice.
    for (const n of served) expect(n).toBeGreaterThan(0);
    expect(served.reduce((a, b) => a + b, 0)).toBe(result.ok);
  });
});
