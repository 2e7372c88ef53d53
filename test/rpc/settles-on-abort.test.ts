/**
 * A client call ends at its deadline and on its caller's abort, whatever the server does: the
 * package's transports (memory, TCP, gRPC over real sockets on 127.0.0.1; NATS in
 * test/nats/runtime.test.ts) settle as soon as the call's signal aborts and say so
 * (`ClientTransport.settlesOnAbort`), so the runtime does not race their calls; a transport that
 * does not say so is raced at the end of the chain. Also: a TCP call waiting for its connection
 * (a TLS handshake that never comes) is cut by its caller's abort, not held until the connect
 * timeout.
 */
import { createServer as netServer, type Socket } from "node:net";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient, createServer, RpcError, type ClientTransport } from "meridian-rpc";
import { MemoryClientTransport, MemoryNetwork, MemoryServerTransport } from "meridian-rpc/transports/memory";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { GrpcClientTransport, GrpcServerTransport } from "meridian-rpc/transports/grpc";
import { describeWithOpenssl, makeCerts, type TestCerts } from "../support/certs.js";
import { rejection } from "../support/rejection.js";
import { EchoReply, EchoService } from "./gen/echo.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
});

/** A handler that never answers and never looks at its call's cancellation. */
const never = (): Promise<EchoReply> => new Promise<EchoReply>(() => undefined);

/** A server of EchoService whose `echo` never answers, over `kind`; returns a client transport to it and its address. */
async function silentServer(kind: "memory" | "tcp" | "grpc"): Promise<{ transport: ClientTransport; address: string }> {
  const network = new MemoryNetwork();
  const serverTransport =
    kind === "memory"
      ? new MemoryServerTransport({ name: "silent", network })
      : kind === "tcp"
        ? new TcpServerTransport({ host: "127.0.0.1" })
        : new GrpcServerTransport({ host: "127.0.0.1", services: [EchoService] });
  const server = createServer({ transport: serverTransport, metrics: false, logger: { error: () => undefined } });
  server.register(EchoService, { echo: never });
  const { address } = await server.listen();
  cleanup.push(() => server.close({ graceMs: 0 }));
  const transport = kind === "memory" ? new MemoryClientTransport({ network }) : kind === "tcp" ? new TcpClientTransport() : new GrpcClientTransport();
  cleanup.push(() => transport.close());
  return { transport, address };
}

/** How long `p` takes to reject, and with what. */
async function timed(p: Promise<unknown>): Promise<{ err: RpcError; ms: number }> {
  const t0 = performance.now();
  const err = await rejection(p);
  return { err, ms: performance.now() - t0 };
}

