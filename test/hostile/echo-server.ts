/**
 * The service the hostile tests attack: bench.Echo (bench/rpc/service.ts) on the real runtime
 * (createServer, so unknown methods and bad payloads take the framework's own error paths) over
 * a TcpServerTransport. Echo answers its Ping after `seq` ms (at most 10 s); Feed answers the
 * benchmark's 20-item feed.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createServer, type Server } from "meridian-rpc";
import { EchoService, meridianMessages } from "../../bench/rpc/service.js";
import { TcpServerTransport, type TcpServerOptions } from "meridian-rpc/transports/tcp";

/** A running echo server and its transport (for its stats). */
export interface EchoServer {
  server: Server;
  transport: TcpServerTransport;
  address: string;
}

/** Starts the echo service on 127.0.0.1 with `options` (the defaults unless given). */
export async function startEchoServer(options: TcpServerOptions = {}): Promise<EchoServer> {
  const transport = new TcpServerTransport({ host: "127.0.0.1", ...options });
  const { feed } = meridianMessages();
  const server = createServer({ transport, logger: { error: () => undefined } }).register(EchoService, {
    echo: async (req) => {
      if (req.seq > 0n) await sleep(Math.min(10_000, Number(req.seq)));
      return req;
    },
    feed: async () => feed,
  });
  const { address } = await server.listen();
  return { server, transport, address };
}
