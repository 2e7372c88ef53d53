/**
 * Overload behaviour of a real server over TCP: the run queue decides admission as calls are
 * read, so refusals do not wait behind queued handlers, and only admitted calls run.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Code, RpcError, createClient, createServer, type ServerOptions, HeaderKeys } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { EchoService } from "./gen/echo.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
});

/** Busy-waits `ms` of CPU, as a handler that computes would. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** A TCP server whose Echo handler burns `cpuMs`; counts the handlers run. */
async function cpuServer(cpuMs: number, options: Partial<ServerOptions> = {}) {
  const stats = { ran: 0 };
  const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), metrics: false, logger: { error: () => {} }, ...options });
  server.register(EchoService, {
    echo: (req) => {
      stats.ran++;
      spin(cpuMs);
      return { text: req.text };
    },
  });
  const { address } = await server.listen();
  cleanup.push(() => server.close({ graceMs: 0 }));
  const transport = new TcpClientTransport();
  cleanup.push(() => transport.close());
  const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs: 20_000, requeue: false });
  return { client, stats };
}

/** The starts a run queue sees before it predicts waits (RunQueue's WARM_STARTS). */
const WARM_CALLS = 512;

/** Makes WARM_CALLS calls one after another, so that the server predicts how long queued calls wait. */
async function warm(client: { echo(req: { text: string }): Promise<unknown> }): Promise<void> {
  for (let i = 0; i < WARM_CALLS; i++) await client.echo({ text: "warm" });
}

describe("overload", () => {
  it("overload - a burst past what the queue can serve in time is refused as it is read, before the queued handlers have run", async () => {
    // A long interval, so that a stall of this (shared, loaded) machine cannot shed the first calls.
    const { client, stats } = await cpuServer(5, { admission: { intervalMs: 500 } });
    await warm(client); // the server learns how long a handler takes
    const t0 = performance.now();
    const outcomes = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        // A 2 s timeout: a quarter of it is the interval, so the interval is what a call may wait.
        client.echo({ text: `c${i}` }, { timeoutMs: 2000 }).then(
          () => ({ ok: true, at: performance.now() - t0, err: undefined }),
          (e: unknown) => ({ ok: false, at: performance.now() - t0, err: e as RpcError }),
        ),
      ),
    );
    const ok = outcomes.filter((o) => o.ok);
    const refused = outcomes.filter((o) => !o.ok);
    // The queue takes what it can start within intervalMs (500 ms: about a hundred 5 ms handlers).
    expect(refused.length).toBeGreaterThan(100);
    expect(ok.length).toBeGreaterThan(0);
    expect(stats.ran).toBe(WARM_CALLS + ok.length);
    for (const o of refused) {
      expect(o.err?.code).toBe(Code.RESOURCE_EXHAUSTED);
      expect(o.err?.notSent).toBe(true);
      expect(o.err?.headers[HeaderKeys.queueDelay]).toBeDefined();
    }
    // Refusals came back while admitted handlers were still queued, not after them.
    const lastOk = Math.max(...ok.map((o) => o.at));
    const refusedLate = refused.filter((o) => o.at >= lastOk);
    expect(refusedLate.length).toBeLessThan(refused.length / 10);
  });

  it("overload - a call whose deadline the queue ahead of it would pass is refused DEADLINE_EXCEEDED at once and never runs", async () => {
    // A long interval: nothing here is shed for waiting, however slow the machine.
    const { client, stats } = await cpuServer(5, { admission: { intervalMs: 5000 } });
    await warm(client);
    const slow = Array.from({ length: 40 }, (_, i) => client.echo({ text: `s${i}` }));
    // Read with them: s0 starts at once, s1 to s39 are queued ahead of it, and 195 ms of
    // handlers plus its own start are past its 100 ms. The refusal comes when it is read, before
    // the client would give up by itself.
    const doomed = await client.echo({ text: "doomed" }, { timeoutMs: 100 }).then(
      () => undefined,
      (e: unknown) => e as RpcError,
    );
    await Promise.all(slow);
    expect(doomed?.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(doomed?.message).toMatch(/would pass before its handler could start/);
    expect(doomed?.notSent).toBe(true);
    expect(stats.ran).toBe(WARM_CALLS + 40);
  });
});
