/**
 * A freshly started Meridian server with the default admission control, in its own process (so
 * that its reads and its run queue are not interleaved with the client's work). EchoService's
 * echo waits 100 ms on a timer, as a handler waiting on I/O would; with the argument `spin` it
 * computes for 1 ms instead (the server serves about 1000 calls a second). Prints its address as
 * one JSON line.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createServer } from "meridian-rpc";
import { TcpServerTransport } from "meridian-rpc/transports/tcp";
import { EchoService } from "../rpc/gen/echo.js";

const computes = process.argv[2] === "spin";
const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), metrics: false, logger: { error: () => {} } });
server.register(EchoService, {
  echo: async (req) => {
    if (computes) {
      const end = performance.now() + 1;
      while (performance.now() < end);
    } else await sleep(100);
    return { text: req.text };
  },
});
const { address } = await server.listen();
process.stdout.write(`${JSON.stringify({ address })}\n`);
