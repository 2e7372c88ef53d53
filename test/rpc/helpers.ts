/**
 * Shared set-up of the RPC runtime tests: echo servers on an isolated in-process network, and
 * clients of them.
 */
import { expect } from "vitest";
import {
  Metainfo,
  createClient,
  createServer,
  type CallContext,
  type Client,
  type ClientOptions,
  type Handlers,
  type Logger,
  type Server,
  type ServerOptions,
} from "meridian-rpc";
import { MemoryNetwork, MemoryClientTransport, MemoryServerTransport } from "meridian-rpc/transports/memory";
import { EchoService, type EchoReply, type EchoRequest } from "./gen/echo.js";
import { sleep } from "meridian-rpc/transport";

/** A running echo server and what it saw. */
export interface EchoServer {
  readonly server: Server;
  readonly address: string;
  readonly name: string;
  /** Every call it handled, in order, with the context it ran in. */
  readonly calls: { method: string; request: EchoRequest; ctx: CallContext }[];
  /** Errors its logger received. */
  readonly logged: { message: string; details: Record<string, unknown> }[];
}

/**
 * Echoes the text after `delayMs` (cut short by the call's signal), saying who served it. Watch
 * (server-streaming) answers with three such replies.
 */
export function echoHandlers(name: string, calls: EchoServer["calls"]): Handlers<typeof EchoService> {
  const handle = (method: string) => async (request: EchoRequest, ctx: CallContext): Promise<Partial<EchoReply>> => {
    calls.push({ method, request, ctx });
    if (request.delayMs > 0) await sleep(request.delayMs, ctx.signal);
    return { text: request.text, servedBy: name, count: calls.length };
  };
  async function* watch(request: EchoRequest, ctx: CallContext): AsyncGenerator<Partial<EchoReply>> {
    calls.push({ method: "Watch", request, ctx });
    for (let i = 1; i <= 3; i++) {
      if (request.delayMs > 0) await sleep(request.delayMs, ctx.signal);
      yield { text: request.text, servedBy: name, count: i };
    }
  }
  return { echo: handle("Echo"), get: handle("Get"), put: handle("Put"), watch };
}

/**
 * Makes one typed Echo call through `client` (of region "cn-north", consistency "linearizable")
 * to a server "a" of region "cn-east" that records into `calls`, and checks what crossed the wire:
 * the reply, the served region, and the handler's context (region, consistency, persistent
 * metainfo, deadline, and a `peer` matching the transport's form).
 */
export async function expectContextCarried(client: Client<typeof EchoService>, calls: EchoServer["calls"], peer: RegExp): Promise<void> {
  const metainfo = new Metainfo();
  metainfo.setPersistent("TRACE", "t-1");
  let served: Record<string, string> = {};
  const reply = await client.echo({ text: "你好" }, { metainfo, onHeaders: (h) => (served = h), timeoutMs: 2000 });
  expect(reply.text).toBe("你好");
  expect(reply.servedBy).toBe("a");
  expect(served["x-served-region"]).toBe("cn-east");
  const ctx = calls[0]!.ctx;
  expect(ctx.region).toBe("cn-north");
  expect(ctx.consistency).toBe("linearizable");
  expect(ctx.metainfo.getPersistent("TRACE")).toBe("t-1");
  expect(ctx.peer).toMatch(peer);
  expect(ctx.deadline! - Date.now()).toBeGreaterThan(1000);
}

/** A test bed: one isolated network, and everything started on it closed by `close()`. */
export class Bed {
  readonly network = new MemoryNetwork();
  private readonly servers: Server[] = [];
  private serial = 0;

  /** Starts an echo server (handlers overridable) with extra server options. */
  async echo(options: Partial<ServerOptions> = {}, handlers: Partial<Handlers<typeof EchoService>> = {}): Promise<EchoServer> {
    const name = `echo-${++this.serial}`;
    const calls: EchoServer["calls"] = [];
    const logged: EchoServer["logged"] = [];
    const logger: Logger = { error: (message, details) => logged.push({ message, details }) };
    const server = createServer({ logger, ...options, transport: new MemoryServerTransport({ name, network: this.network }) });
    server.register(EchoService, { ...echoHandlers(name, calls), ...handlers });
    const { address } = await server.listen();
    this.servers.push(server);
    return { server, address, name, calls, logged };
  }

  /** Starts a server with the given set-up, on this network. */
  async server(options: Partial<ServerOptions>, setup: (server: Server) => void): Promise<{ server: Server; address: string }> {
    const server = createServer({ ...options, transport: new MemoryServerTransport({ name: `srv-${++this.serial}`, network: this.network }) });
    setup(server);
    const { address } = await server.listen();
    this.servers.push(server);
    return { server, address };
  }

  /** A client of EchoService calling `address` (or the given endpoints). */
  client(address: string | undefined, options: Partial<ClientOptions> = {}): Client<typeof EchoService> {
    return createClient(EchoService, {
      ...options,
      transport: new MemoryClientTransport({ address, network: this.network }),
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.splice(0).map((s) => s.close({ graceMs: 0 })));
  }
}

/** Timeouts past setTimeout's range (2^31 - 1 ms), each a deadline however far: for the deadline-range tests. */
export const HUGE_TIMEOUTS = [2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER, 1e300] as const;

/** Collects process warnings while a test runs. */
export function watchWarnings(): { readonly warnings: Error[]; stop(): void } {
  const warnings: Error[] = [];
  const listener = (w: Error): void => void warnings.push(w);
  process.on("warning", listener);
  return { warnings, stop: () => process.off("warning", listener) };
}
