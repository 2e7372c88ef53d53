/**
 * The worker-thread pool for CPU-heavy handlers: runs off the event loop, bounded, deadlines
 * honoured, a crashed thread answered INTERNAL and replaced; and as a handler of a real server.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Code, RpcError, createClient, createServer, WorkerPool, offloaded } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { EchoService, type EchoRequest, type EchoReply } from "./gen/echo.js";

const fixture = new URL("./offload-fixture.mjs", import.meta.url);
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
});

function pool(options: { threads?: number; maxQueued?: number } = {}): WorkerPool<{ text: string }, { text: string }> {
  const p = new WorkerPool<{ text: string }, { text: string }>({ module: fixture, threads: 1, ...options });
  cleanup.push(() => p.close());
  return p;
}

const failure = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);

describe("offload", () => {
  it("offload - runs on another thread while the event loop stays free", async () => {
    const p = pool();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const out = await p.run({ text: "spin:300" });
    clearInterval(timer);
    expect(out.text).toMatch(/^spin:300 on thread [1-9]/);
    expect(ticks).toBeGreaterThan(10); // 300 ms of CPU, and the loop kept ticking
  });

  it("offload - past its threads and maxQueued, a call is refused with RESOURCE_EXHAUSTED", async () => {
    const p = pool({ maxQueued: 1 });
    const a = p.run({ text: "spin:100" });
    const b = p.run({ text: "b" });
    const c = (await failure(p.run({ text: "c" }))) as RpcError;
    expect(c.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(c.message).toMatch(/maxQueued/);
    expect((await a).text).toMatch(/^spin:100/);
    expect((await b).text).toMatch(/^b on/);
  });

  it("offload - a call whose deadline passes while it waits never runs; one still running at its deadline is answered and its thread replaced", async () => {
    const p = pool();
    const busy = p.run({ text: "spin:200" });
    const waiting = failure(p.run({ text: "late" }, Date.now() + 20));
    expect(((await failure(p.run({ text: "x" }, Date.now() - 1))) as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
    await busy;
    expect(((await waiting) as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
    expect(((await waiting) as RpcError).message).toMatch(/before a worker thread was free/);
    const running = (await failure(p.run({ text: "spin:5000" }, Date.now() + 100))) as RpcError;
    expect(running.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(running.message).toMatch(/thread was replaced/);
    expect(p.replaced).toBe(1);
    expect((await p.run({ text: "after" })).text).toMatch(/^after on/);
  });

  it("offload - a thread that crashes answers INTERNAL and is replaced; errors thrown keep their code", async () => {
    const p = pool();
    const crash = (await failure(p.run({ text: "crash" }))) as RpcError;
    expect(crash.code).toBe(Code.INTERNAL);
    expect(crash.message).toBe("internal error");
    expect(p.replaced).toBe(1);
    expect((await p.run({ text: "again" })).text).toMatch(/^again on/);
    const refused = (await failure(p.run({ text: "refuse" }))) as RpcError;
    expect(refused).toBeInstanceOf(RpcError);
    expect(refused.code).toBe(Code.NOT_FOUND);
    const bug = (await failure(p.run({ text: "bug" }))) as Error;
    expect(bug).not.toBeInstanceOf(RpcError);
    expect(bug.name).toBe("TypeError");
  });

  it("offload - as a method's handler on a real server; a thrown bug is answered INTERNAL", async () => {
    const p = new WorkerPool<EchoRequest, EchoReply>({ module: fixture, threads: 2 });
    cleanup.push(() => p.close());
    const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), metrics: false, logger: { error: () => {} } });
    server.register(EchoService, { echo: offloaded(p) });
    const { address } = await server.listen();
    cleanup.push(() => server.close({ graceMs: 0 }));
    const transport = new TcpClientTransport();
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs: 10_000 });
    const outs = await Promise.all(Array.from({ length: 8 }, (_, i) => client.echo({ text: `c${i}` })));
    for (const [i, o] of outs.entries()) expect(o.text).toMatch(new RegExp(`^c${i} on thread [1-9]`));
    const bug = (await failure(client.echo({ text: "bug" }))) as RpcError;
    expect(bug.code).toBe(Code.INTERNAL);
  });
});
