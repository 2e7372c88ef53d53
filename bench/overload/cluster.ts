/**
 * The clustered server of the overload benchmark's workers case: `cluster.ts <workers>
 * <handlerMs>`, forked by run.ts. runCluster with `workers` processes on one port, each with the
 * CPU-bound Echo handler of server.ts. Reports its address, then stops on "close".
 */
import { createServer } from "meridian-rpc";
import { runCluster } from "meridian-rpc/cluster";
import { TcpServerTransport } from "meridian-rpc/transports/tcp";
import { EchoService } from "../rpc/service.js";

const workers = Number(process.argv[2] ?? 2);
const handlerMs = Number(process.argv[3] ?? 1);

const c = await runCluster({
  workers,
  graceMs: 100,
  server: () =>
    createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), metrics: false }).register(EchoService, {
      echo: (req) => {
        const end = performance.now() + handlerMs;
        while (performance.now() < end);
        return req;
      },
    }),
});
if (c !== undefined) {
  process.on("message", (msg: { type: string }) => {
    if (msg.type === "close") void c.close().finally(() => process.exit(0));
  });
  process.on("disconnect", () => void c.close().finally(() => process.exit(0)));
  process.send!({ type: "ready", address: c.address });
}
