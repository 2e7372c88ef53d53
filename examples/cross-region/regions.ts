/**
 * The coordinator's handle on a region process: forks region.ts with the TypeScript loader,
 * sends it instructions and waits for their replies, and makes sure it dies with the demo.
 */
import { fork, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { FromRegion, Region, RegionConfig, ToRegion } from "./protocol.js";

const REGION_SCRIPT = fileURLToPath(new URL("./region.ts", import.meta.url));

/** A region process failed or went away. */
export class RegionFailedError extends Error {
  override readonly name = "RegionFailedError";
}

type Reply = Extract<FromRegion, { type: "reply" }>;
type Instruction = Exclude<ToRegion, { type: "init" }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A running region process. */
export class RegionHandle {
  readonly child: ChildProcess;
  /** Resolves when the process has exited (with its code, or the signal's name). */
  readonly exited: Promise<string>;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;
  private readyResolve!: () => void;
  private readyReject!: (e: Error) => void;
  /** Resolves once the region's instances are up and registered. */
  readonly ready: Promise<void>;

  constructor(
    readonly region: Region,
    /** Where the process's stdout and stderr go. */
    readonly logFile: string,
    onMessage: (msg: FromRegion) => void,
  ) {
    const log = openSync(logFile, "a");
    this.child = fork(REGION_SCRIPT, [], {
      execArgv: ["--conditions=meridian-source", "--import", "tsx"],
      stdio: ["ignore", log, log, "ipc"],
      serialization: "advanced",
    });
    closeSync(log);
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => undefined);
    this.child.on("message", (msg: FromRegion) => {
      if (msg.type === "ready") this.readyResolve();
      else if (msg.type === "reply") {
        const w = this.waiting.get(msg.id);
        this.waiting.delete(msg.id);
        w?.resolve(msg);
      } else if (msg.type === "fatal") this.fail(new RegionFailedError(`${region} failed: ${msg.message}`));
      onMessage(msg);
    });
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.fail(new RegionFailedError(`the ${region} process exited (${signal ?? code}); its log: ${logFile}`));
        resolve(String(signal ?? code));
      });
    });
  }

  /** The first failure of this region, if any. */
  get failed(): Error | undefined {
    return this.failure;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.readyReject(e);
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  start(config: RegionConfig): void {
    this.child.send({ type: "init", config } satisfies ToRegion);
  }

  /** Sends an instruction and waits for its reply. */
  request(msg: DistributiveOmit<Instruction, "id">, timeoutMs = 30_000): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new RegionFailedError(`${this.region} did not answer "${msg.type}" within ${timeoutMs} ms; its log: ${this.logFile}`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...msg, id } as Instruction);
    });
  }

  /** Asks the region to stop, then kills it if it has not exited within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (!this.failure) await this.request({ type: "stop" }, graceMs).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Last resort (the demo is exiting): SIGKILL. */
  killNow(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}
