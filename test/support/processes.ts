/**
 * The child-process plumbing shared by the test harnesses that run real servers (etcd-cluster.ts,
 * nats-cluster.ts): finding a binary, free ports, a temporary data folder, spawning with a log
 * file, and making sure children die with this process — on stop, on exit, and through a small
 * watchdog shell process if this process dies without running its exit handlers.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/**
 * Runs the TypeScript module `file` with `args` in a process of its own, as the tests run
 * (tsx, the package's source conditions), its stdout piped: `json()` parses the next chunk it
 * prints (a server printing its address as one JSON line). The caller kills it.
 */
export function tsxChild(file: URL, args: readonly string[] = []): { proc: ChildProcess; json<T>(): Promise<T> } {
  const proc = spawn(process.execPath, ["--conditions=meridian-source", "--import", "tsx", file.pathname, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const json = async <T>(): Promise<T> => JSON.parse(((await once(proc.stdout!, "data")) as [Buffer])[0].toString()) as T;
  return { proc, json };
}

/** The first of `candidates`, then `name` on the PATH, that runs with `--version`; undefined when none does. */
export function findBinary(name: string, candidates: readonly (string | undefined)[]): string | undefined {
  const all = [...candidates];
  for (const dir of (process.env.PATH ?? "").split(delimiter)) if (dir) all.push(join(dir, name));
  for (const c of all) {
    if (c && existsSync(c) && spawnSync(c, ["--version"], { stdio: "ignore" }).status === 0) return c;
  }
  return undefined;
}

/**
 * Ports freePort hands out: below Linux's default ephemeral range (32768-60999), so the kernel
 * never gives one of them to a `listen(0)` or to an outgoing connection's local end between the
 * moment a port is found free and the moment a child process binds it.
 */
const PLANNED_PORTS = { first: 20_000, count: 12_000 } as const;
const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 for a server another process will bind (free when asked; the
 * harnesses retry on a clash). Chosen at random outside the ephemeral range, never the same
 * port twice in one process.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = PLANNED_PORTS.first + Math.floor(Math.random() * PLANNED_PORTS.count);
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${PLANNED_PORTS.first}-${PLANNED_PORTS.first + PLANNED_PORTS.count - 1} after 50 tries`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Creates and starts a harness, up to three times (a free port may be taken between asking and
 * binding); a failed attempt is stopped before the next. Throws the last attempt's error.
 */
export async function startWithRetries<T extends { start(): Promise<void>; stop(): Promise<void> }>(create: () => T): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const harness = create();
    try {
      await harness.start();
      return harness;
    } catch (e) {
      lastError = e;
      await harness.stop();
    }
  }
  throw lastError;
}

/** One child process of a ProcessGroup, as the harness tracks it. */
export interface ProcessSlot {
  /** The running child; undefined before the first spawn, after kill, and after it exited. */
  child: ChildProcess | undefined;
  /** Settles when the last spawned child has exited. */
  exited: Promise<void> | undefined;
  /** "exited with <signal or code>" when the child exited without being killed. */
  earlyExit: string | undefined;
  /** Where the child's stdout and stderr go. */
  readonly logFile: string;
}

const live = new Set<ProcessGroup>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const group of live) group.killNow();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      for (const group of live) group.killNow();
      process.kill(process.pid, signal);
    });
  }
}

/**
 * The child processes of one harness and their temporary folder (in /dev/shm when there is one).
 * The children are SIGKILLed and the folder removed on stop(), when this process exits, and by a
 * watchdog shell process if this process dies without running its exit handlers.
 */
export class ProcessGroup {
  /** The temporary folder with the children's data and logs. */
  readonly dataDir: string;
  private watchdog: ChildProcess | undefined;
  private stoppedFlag = false;

  /**
   * @param prefix the folder name's prefix, e.g. "meridian-etcd-"
   * @param slots the harness's slots; the array may still be filled after construction
   * @param keepEnv an environment variable that, when set, keeps the folder after stop()
   */
  constructor(
    prefix: string,
    private readonly slots: readonly ProcessSlot[],
    private readonly keepEnv: string,
  ) {
    installExitHook();
    const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
    this.dataDir = mkdtempSync(join(base, prefix));
    live.add(this);
  }

  /** True once stop() has killed the children. */
  get stopped(): boolean {
    return this.stoppedFlag;
  }

  /** Starts the watchdog; call once, before the first spawn. */
  startWatchdog(): void {
    const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 $(cat "${this.pidsFile()}" 2>/dev/null) 2>/dev/null; rm -rf "${this.dataDir}"`;
    this.watchdog = spawn("sh", ["-c", script], { detached: true, stdio: "ignore" });
    this.watchdog.unref();
  }

  /** Spawns `bin` into `slot`, its output appended to the slot's log file. */
  spawn(slot: ProcessSlot, bin: string, args: readonly string[], env?: NodeJS.ProcessEnv): void {
    const log = openSync(slot.logFile, "a");
    const child = spawn(bin, args, env === undefined ? { stdio: ["ignore", log, log] } : { stdio: ["ignore", log, log], env });
    closeSync(log);
    slot.child = child;
    slot.earlyExit = undefined;
    slot.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        if (slot.child === child) {
          slot.child = undefined;
          slot.earlyExit = `exited with ${signal ?? code}`;
        }
        this.writePids();
        resolve();
      });
    });
    this.writePids();
  }

  /** SIGKILLs the slot's child, if running, and waits for it to be gone. */
  async kill(slot: ProcessSlot): Promise<void> {
    const child = slot.child;
    if (!child) return;
    slot.child = undefined;
    child.kill("SIGKILL");
    await slot.exited;
  }

  /** Kills every child and the watchdog and removes the folder (unless $keepEnv is set). */
  async stop(): Promise<void> {
    if (this.stoppedFlag) return;
    await Promise.all(this.slots.map((s) => this.kill(s)));
    this.stoppedFlag = true;
    live.delete(this);
    if (this.watchdog?.pid !== undefined) {
      try {
        process.kill(this.watchdog.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    if (!process.env[this.keepEnv]) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Synchronous last resort from the exit handler. */
  killNow(): void {
    for (const s of this.slots) {
      if (s.child?.pid !== undefined) {
        try {
          process.kill(s.child.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** The last 15 lines of the slot's log, for error messages. */
  tail(slot: ProcessSlot): string {
    try {
      return readFileSync(slot.logFile, "utf8").split("\n").slice(-15).join("\n");
    } catch {
      return "(no log)";
    }
  }

  private pidsFile(): string {
    return join(this.dataDir, "pids");
  }

  private writePids(): void {
    if (this.stoppedFlag) return;
    const pids = this.slots.map((s) => s.child?.pid).filter((p) => p !== undefined);
    try {
      writeFileSync(this.pidsFile(), pids.join(" "));
    } catch {
      // The folder is being removed.
    }
  }
}
