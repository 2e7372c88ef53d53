/**
 * A clustered Echo server for test/cluster: `cluster-server.ts <workers>`, forked with an IPC
 * channel. Each worker answers Echo with its process id as the text. The primary reports
 * `{ type: "ready", address, pids }` and answers "restart", "metrics" and "close".
 */
import { createServer } from "meridian-rpc";
import { runCluster } from "meridian-rpc/cluster";
import { TcpServerTransport } from "meridian-rpc/transports/tcp";
import { EchoService } from "../rpc/gen/echo.js";

const workers = Number(process.argv[2] ?? 2);
const port = Number(process.argv[3] ?? 0);
const c = await runCluster({
  workers,
  graceMs: 2000,
  server: () =>
    createServer({ transport: new TcpServerTransport({ host: "127.0.0.1", port }), logger: { error: () => {} } }).register(EchoService, {
      echo: () => ({ text: String(process.pid) }),
    }),
});
if (c !== undefined) {
  process.on("message", (m: { type: string }) => {
    const answer = (p: Promise<unknown>): void =>
      void p.then(
        (result) => process.send!({ type: m.type, result, pids: c.pids() }),
        (e: unknown) => process.send!({ type: "failed", error: String(e) }),
      );
    if (m.type === "restart") answer(c.restart());
    else if (m.type === "metrics") answer(c.metrics());
    else if (m.type === "close") answer(c.close().then(() => setImmediate(() => process.exit(0))));
  });
  // The test is gone: stop the workers too.
  process.on("disconnect", () => void c.close().finally(() => process.exit(0)));
  process.send!({ type: "ready", address: c.address, pids: c.pids() });
}
