/**
 * Run by pretenuring.test.ts in a child started with `--max-semi-space-size=1 --expose-gc
 * --allow-natives-syntax`: a young generation always at its largest, the condition under which V8
 * moves what an allocation site creates to the old generation once a collection finds most of it
 * alive. A fresh client and server take three bursts of 2000 calls held in flight across minor
 * collections (what a deploy's first traffic does), then 1280 ordinary calls, on both of which
 * every per-call object the runtime makes (request, response, reply, the messages) is checked to
 * be born young. Prints a JSON line: what was found in the old generation, and whether the
 * bursts did pretenure a literal of this file that lives as long as a call (the control: without
 * it, a run where V8 decided nothing would pass for nothing).
 */
import { createClient, createServer, type Middleware, type ServerTransport } from "meridian-rpc";
import type { CallDispatcher, StreamDispatcher } from "meridian-rpc/transport";
import { MemoryClientTransport, MemoryNetwork, MemoryServerTransport } from "meridian-rpc/transports/memory";
import { EchoService } from "./gen/echo.js";

const inYoungGeneration = new Function("o", "return %InYoungGeneration(o)") as (o: unknown) => boolean;
const gc = (globalThis as { gc?: (options: { type: "minor" }) => void }).gc;
if (gc === undefined) throw new Error("run with --expose-gc");

const old: Record<string, number> = {};
let probing = false;
const probe = (what: string, o: unknown): void => {
  if (probing && typeof o === "object" && o !== null && !inYoungGeneration(o)) old[what] = (old[what] ?? 0) + 1;
};
const watch =
  (side: string): Middleware =>
  (next) =>
  (req) => {
    probe(`${side} request`, req);
    probe(`${side} request message`, req.message);
    return next(req).then((res) => {
      probe(`${side} response`, res);
      probe(`${side} response message`, res.message);
      return res;
    });
  };

/** The memory server transport, with the server's replies probed on their way out. */
class ProbedServer implements ServerTransport {
  constructor(private readonly inner: MemoryServerTransport) {}
  listen(dispatch: CallDispatcher, streams?: StreamDispatcher): Promise<{ address: string }> {
    return this.inner.listen(
      (call) =>
        dispatch(call).then((reply) => {
          probe("server reply", reply);
          return reply;
        }),
      streams,
    );
  }
  close(graceMs: number): Promise<void> {
    return this.inner.close(graceMs);
  }
}

let gate: Promise<void> | undefined;
let controlOld = 0;
const network = new MemoryNetwork();
const server = createServer({
  transport: new ProbedServer(new MemoryServerTransport({ name: "echo", network })),
  admission: false,
  middleware: [watch("server")],
}).register(EchoService, {
  echo: async (req) => {
    // The control: a literal of this file that lives as long as the call, as the runtime's did.
    const control = { text: req.text, at: 0 };
    if (gate !== undefined) await gate;
    if (probing && !inYoungGeneration(control)) controlOld++;
    return { text: control.text };
  },
});
const { address } = await server.listen();
const client = createClient(EchoService, {
  transport: new MemoryClientTransport({ address, network }),
  middleware: [watch("client")],
  timeoutMs: 60_000,
});

for (let burst = 0; burst < 3; burst++) {
  let open!: () => void;
  gate = new Promise((resolve) => (open = resolve));
  const held = Array.from({ length: 2000 }, (_, i) => client.echo({ text: `burst ${i}` }));
  await new Promise((resolve) => setImmediate(resolve));
  gc({ type: "minor" });
  gc({ type: "minor" });
  open();
  await Promise.all(held);
  gate = undefined;
}

probing = true;
for (let round = 0; round < 20; round++) {
  await Promise.all(Array.from({ length: 64 }, (_, i) => client.echo({ text: `call ${i}` })));
}
probing = false;
await server.close({ graceMs: 0 });
console.log(JSON.stringify({ old, controlPretenured: controlOld > 0 }));
