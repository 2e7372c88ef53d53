/**
 * The server the adversary suite attacks, in its own process: the echo service of
 * echo-server.ts on a TcpServerTransport with default options. Prints `{ address, pid }` as one
 * JSON line; answers each "stats" line on stdin with the transport's stats as one JSON line. An
 * unhandled rejection or exception ends it, as Node does by default: the suite checks it is alive.
 */
import { createInterface } from "node:readline";
import { startEchoServer } from "./echo-server.js";

const { transport, address } = await startEchoServer();
process.stdout.write(`${JSON.stringify({ address, pid: process.pid })}\n`);
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "stats") process.stdout.write(`${JSON.stringify(transport.stats)}\n`);
});
process.stdin.on("end", () => process.exit(0));
