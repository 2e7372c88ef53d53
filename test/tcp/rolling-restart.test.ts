/**
 * Graceful restarts under load over real TCP: instances close with `close({ graceMs })` while a
 * client keeps calling with retries on, and no call fails. The closing server's `crrst` makes the
 * client's transport report the address as one to avoid, so load balancing and retries stop
 * choosing it even while a registry still lists it.
 */
import { setTimeout as wait } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { createClient, createServer, RpcError, type Endpoint, type Resolver, type Server } from "meridian-rpc";
import { createRegistry, createEmbeddedStore, listenAndRegister, registryResolver } from "meridian-rpc/registry";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { EchoService } from "../rpc/gen/echo.js";
import { echoHandlers, type EchoServer } from "../rpc/helpers.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

/** One server instance: how to close it gracefully, and the calls it served. */
interface Instance {
  readonly address: string;
  readonly calls: EchoServer["calls"];
  close(graceMs: number): Promise<void>;
}

/** An echo server on a free port of 127.0.0.1 (or on `port`). */
async function echoServer(name: string, port = 0): Promise<{ server: Server; calls: EchoServer["calls"] }> {
  const calls: EchoServer["calls"] = [];
  const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1", port }) });
  server.register(EchoService, echoHandlers(name, calls));
  cleanup.push(() => server.close({ graceMs: 0 }));
  return { server, calls };
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

/**
 * Starts two instances, then replaces them one by one, four times: a new instance starts, the
 * oldest closes gracefully. Meanwhile 12 callers call Echo (not idempotent: only attempts that
 * surely never reached a handler may be retried) through a client with retries on. Returns the
 * outcome and what each instance served.
 */
async function rollingRestart(start: (name: string) => Promise<Instance>, resolver: Resolver): Promise<{ ok: number; failed: string[]; served: number[] }> {
  const instances = [await start("i0"), await start("i1")];
  const transport = new TcpClientTransport({ backoffBaseMs: 20, backoffMaxMs: 200 });
  cleanup.push(() => transport.close());
  const client = createClient(EchoService, { transport, resolver, region: "r1", retry: { maxAttempts: 3 }, timeoutMs: 10_000 });
  const restarts = (async () => {
    for (let r = 2; r < 6; r++) {
      await wait(150);
      instances.push(await start(`i${r}`));
      await wait(100);
      await instances[r - 2]!.close(5000);
    }
    await wait(100);
  })();
  const result = await load(restarts, 20_000, 12, (i) => client.echo({ text: `c${i}`, delayMs: 5 + (i % 10) }));
  await restarts;
  return { ...result, served: instances.map((i) => i.calls.length) };
}

/** Checks the outcome: no failure, every instance served, no call ran twice. */
function expectNothingLost(what: string, r: { ok: number; failed: string[]; served: number[] }): void {
  console.log(`${what}: ${r.ok} ok, ${r.failed.length} failed, served per instance ${r.served.join(" ")}`);
  expect(r.failed).toEqual([]);
  expect(r.ok).toBeGreaterThan(200);
  for (const n of r.served) expect(n).toBeGreaterThan(0);
  expect(r.served.reduce((a, b) => a + b, 0)).toBe(r.ok);
}

describe("tcp rolling restart", () => {
  it("tcp rolling restart - instances replaced one by one under load, still listed while closing: no call fails", async () => {
    const resolver = new ListResolver();
    const start = async (name: string): Promise<Instance> => {
      const { server, calls } = await echoServer(name);
      const { address } = await server.listen();
      resolver.add(address);
      return {
        address,
        calls,
        // The registry notices a while after the instance is gone.
        close: async (graceMs) => {
          await server.close({ graceMs });
          await wait(100);
          resolver.remove(address);
        },
      };
    };
    expectNothingLost("rolling restart, list resolver", await rollingRestart(start, resolver));
  });

  it("tcp rolling restart - instances that deregister on close (embedded registry): no call fails", async () => {
    const store = await createEmbeddedStore();
    const registry = createRegistry({ store, region: "r1", leaseTtlMs: 5000 });
    cleanup.push(() => registry.close());
    const start = async (name: string): Promise<Instance> => {
      const { server, calls } = await echoServer(name);
      const registered = await listenAndRegister(server, registry, { services: [EchoService], transport: "tcp" });
      return { address: registered.address, calls, close: (graceMs) => registered.close({ graceMs }) };
    };
    expectNothingLost("rolling restart, registry", await rollingRestart(start, registryResolver(registry, { transport: "tcp" })));
  });

  it("tcp rolling restart - one of two fixed endpoints closes and stays listed: no call fails, before or after", async () => {
    const a = await echoServer("a");
    const b = await echoServer("b");
    const endpoints = [{ address: (await a.server.listen()).address }, { address: (await b.server.listen()).address }];
    const transport = new TcpClientTransport({ backoffBaseMs: 20, backoffMaxMs: 100 });
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints, retry: {}, timeoutMs: 10_000 });
    // a closes while calls run, and then stays in the list for a second, probed in the background.
    const closing = (async () => {
      await wait(150);
      await a.server.close({ graceMs: 5000 });
      await wait(1000);
    })();
    const r = await load(closing, 20_000, 12, (i) => client.echo({ text: `c${i}`, delayMs: 5 + (i % 10) }));
    expectNothingLost("one of two fixed endpoints closes", { ...r, served: [a.calls.length, b.calls.length] });
  });

  it("tcp rolling restart - crrst marks the address to avoid; a new server on it brings it back", async () => {
    const first = await echoServer("first");
    const { address } = await first.server.listen();
    const port = Number(address.split(":")[1]);
    const transport = new TcpClientTransport({ backoffBaseMs: 20, backoffMaxMs: 100 });
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints: [{ address }] });
    expect((await client.get({})).servedBy).toBe("first");
    const health = transport.health;
    expect(health.avoidUntil(address, Date.now())).toBe(0);
    const version = health.version;
    await first.server.close({ graceMs: 1000 });
    expect(health.version).toBeGreaterThan(version);
    expect(health.avoidUntil(address, Date.now())).toBeGreaterThan(Date.now());
    // A new server on the same address: a background probe finds it, and calls go there again.
    const second = await echoServer("second", port);
    await second.server.listen();
    const end = Date.now() + 5000;
    while (health.avoidUntil(address, Date.now()) !== 0 && Date.now() < end) await wait(10);
    expect(health.avoidUntil(address, Date.now())).toBe(0);
    expect((await client.get({})).servedBy).toBe("second");
  });

  it("tcp rolling restart - an address whose connect is refused is avoided for the backoff, then probed", async () => {
    const { server } = await echoServer("x");
    const { address } = await server.listen();
    await server.close({ graceMs: 0 }); // nothing listens there any more
    const live = await echoServer("live");
    const liveAddress = (await live.server.listen()).address;
    const transport = new TcpClientTransport({ backoffBaseMs: 50, backoffMaxMs: 50 });
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints: [{ address }, { address: liveAddress }], retry: {} });
    const health = transport.health;
    // The first pick of the dead address is refused (notSent) and retried on the live one...
    for (let i = 0; i < 4; i++) expect((await client.echo({})).servedBy).toBe("live");
    // ...and from then on the dead address is avoided, then probed again after each backoff.
    expect(health.avoidUntil(address, Date.now())).toBeGreaterThan(Date.now());
    const version = health.version;
    await wait(80);
    expect(health.avoidUntil(address, Date.now())).toBeGreaterThan(Date.now()); // starts a probe
    const end = Date.now() + 5000;
    while (health.version === version && Date.now() < end) await wait(5);
    expect(health.version).toBeGreaterThan(version); // the probe was refused: a new backoff
    expect(health.avoidUntil(address, Date.now())).toBeGreaterThan(Date.now());
  });
});
