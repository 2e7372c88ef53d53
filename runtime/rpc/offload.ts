import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { CallContext } from "./context.js";
import { Code, ConfigError, RpcError } from "./errors.js";

/** Options of a {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /**
   * The module the threads run (a file URL or an absolute path): its export `exportName` is
   * `(request) => response | Promise<response>`, on plain data (requests and responses cross
   * threads by structured clone: bigint and Uint8Array fields too, but no functions or classes).
   * JavaScript, or TypeScript when the process runs with a loader the threads inherit (tsx).
   */
  module: string | URL;
  /** The export to run. Default "default". */
  exportName?: string;
  /** Threads. Default os.availableParallelism() - 1, at least 1 (one core stays with the event loop). */
  threads?: number;
  /** Calls waiting for a free thread, at most; one more is refused with RESOURCE_EXHAUSTED. Default 256. */
  maxQueued?: number;
}

/** What runs in each thread: loads the module, then answers { id, input } with { id, output } or { id, error }. */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const loaded = import(workerData.module).then((m) => {
  const fn = m[workerData.exportName];
  if (typeof fn !== "function") throw new Error(workerData.module + " has no function export " + workerData.exportName);
  return fn;
});
parentPort.on("message", async ({ id, input }) => {
  try {
    const fn = await loaded;
    parentPort.postMessage({ id, output: await fn(input) });
  } catch (e) {
    const error = e instanceof Error ? { name: e.name, message: e.message, code: typeof e.code === "number" ? e.code : undefined } : { message: String(e) };
    parentPort.postMessage({ id, error });
  }
});
`;

interface Task {
  readonly id: number;
  readonly input: unknown;
  readonly deadline: number | undefined;
  resolve(output: unknown): void;
  reject(e: unknown): void;
}

interface Thread {
  worker: Worker;
  task: Task | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A pool of worker threads for CPU-heavy handlers (the seed's JSON.parse + JWT), so the event loop
 * that reads and writes sockets stays responsive while they compute. Bounded: `threads` run at
 * once, `maxQueued` wait, more are refused with RESOURCE_EXHAUSTED. Deadlines are honoured: a
 * call whose deadline passed while it waited is answered DEADLINE_EXCEEDED without running, and
 * one still running at its deadline is answered DEADLINE_EXCEEDED and its thread is replaced (a
 * thread cannot be interrupted otherwise). A thread that crashes answers its call INTERNAL and is
 * replaced. Use it per method with {@link offloaded}.
 */
export class WorkerPool<I = unknown, O = unknown> {
  readonly threads: number;
  readonly maxQueued: number;
  /** Threads replaced after a crash or a call past its deadline. */
  replaced = 0;
  private readonly workerData: { module: string; exportName: string };
  private readonly pool: Thread[] = [];
  private readonly queue: Task[] = [];
  private nextId = 0;
  private closed = false;

  constructor(options: WorkerPoolOptions) {
    this.threads = options.threads ?? Math.max(1, availableParallelism() - 1);
    this.maxQueued = options.maxQueued ?? 256;
    if (!Number.isInteger(this.threads) || this.threads < 1 || !(this.maxQueued >= 0)) {
      throw new ConfigError("INVALID_OPTION", "WorkerPool: threads must be an integer >= 1 and maxQueued >= 0");
    }
    const m = options.module;
    const module = m instanceof URL ? m.href : m.startsWith("file:") ? m : new URL(`file://${m}`).href;
    this.workerData = { module, exportName: options.exportName ?? "default" };
    for (let i = 0; i < this.threads; i++) this.pool.push(this.spawn());
  }

  /** Runs `input` on a thread; rejects with an RpcError (RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, INTERNAL) or what the function threw. */
  run(input: I, deadline?: number): Promise<O> {
    if (this.closed) return Promise.reject(new RpcError(Code.UNAVAILABLE, "the worker pool is closed"));
    if (deadline !== undefined && deadline <= Date.now()) return Promise.reject(expired(0));
    const free = this.pool.find((t) => t.task === undefined);
    if (free === undefined && this.queue.length >= this.maxQueued) {
      return Promise.reject(
        new RpcError(Code.RESOURCE_EXHAUSTED, `the worker pool is full: ${this.threads} threads busy and ${this.maxQueued} calls waiting (maxQueued); retry later or on another instance`),
      );
    }
    return new Promise<O>((resolve, reject) => {
      const task: Task = { id: ++this.nextId, input, deadline, resolve: resolve as (o: unknown) => void, reject };
      if (free !== undefined) this.start(free, task);
      else this.queue.push(task);
    });
  }

  /** Stops every thread; calls waiting or running are answered UNAVAILABLE. */
  async close(): Promise<void> {
    this.closed = true;
    const gone = new RpcError(Code.UNAVAILABLE, "the worker pool was closed");
    for (const t of this.queue.splice(0)) t.reject(gone);
    await Promise.all(
      this.pool.map((t) => {
        if (t.timer !== undefined) clearTimeout(t.timer);
        t.task?.reject(gone);
        t.task = undefined;
        return t.worker.terminate();
      }),
    );
  }

  private spawn(): Thread {
    const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: this.workerData });
    const thread: Thread = { worker, task: undefined, timer: undefined };
    worker.on("message", (m: { id: number; output?: unknown; error?: { name?: string; message: string; code?: number } }) => {
      const task = thread.task;
      if (task === undefined || task.id !== m.id) return;
      this.settle(thread);
      if (m.error === undefined) task.resolve(m.output);
      else if (m.error.code !== undefined && m.error.code > 0 && m.error.code in Code) task.reject(new RpcError(m.error.code as Code, m.error.message));
      else task.reject(Object.assign(new Error(m.error.message), { name: m.error.name ?? "Error" }));
      this.next(thread);
    });
    // A crash (an uncaught error, out of memory, process.exit in the module): answer, replace.
    const crashed = (why: string): void => {
      if (this.closed || !this.pool.includes(thread)) return;
      const task = thread.task;
      this.settle(thread);
      task?.reject(new RpcError(Code.INTERNAL, "internal error", { cause: new Error(`a worker thread crashed: ${why}`) }));
      this.replace(thread);
    };
    worker.on("error", (e) => crashed(e.message));
    worker.on("exit", (code) => crashed(`exit code ${code}`));
    return thread;
  }

  private start(thread: Thread, task: Task): void {
    thread.task = task;
    if (task.deadline !== undefined) {
      thread.timer = setTimeout(() => {
        if (thread.task !== task) return;
        this.settle(thread);
        task.reject(expired(-1));
        // The thread is still computing for nobody: replace it, so the CPU goes to the next call.
        this.replace(thread);
      }, Math.max(0, task.deadline - Date.now()));
    }
    thread.worker.postMessage({ id: task.id, input: task.input });
  }

  private settle(thread: Thread): void {
    if (thread.timer !== undefined) clearTimeout(thread.timer);
    thread.timer = undefined;
    thread.task = undefined;
  }

  /** Gives a free thread the next waiting call whose deadline has not passed. */
  private next(thread: Thread): void {
    while (this.queue.length > 0) {
      const task = this.queue.shift() as Task;
      if (task.deadline !== undefined && task.deadline <= Date.now()) {
        task.reject(expired(0));
        continue;
      }
      this.start(thread, task);
      return;
    }
  }

  private replace(old: Thread): void {
    this.replaced++;
    const i = this.pool.indexOf(old);
    old.worker.removeAllListeners("exit");
    old.worker.removeAllListeners("error");
    old.worker.on("error", () => undefined);
    void old.worker.terminate();
    if (this.closed) return;
    const fresh = this.spawn();
    if (i >= 0) this.pool[i] = fresh;
    this.next(fresh);
  }
}

/** DEADLINE_EXCEEDED for a pooled call: before it ran (`ran` 0) or while it ran. */
function expired(ran: number): RpcError {
  return ran === 0
    ? new RpcError(Code.DEADLINE_EXCEEDED, "the call's deadline passed before a worker thread was free")
    : new RpcError(Code.DEADLINE_EXCEEDED, "the call's deadline passed while its worker thread computed; the thread was replaced");
}

/**
 * A handler that runs on `pool`'s threads, for one method: `register(Svc, { parse: offloaded(pool) })`.
 * The request goes to the thread as plain data with the call's deadline; the response comes back.
 */
export function offloaded<I, O>(pool: WorkerPool<I, O>): (request: I, ctx: CallContext) => Promise<O> {
  return (request, ctx) => pool.run(request, ctx.deadline);
}
