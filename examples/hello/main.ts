/**
 * hello: a Meridian server and client over TCP in one process.
 *
 *   npm run example:hello
 *
 * The server listens on a free port of 127.0.0.1; the client calls SayHello there and prints
 * the answer and where it was served; then both shut down gracefully.
 */
import { HeaderKeys, createClient, createServer, type Headers } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { Greeter } from "./gen/hello.js";

const server = createServer({ transport: new TcpServerTransport({ port: 0 }), region: "local" });
server.register(Greeter, {
  sayHello: (req, ctx) => ({ message: `hello, ${req.name} (from ${ctx.region ?? "somewhere"})` }),
});
const { address } = await server.listen();
console.log(`server: listening on ${address}`);

const transport = new TcpClientTransport();
const greeter = createClient(Greeter, { transport, endpoints: [{ address }], region: "here", timeoutMs: 1000 });

let headers: Headers = {};
const reply = await greeter.sayHello({ name: "Meridian" }, { onHeaders: (h) => (headers = h) });
console.log(`client: ${reply.message}`);
console.log(`client: served by region ${headers[HeaderKeys.servedRegion]}`);

await transport.close();
await server.close({ graceMs: 1000 });
console.log("done");
