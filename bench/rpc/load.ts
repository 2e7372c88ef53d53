/**
 * The load process of the RPC benchmark: `load.ts <peer>`, forked by run.ts. For each "run"
 * message it connects a client, keeps `concurrency` calls in flight for a warm-up period and
 * then for `durationMs`, and reports throughput and latency of the measured part.
 */
import { Histogram } from "./histogram.js";
import { peerClient, type PeerName } from "./peers.js";
import type { CaseName } from "./service.js";

/** A run request from run.ts. */
export interface RunSpec {
  address: string;
  name: CaseName;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
}

/** What one run measured on the client side. */
export interface LoadResult {
  requests: number;
  errors: number;
  firstError?: string;
  seconds: number;
  rps: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  meanUs: number;
  maxUs: number;
  /** CPU time (user + system, all threads) this process used over the measured part, µs. */
  cpuUs: number;
}

const peer = process.argv[2] as PeerName;

async function run(spec: RunSpec): Promise<LoadResult> {
  const client = await peerClient(peer, spec.address, spec.name);
  const hist = new Histogram();
  let measuring = false;
  let stop = false;
  let requests = 0;
  let errors = 0;
  let answered = 0;
  let firstError: string | undefined;
  const worker = async (): Promise<void> => {
    while (!stop) {
      const t0 = performance.now();
      try {
        await client.call();
        answered++;
        if (measuring) {
          hist.record((performance.now() - t0) * 1e6);
          requests++;
        }
      } catch (e) {
        errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
        // A peer that never answers is given up on; one that sheds a cold start's burst (a
        // thousand refusals in the warm-up) and then serves is measured, its errors reported.
        if (errors > 1000 && answered === 0) stop = true;
      }
    }
  };
  const workers = Array.from({ length: spec.concurrency }, worker);
  await new Promise((r) => setTimeout(r, spec.warmupMs));
  process.send!({ type: "warm" });
  measuring = true;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, spec.durationMs));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stop = true;
  await Promise.all(workers);
  await client.close();
  return {
    requests,
    errors,
    firstError,
    seconds,
    rps: requests / seconds,
    p50Us: hist.quantile(0.5) / 1000,
    p99Us: hist.quantile(0.99) / 1000,
    p999Us: hist.quantile(0.999) / 1000,
    meanUs: hist.mean() / 1000,
    maxUs: hist.max / 1000,
    cpuUs: cpu.user + cpu.system,
  };
}

process.on("message", (msg: { type: string; spec?: RunSpec }) => {
  if (msg.type === "run") {
    run(msg.spec!).then(
      (result) => process.send!({ type: "result", result }),
      (e: unknown) => process.send!({ type: "failed", error: e instanceof Error ? e.stack ?? e.message : String(e) }),
    );
  } else if (msg.type === "close") {
    process.exit(0);
  }
});
process.send!({ type: "ready" });
