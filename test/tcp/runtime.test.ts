/**
 * The TCP transport under the real framework: createClient / createServer over 127.0.0.1.
 */
import { setTimeout as wait } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { createClient, createServer, type ClientOptions, type Server } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { EchoService, type EchoRequest } from "../rpc/gen/echo.js";
import { echoHandlers, type EchoServer } from "../rpc/helpers.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function tcpServer(name: string, handlers: Parameters<Server["register"]>[1] = {}, region = "cn-east") {
  const calls: EchoServer["calls"] = [];
  const logged: unknown[] = [];
  const server = createServer({
    transport: new TcpServerTransport({ host: "127.0.0.1" }),
    region,
    logger: { error: (message, details) => logged.push({ message, details }) },
  });
  server.register(EchoService, { ...echoHandlers(name, calls), ...handlers });
  const { address } = await server.listen();
  cleanup.push(() => server.close({ graceMs: 0 }));
  return { server, address, calls, logged };
}

function tcpClient(addresses: string[], options: Partial<ClientOptions> = {}) {
  const transport = new TcpClientTransport({ backoffBaseMs: 10, backoffMaxMs: 50 });
  cleanup.push(() => transport.close());
  const client = createClient(EchoService, {
    transport,
    endpoints: addresses.map((address) => ({ address })),
    region: "cn-north",
    ...options,
  });
  return { client, transport };
}

describe("tcp runtime - createClient / createServer", () => {
  it("tcp runtime - a server killed and restarted: calls recover", async () => {
    const first = await tcpServer("first");
    const { client } = tcpClient([first.address]);
    expect((await client.get({})).servedBy).toBe("first");
    await first.server.close({ graceMs: 0 });
    const port = Number(first.address.split(":")[1]);
    const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1", port }) });
    server.register(EchoService, echoHandlers("second", []));
    await server.listen();
    cleanup.push(() => server.close({ graceMs: 0 }));
    const end = Date.now() + 3000;
    let servedBy = "";
    while (servedBy !== "second" && Date.now() < end) {
      servedBy = await client.get({}).then(
        (r) => r.servedBy,
        () => "",
      );
      if (servedBy === "") await wait(10);
    }
    expect(servedBy).toBe("second");
  });
});

// keep the type import used
export type _Req = EchoRequest;
