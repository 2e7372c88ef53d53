/**
 * The server process of the overload benchmark: `server.ts <peer> <handlerMs> [sliceMs]`, forked by run.ts.
 * Its Echo handler burns `handlerMs` of CPU before answering, so the server's capacity is about
 * 1000 / handlerMs calls per second on its one core. Reports its address, then answers "reset"
 * (a run starts) and "stats" (it ended) with its event-loop delay and how many handlers ran.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import { createServer } from "meridian-rpc";
import { TcpServerTransport } from "meridian-rpc/transports/tcp";
import { grpcService } from "../rpc/peers.js";
import { EchoService } from "../rpc/service.js";
import type { OverloadPeer } from "./spec.js";

/** What the server reports at the end of a run. */
export interface OverloadServerStats {
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  /** Handlers run during the run. */
  handled: number;
}

const peer = process.argv[2] as OverloadPeer;
const handlerMs = Number(process.argv[3] ?? 1);
/** The run queue's slice (admission `sliceMs`), when not the default. */
const sliceMs = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
let handled = 0;

/** Burns `handlerMs` of CPU, as a handler that computes would (the seed's JSON.parse + JWT). */
function work(): void {
  handled++;
  const end = performance.now() + handlerMs;
  while (performance.now() < end);
}

async function start(): Promise<{ address: string; close(): Promise<void> }> {
  if (peer === "grpc-js") {
    const server = new grpc.Server();
    server.addService(grpcService().service, {
      Echo: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        work();
        cb(null, call.request);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    return { address: `127.0.0.1:${port}`, close: () => new Promise((r) => server.tryShutdown(() => r())) };
  }
  const server = createServer({
    transport: new TcpServerTransport({ host: "127.0.0.1" }),
    metrics: false,
    ...(peer === "meridian-no-admission" ? { admission: false as const } : sliceMs === undefined ? {} : { admission: { sliceMs } }),
  }).register(EchoService, {
    echo: (req) => {
      work();
      return req;
    },
  });
  const { address } = await server.listen();
  return { address, close: () => server.close({ graceMs: 100 }) };
}

const server = await start();
const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();
process.on("message", (msg: { type: string }) => {
  if (msg.type === "reset") {
    eld.reset();
    handled = 0;
  } else if (msg.type === "stats") {
    const stats: OverloadServerStats = { eventLoopDelayP99Ms: eld.percentile(99) / 1e6, eventLoopDelayMaxMs: eld.max / 1e6, handled };
    process.send!({ type: "stats", stats });
  } else if (msg.type === "close") {
    void server.close().finally(() => process.exit(0));
  }
});
process.send!({ type: "ready", address: server.address });
