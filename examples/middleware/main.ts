/**
 * middleware: logging, an auth header and retries, on both sides of a call.
 *
 *   npm run example:middleware
 *
 * One middleware type serves clients and servers: `(next) => (req) => ...`, the first in a list
 * the outermost. User middleware runs outside Meridian's own (timeout, retry, load balancing),
 * so the client's logger sees one call with its total time while the server's sees every
 * attempt. The server's auth middleware puts the caller into a typed context key the handler
 * reads. docs/governance.md has the full order.
 */
import { Code, RpcError, createClient, createContextKey, createServer, type Middleware } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { Inventory } from "./gen/inventory.js";

const TOKENS: Record<string, string> = { "secret-token-of-ada": "ada" };

/** Logs every call it sees: side, method, attempt, outcome and time. */
function logging(side: "client" | "server"): Middleware {
  return (next) => async (req) => {
    const started = performance.now();
    const what = `${side}: ${req.method.name}${side === "server" ? "" : ` (${JSON.stringify(req.message)})`}`;
    try {
      const res = await next(req);
      console.log(`${what} -> ok in ${(performance.now() - started).toFixed(1)} ms`);
      return res;
    } catch (e) {
      const err = RpcError.from(e);
      console.log(`${what} -> ${err.codeName} "${err.message}" in ${(performance.now() - started).toFixed(1)} ms`);
      throw e;
    }
  };
}

/** Client side: adds the caller's token to every call. */
function bearer(token: string): Middleware {
  return (next) => (req) => {
    req.headers["authorization"] = `Bearer ${token}`;
    return next(req);
  };
}

/** Who is calling, as the server's auth middleware found out (typed per-call state). */
const callerKey = createContextKey<string>("anonymous", { description: "caller" });

/** Server side: refuses calls without a known token; tells the handler who called. */
const auth: Middleware = (next) => (req) => {
  const token = /^Bearer (.+)$/.exec(req.headers["authorization"] ?? "")?.[1];
  const caller = token === undefined ? undefined : TOKENS[token];
  if (caller === undefined) throw new RpcError(Code.UNAUTHENTICATED, "missing or unknown bearer token: send `authorization: Bearer <token>`");
  req.ctx.values.set(callerKey, caller);
  return next(req);
};

// The server: logging outermost (it sees refused calls too), then auth. The handler fails the
// first two calls with UNAVAILABLE, as a server that is still warming up would.
let warmingUp = 2;
const server = createServer({ transport: new TcpServerTransport({ port: 0 }), middleware: [logging("server"), auth] });
server.register(Inventory, {
  getStock(req, ctx) {
    if (warmingUp > 0) {
      warmingUp--;
      throw new RpcError(Code.UNAVAILABLE, "warming up, try again");
    }
    return { sku: req.sku, quantity: 42, caller: ctx.values.get(callerKey) };
  },
});
const { address } = await server.listen();
const transport = new TcpClientTransport();

console.log("1. a client without a token: refused, and not retried (UNAUTHENTICATED is not retryable)");
const anonymous = createClient(Inventory, { transport, endpoints: [{ address }], middleware: [logging("client")], retry: {}, timeoutMs: 1000 });
try {
  await anonymous.getStock({ sku: "umbrella" });
  throw new Error("the call without a token should have been refused");
} catch (e) {
  if (!(e instanceof RpcError) || e.code !== Code.UNAUTHENTICATED) throw e;
}

console.log("\n2. with a token and retries: the server is warming up, the client retries (GetStock has no side effects)");
const inventory = createClient(Inventory, {
  transport,
  endpoints: [{ address }],
  middleware: [logging("client"), bearer("secret-token-of-ada")],
  retry: { maxAttempts: 3, initialBackoffMs: 20 },
  timeoutMs: 2000,
});
const stock = await inventory.getStock({ sku: "umbrella" });
console.log(`   ${stock.quantity} x ${stock.sku} in stock, asked by ${stock.caller}`);

await transport.close();
await server.close({ graceMs: 1000 });
console.log("\ndone");