describe("settles on abort", () => {
  for (const kind of ["memory", "tcp", "grpc"] as const) {
    it(`settles on abort - ${kind}: says it settles; a call ends at its deadline and on its caller's abort while the handler never answers`, async () => {
      const { transport, address } = await silentServer(kind);
      expect(transport.settlesOnAbort).toBe(true);
      const client = createClient(EchoService, { transport, endpoints: [{ address }] });
      await client.echo({}, { timeoutMs: 1 }).catch(() => undefined); // connects

      const late = await timed(client.echo({ text: "a" }, { timeoutMs: 80 }));
      expect(late.err.code).toBe(Code.DEADLINE_EXCEEDED);
      expect(late.ms).toBeGreaterThanOrEqual(70);
      expect(late.ms).toBeLessThan(2000);

      const caller = new AbortController();
      setTimeout(() => caller.abort(), 40);
      const cut = await timed(client.echo({ text: "b" }, { timeoutMs: 10_000, signal: caller.signal }));
      expect(cut.err.code).toBe(Code.CANCELLED);
      expect(cut.ms).toBeLessThan(2000);
    });
  }

  it("settles on abort - a transport that says so is not raced: the call ends with the transport's own error", async () => {
    const own = new RpcError(Code.UNAVAILABLE, "the transport's own answer to the abort");
    const transport = (settlesOnAbort: boolean): ClientTransport => ({
      settlesOnAbort,
      unary: (req) => new Promise((_, reject) => req.signal.addEventListener("abort", () => reject(own))),
      close: async () => undefined,
    });
    const trusted = createClient(EchoService, { transport: transport(true), endpoints: [{ address: "x" }] });
    expect(await rejection(trusted.echo({}, { timeoutMs: 20 }))).toBe(own);
    // Raced: the abort's own error wins, the transport's comes later and is dropped.
    const raced = createClient(EchoService, { transport: transport(false), endpoints: [{ address: "x" }] });
    expect(await rejection(raced.echo({}, { timeoutMs: 20 }))).toMatchObject({ code: Code.DEADLINE_EXCEEDED, message: "deadline exceeded" });
  });

  it("settles on abort - a transport that never settles and does not say it does still ends at the deadline and on abort", async () => {
    const transport: ClientTransport = { unary: () => new Promise(() => undefined), close: async () => undefined };
    const client = createClient(EchoService, { transport, endpoints: [{ address: "x" }] });
    const late = await timed(client.echo({}, { timeoutMs: 50 }));
    expect(late.err).toMatchObject({ code: Code.DEADLINE_EXCEEDED, notSent: false });
    expect(late.ms).toBeGreaterThanOrEqual(40);
    const caller = new AbortController();
    setTimeout(() => caller.abort(), 20);
    expect(await rejection(client.echo({}, { signal: caller.signal }))).toMatchObject({ code: Code.CANCELLED });
  });

  it("settles on abort - a transport that times its calls gets no deadline timer of the context's: its own ends the call, unless something follows the call's signal", async () => {
    const signals: unknown[] = [];
    // Rejects at the request's deadline plus 300 ms with an error of its own, or on an abort.
    const transport: ClientTransport = {
      settlesOnAbort: true,
      timesCalls: true,
      unary: (req) => {
        signals.push(req.signal);
        return new Promise((_, reject) => {
          const timer = setTimeout(() => reject(new RpcError(Code.DEADLINE_EXCEEDED, "the transport's own deadline")), req.deadline! - Date.now() + 300);
          req.signal.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(new RpcError(Code.CANCELLED, "aborted"));
          });
        });
      },
      close: async () => undefined,
    };
    const client = createClient(EchoService, { transport, endpoints: [{ address: "x" }] });
    const own = await timed(client.echo({}, { timeoutMs: 30 }));
    expect(own.err.message).toBe("the transport's own deadline");
    expect(own.ms).toBeGreaterThanOrEqual(300);
    // A caller's abort still reaches the transport.
    const caller = new AbortController();
    setTimeout(() => caller.abort(), 20);
    expect(await rejection(client.echo({}, { timeoutMs: 10_000, signal: caller.signal }))).toMatchObject({ code: Code.CANCELLED });
    // A middleware that follows the call's signal arms its deadline: the call ends at it.
    const follows = createClient(EchoService, {
      transport,
      endpoints: [{ address: "x" }],
      middleware: [(next) => (req) => (req.ctx.signal, next(req))],
    });
    const armed = await timed(follows.echo({}, { timeoutMs: 30 }));
    expect(armed.err.message).toBe("aborted");
    expect(armed.ms).toBeLessThan(300);
    // A call whose deadline passed before it could be sent (a middleware took that long) never
    // reaches the transport, nor the breakers in between.
    const before = signals.length;
    const slow = createClient(EchoService, {
      transport,
      endpoints: [{ address: "x" }],
      middleware: [(next) => async (req) => (await new Promise((resolve) => setTimeout(resolve, 40)), next(req))],
    });
    expect(await rejection(slow.echo({}, { timeoutMs: 20 }))).toMatchObject({ code: Code.DEADLINE_EXCEEDED, notSent: true });
    expect(signals.length).toBe(before);
  });

  it("settles on abort - a resolver that never answers does not hold the call past its deadline; the error says it was not sent", async () => {
    const transport: ClientTransport = { settlesOnAbort: true, unary: () => Promise.reject(new Error("not reached")), close: async () => undefined };
    const client = createClient(EchoService, { transport, resolver: { resolve: () => new Promise(() => undefined) } });
    const late = await timed(client.echo({}, { timeoutMs: 50 }));
    expect(late.err).toMatchObject({ code: Code.DEADLINE_EXCEEDED, notSent: true });
    expect(late.ms).toBeLessThan(2000);
  });
});

describeWithOpenssl("settles on abort - tcp connection wait", () => {
  let c: TestCerts;
  beforeAll(() => {
    c = makeCerts()!;
  }, 60_000);

  it("settles on abort - a TCP call waiting for its connection ends on its caller's abort, not at the connect timeout", async () => {
    // Accepts and never answers the TLS handshake: the client's connection never becomes ready.
    const sockets: Socket[] = [];
    const silent = netServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    cleanup.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });
    const port = (silent.address() as { port: number }).port;
    const transport = new TcpClientTransport({ tls: { ca: c.ca }, connectTimeoutMs: 10_000 });
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints: [{ address: `127.0.0.1:${port}` }] });
    const caller = new AbortController();
    setTimeout(() => caller.abort(), 50);
    const cut = await timed(client.echo({}, { timeoutMs: 10_000, signal: caller.signal }));
    expect(cut.err).toMatchObject({ code: Code.CANCELLED, notSent: true });
    expect(cut.ms).toBeLessThan(2000);
    // A deadline cuts the wait the same way.
    const late = await timed(client.echo({}, { timeoutMs: 80 }));
    expect(late.err).toMatchObject({ code: Code.DEADLINE_EXCEEDED, notSent: true });
    expect(late.ms).toBeLessThan(2000);
  });
});
