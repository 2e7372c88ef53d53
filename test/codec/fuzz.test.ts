/**
 * Fuzzing: random and mutated inputs for every message type, in a worker under a watchdog (see
 * fuzz-worker.ts). Fails on any exception other than a well-formed DecodeError, on a decode that
 * does not finish, and on decoded values that do not survive a re-encoding.
 */
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { hex } from "./helpers.js";
import type { FuzzJob, FuzzResult } from "./fuzz-worker.js";

/** Inputs per message type and variant; CODEC_FUZZ scales it for a longer local soak. */
const PER_TYPE = Number(process.env.CODEC_FUZZ ?? 60);
/** Seed of the run; set CODEC_FUZZ_SEED to replay one. */
const SEED = Number(process.env.CODEC_FUZZ_SEED ?? 20240611);
/** The worker must start on a new input at least this often, or it is taken as hung. */
const STALL_MS = 10_000;
const WORKER_URL = new URL("./fuzz-worker.ts", import.meta.url).href;

function fuzz(mode: FuzzJob["mode"]): Promise<FuzzResult> {
  const shared = new SharedArrayBuffer(8 + (1 << 16));
  const header = new Int32Array(shared, 0, 2);
  const job: FuzzJob = { mode, seed: SEED, perType: PER_TYPE, shared };
  // The worker loads TypeScript through tsx, registered inside the worker itself.
  const boot = `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(WORKER_URL)}); });`;
  const worker = new Worker(boot, { eval: true, workerData: job, execArgv: ["--conditions=meridian-source"] });
  return new Promise((resolve, reject) => {
    let last = -1;
    let since = Date.now();
    const watchdog = setInterval(() => {
      const now = Atomics.load(header, 0);
      if (now !== last) {
        last = now;
        since = Date.now();
        return;
      }
      if (Date.now() - since < STALL_MS) return;
      clearInterval(watchdog);
      const n = Math.min(Atomics.load(header, 1), shared.byteLength - 8);
      void worker.terminate();
      reject(new Error(`input #${now} did not finish decoding within ${STALL_MS} ms: ${hex(new Uint8Array(shared, 8, n))}`));
    }, 250);
    worker.once("message", (m: { ok: true; result: FuzzResult } | { ok: false; error: string }) => {
      clearInterval(watchdog);
      void worker.terminate();
      if (m.ok) resolve(m.result);
      else reject(new Error(`fuzz worker failed: ${m.error}`));
    });
    worker.once("error", (e) => {
      clearInterval(watchdog);
      reject(e);
    });
  });
}

describe("fuzz", () => {
  for (const mode of ["bigint", "number"] as const) {
    it.concurrent(`fuzz - random and mutated inputs raise only DecodeError and never hang (int64 ${mode})`, async () => {
      const result = await fuzz(mode);
      expect(result.failures).toEqual([]);
      // The mutations must exercise both outcomes, or the test proves little.
      expect(result.decoded).toBeGreaterThan(result.inputs / 10);
      expect(result.rejected).toBeGreaterThan(result.inputs / 10);
    }, 120_000);
  }
});
