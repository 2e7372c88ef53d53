/**
 * nats: request/reply across two regions through NATS gateways.
 *
 *   npm run example:nats      (needs nats-server: `bash scripts/setup.sh` installs Debian's)
 *
 * Two nats-servers, eu-west and us-east, joined by a gateway (test/support/nats-cluster.ts starts
 * them on free ports; in production you point the transports at your own servers). The service
 * runs in both regions in one queue group; a client in eu-west talks to its local server only:
 *
 * 1. NATS hands each request to an instance in the caller's cluster when there is one;
 * 2. with the eu-west instance gone, the same requests cross the gateway to us-east;
 * 3. with no instance anywhere, the call fails fast with UNAVAILABLE ("no responders"), never a
 *    timeout.
 */
import { Code, HeaderKeys, RpcError, createClient, createServer, type Headers, type Server } from "meridian-rpc";
import { startNatsCluster } from "../../test/support/nats-cluster.js";
import { NatsClientTransport, NatsServerTransport } from "meridian-rpc/transports/nats";
import { Quotes } from "./gen/quotes.js";

const cluster = await startNatsCluster({ regions: ["eu-west", "us-east"] });
console.log(`nats: eu-west at ${cluster.url("eu-west")}, us-east at ${cluster.url("us-east")}, joined by a gateway`);

/** One instance of the Quotes service in a region, connected to that region's NATS server. */
async function quotesIn(region: string): Promise<Server> {
  const server = createServer({ transport: new NatsServerTransport({ servers: cluster.url(region), services: [Quotes] }), region });
  server.register(Quotes, {
    getQuote: (req) => ({ symbol: req.symbol, priceCents: 12_345, quotedIn: region }),
  });
  await server.listen();
  return server;
}

const transport = new NatsClientTransport({ servers: cluster.url("eu-west") });
const quotes = createClient(Quotes, { transport, region: "eu-west", timeoutMs: 2000 });

/** Calls once and prints who answered and how long it took. */
async function ask(what: string): Promise<void> {
  let headers: Headers = {};
  const started = performance.now();
  try {
    const q = await quotes.getQuote({ symbol: "MRDN" }, { onHeaders: (h) => (headers = h) });
    console.log(`${what.padEnd(30)} ${q.symbol} ${(q.priceCents / 100).toFixed(2)}, served in ${headers[HeaderKeys.servedRegion]} (${(performance.now() - started).toFixed(1)} ms)`);
  } catch (e) {
    if (!(e instanceof RpcError) || e.code !== Code.UNAVAILABLE) throw e;
    console.log(`${what.padEnd(30)} ${e.codeName} after ${(performance.now() - started).toFixed(1)} ms: ${e.message}`);
  }
}

try {
  const us = await quotesIn("us-east");
  const eu = await quotesIn("eu-west");
  await ask("1. instances in both regions:");
  await eu.close({ graceMs: 500 });
  // Gateways learn about interest in other clusters asynchronously: give it a moment.
  await new Promise((resolve) => setTimeout(resolve, 200));
  await ask("2. eu-west's instance stopped:");
  await us.close({ graceMs: 500 });
  await new Promise((resolve) => setTimeout(resolve, 200));
  await ask("3. no instance anywhere:");
} finally {
  await transport.close();
  await cluster.stop();
}
console.log("done");
