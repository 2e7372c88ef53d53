/**
 * The module `meridian serve` runs in test/cluster/serve.test.ts: an Echo server that answers with
 * its worker's process id, on the port in SERVE_PORT (0: any).
 */
import { createServer } from "meridian-rpc";
import { TcpServerTransport } from "meridian-rpc/transports/tcp";
import { EchoService } from "../rpc/gen/echo.js";

export default () =>
  createServer({ transport: new TcpServerTransport({ host: "127.0.0.1", port: Number(process.env.SERVE_PORT ?? 0) }), logger: { error: () => {} } }).register(EchoService, {
    echo: () => ({ text: String(process.pid) }),
  });

export const notAFunction = 42;
