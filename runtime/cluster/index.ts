/**
 * Every core: a server run as N worker processes that share one port (node:cluster; Node 20 has
 * no SO_REUSEPORT), with rolling restarts and metrics gathered in the primary. See docs/overload.md.
 */
import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import { ConfigError } from "../rpc/errors.js";
import type { MetricsSnapshot } from "../rpc/observability/metrics.js";
import type { Server } from "../rpc/server.js";

/** Options of {@link runCluster}. */
export interface ClusterOptions {
  /** Worker processes. Default os.availableParallelism(). */
  workers?: number;
  /**
   * Builds this worker's server, not yet listening; runs in every worker. Its transport should
   * listen on a fixed port, or port 0, which node:cluster gives every worker the same of.
   */
  server: () => Server | Promise<Server>;
  /** How long calls in flight may take when a worker stops (restart, close), ms. Default 5000. */
  graceMs?: number;
  /** A worker not listening within this is killed and its start fails, ms. Default 30 000. */
  startTimeoutMs?: number;
  /** Replace a worker that exits by itself (a crash), once it had started. Default true. */
  respawn?: boolean;
}

/** One worker's metrics, as the primary gathered them. */
export interface WorkerMetrics {
  readonly pid: number;
  readonly metrics: MetricsSnapshot;
}

/** The metrics of every worker, and their sums. */
export interface ClusterMetrics {
  /** Calls served by all workers. */
  readonly calls: number;
  /** Failed calls of all workers. */
  readonly errors: number;
  /** Failed calls by code name, over all workers. */
  readonly errorsByCode: Readonly<Record<string, number>>;
  /** The worst worker's event-loop delay p99, ms. */
  readonly eventLoopDelayP99Ms: number;
  /** Each worker's own snapshot (its event-loop delay among them). */
  readonly workers: readonly WorkerMetrics[];
}

/** A running cluster, as the primary sees it. */
export interface Cluster {
  /** The address the workers listen on. */
  readonly address: string;
  /** The process ids of the workers serving now. */
  pids(): number[];
  /**
   * Rolling restart: one worker at a time, a new one is started and listening before the old one
   * stops (gracefully: its clients are told to move, its calls in flight finish within `graceMs`).
   */
  restart(): Promise<void>;
  /** Gathers every worker's metrics. */
  metrics(): Promise<ClusterMetrics>;
  /** Stops every worker gracefully. */
  close(): Promise<void>;
}

/** Messages between the primary and a worker. */
type Message =
  | { type: "meridian:ready"; address: string }
  | { type: "meridian:metrics"; id: number; metrics?: MetricsSnapshot }
  | { type: "meridian:stop" };

function isMessage(m: unknown): m is Message {
  return typeof m === "object" && m !== null && typeof (m as { type?: unknown }).type === "string" && (m as { type: string }).type.startsWith("meridian:");
}

/**
 * Runs a server on every core: in the primary process, forks `workers` copies of this program
 * and resolves with a {@link Cluster} once all listen; in a worker, builds the server with
 * `options.server`, listens, serves until the primary stops it, and resolves with undefined (so
 * the program's code after runCluster runs in the primary only). Connections are spread over the
 * workers by the primary (node:cluster's round robin); a TCP client that keeps one connection
 * reaches one worker, so clients should open several (`connectionsPerAddress`).
 */
export async function runCluster(options: ClusterOptions): Promise<Cluster | undefined> {
  if (cluster.isPrimary) return startPrimary(options);
  await runWorker(options);
  return undefined;
}

async function runWorker(options: ClusterOptions): Promise<void> {
  const server = await options.server();
  const { address } = await server.listen();
  const send = (m: Message): void => {
    process.send?.(m);
  };
  let stopping = false;
  process.on("message", (m: unknown) => {
    if (!isMessage(m)) return;
    if (m.type === "meridian:metrics") send({ type: "meridian:metrics", id: m.id, metrics: server.metrics() });
    else if (m.type === "meridian:stop" && !stopping) {
      stopping = true;
      void server.close({ graceMs: options.graceMs ?? 5000 }).finally(() => process.exit(0));
    }
  });
  // The primary is gone: nobody will stop this worker, so it stops itself.
  process.on("disconnect", () => {
    if (!stopping) {
      stopping = true;
      void server.close({ graceMs: options.graceMs ?? 5000 }).finally(() => process.exit(0));
    }
  });
  send({ type: "meridian:ready", address });
}

