// A plain-JavaScript user of the installed package (no TypeScript build step): code generated
// with `meridian gen --target js,dts`, a Greeter server and client over the memory transport.
import { Code, RpcError, createClient, createServer } from "meridian-rpc";
import { MemoryClientTransport, MemoryNetwork, MemoryServerTransport } from "meridian-rpc/transports/memory";
import { Timestamp } from "meridian-rpc/wkt";
import { Greeter, HelloReply } from "./gen-js/hello.js";

const network = new MemoryNetwork();
const server = createServer({ transport: new MemoryServerTransport({ network }), region: "here" });
server.register(Greeter, {
  sayHello: (req) => {
    if (req.name === "") throw new RpcError(Code.INVALID_ARGUMENT, "a name, please");
    return { message: `hello, ${req.name}`, at: Timestamp.create({ seconds: 2n }) };
  },
});
const { address } = await server.listen();
const transport = new MemoryClientTransport({ network });
const client = createClient(Greeter, { transport, region: "here", timeoutMs: 5000, endpoints: [{ address }] });
const reply = await client.sayHello({ name: "js" });
const bytes = HelloReply.encode(reply);
console.log(`js: ${reply.message} at ${reply.at?.seconds}; ${bytes.length} bytes; decoded ${HelloReply.decode(bytes).message}`);
await transport.close();
await server.close({ graceMs: 500 });
