/**
 * The server process of the RPC benchmark: `server.ts <peer>`, forked by run.ts. Reports its
 * address, then answers "reset" (start of a measured run) and "stats" (its end) with the
 * event-loop delay, RSS and CPU time over the run.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { startPeerServer, type PeerName } from "./peers.js";

/** What the server reports at the end of a run. */
export interface ServerStats {
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  rssMB: number;
  rssPeakMB: number;
  /** CPU time (user + system, all threads) the process used over the run, µs. */
  cpuUs: number;
}

const peer = process.argv[2] as PeerName;
const server = await startPeerServer(peer);
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
let rssPeak = 0;
let cpuAtReset = process.cpuUsage();
const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 100);
rssTimer.unref();

process.on("message", (msg: { type: string }) => {
  if (msg.type === "reset") {
    eld.reset();
    rssPeak = process.memoryUsage.rss();
    cpuAtReset = process.cpuUsage();
  } else if (msg.type === "stats") {
    const rss = process.memoryUsage.rss();
    const cpu = process.cpuUsage(cpuAtReset);
    const stats: ServerStats = {
      eventLoopDelayP99Ms: eld.percentile(99) / 1e6,
      eventLoopDelayMaxMs: eld.max / 1e6,
      rssMB: rss / 2 ** 20,
      rssPeakMB: Math.max(rssPeak, rss) / 2 ** 20,
      cpuUs: cpu.user + cpu.system,
    };
    process.send!({ type: "stats", stats });
  } else if (msg.type === "close") {
    void server.close().finally(() => process.exit(0));
  }
});
process.send!({ type: "ready", address: server.address });