async function startPrimary(options: ClusterOptions): Promise<Cluster> {
  const count = options.workers ?? availableParallelism();
  if (!Number.isInteger(count) || count < 1) throw new ConfigError("INVALID_OPTION", `runCluster: workers must be an integer >= 1, got ${count}`);
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const graceMs = options.graceMs ?? 5000;
  const respawn = options.respawn ?? true;
  /** Workers serving now. */
  const serving = new Set<Worker>();
  /** Workers we are stopping: their exit is expected. */
  const stopping = new Set<Worker>();
  let closed = false;
  let address = "";
  let nextId = 0;

  /** Forks a worker and resolves once it listens; rejects (and kills it) if it does not in time. */
  const fork = (): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork();
      const timer = setTimeout(() => {
        w.process.kill("SIGKILL");
        reject(new Error(`runCluster: a worker did not listen within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        reject(new Error(`runCluster: a worker exited (code ${code}) before it listened; see its output`));
      };
      w.once("exit", onExit);
      w.on("message", function ready(m: unknown) {
        if (!isMessage(m) || m.type !== "meridian:ready") return;
        clearTimeout(timer);
        w.off("message", ready);
        w.off("exit", onExit);
        address = m.address;
        serving.add(w);
        w.once("exit", () => {
          serving.delete(w);
          if (stopping.delete(w) || closed || !respawn) return;
          // A crash: replace it, so the cluster keeps its size.
          void fork().catch(() => undefined);
        });
        resolve(w);
      });
    });

  const stop = (w: Worker): Promise<void> =>
    new Promise((resolve) => {
      if (w.isDead()) return resolve();
      stopping.add(w);
      // Past the grace period (and a margin), the worker is killed.
      const timer = setTimeout(() => w.process.kill("SIGKILL"), graceMs + 5000);
      w.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      w.send({ type: "meridian:stop" } satisfies Message);
    });

  const started = await Promise.allSettled(Array.from({ length: count }, fork));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) {
    closed = true;
    await Promise.all([...serving].map(stop));
    throw failed.reason;
  }

  const ask = (w: Worker): Promise<WorkerMetrics | undefined> =>
    new Promise((resolve) => {
      const id = ++nextId;
      const done = (r: WorkerMetrics | undefined): void => {
        clearTimeout(timer);
        w.off("message", onMessage);
        w.off("exit", onGone);
        resolve(r);
      };
      const onMessage = (m: unknown): void => {
        if (isMessage(m) && m.type === "meridian:metrics" && m.id === id && m.metrics !== undefined) done({ pid: w.process.pid ?? 0, metrics: m.metrics });
      };
      const onGone = (): void => done(undefined);
      const timer = setTimeout(onGone, 5000);
      w.on("message", onMessage);
      w.once("exit", onGone);
      w.send({ type: "meridian:metrics", id } satisfies Message);
    });

  return {
    get address() {
      return address;
    },
    pids: () => [...serving].map((w) => w.process.pid ?? 0),
    async restart() {
      for (const old of [...serving]) {
        if (closed) return;
        await fork();
        await stop(old);
      }
    },
    async metrics() {
      const workers = (await Promise.all([...serving].map(ask))).filter((m): m is WorkerMetrics => m !== undefined);
      const errorsByCode: Record<string, number> = {};
      let calls = 0;
      let errors = 0;
      let eld = 0;
      for (const { metrics: m } of workers) {
        calls += m.calls;
        errors += m.errors;
        for (const [k, v] of Object.entries(m.errorsByCode)) errorsByCode[k] = (errorsByCode[k] ?? 0) + v;
        eld = Math.max(eld, m.eventLoopDelay.p99Ms);
      }
      return { calls, errors, errorsByCode, eventLoopDelayP99Ms: eld, workers };
    },
    async close() {
      closed = true;
      await Promise.all([...serving].map(stop));
    },
  };
}
