/**
 * A registry's data directory: a snapshot of the state plus the append-only log of every change
 * since, with recovery (snapshot, then replay), periodic compaction and a lock against a second
 * server on the same folder. docs/registry.md ("Running a registry server") describes the files.
 *
 *   <dir>/snapshot.json                    the state up to log record `lsn` (snapshot.ts)
 *   <dir>/wal-<first lsn, 16 digits>.log   log segments (log.ts); the last one is being written
 *   <dir>/LOCK                             the pid of the process using the folder
 */
import { mkdir, readFile, readdir, stat, unlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { DataDirError, LogWriter, parseSegment, parseSegmentName, segmentName, syncDir, type FsyncPolicy, type LogRecord } from "./log.js";
import { loadSnapshot, removeTempFiles, writeFileAtomic } from "./snapshot.js";
import type { Mutation, StateSnapshot } from "./state-machine.js";

/** Options of a data directory (the durability options of EmbeddedNodeOptions). */
export interface DataDirOptions {
  /** When an acknowledged write is on disk (see FsyncPolicy). Default `always`. */
  readonly fsync?: FsyncPolicy;
  /** For `fsync: "interval"`: the longest time between a write and its fsync, ms. Default 100. */
  readonly fsyncIntervalMs?: number;
  /** Compact (write a snapshot, drop the log before it) once the log holds this many bytes. Default 64 MiB. */
  readonly compactAfterBytes?: number;
  /** Also compact this often when the log holds any record, ms; 0 never. Default 10 minutes. */
  readonly compactIntervalMs?: number;
}

/** What a data directory reports for the Status call. */
export interface DataDirStatus {
  readonly dir: string;
  readonly fsync: FsyncPolicy;
  /** Bytes in the log segments (everything since the snapshot). */
  readonly logBytes: number;
  readonly segments: number;
  /** The last log record appended. */
  readonly lastLsn: number;
  /** The log record the snapshot on disk includes (0: none yet). */
  readonly snapshotLsn: number;
  /** The last compaction of this process: when it finished (ms since the epoch) and how long it took. */
  readonly lastCompaction: { readonly at: number; readonly durationMs: number; readonly lsn: number } | undefined;
  /** Why the last compaction failed, if it did (it is tried again at the next trigger). */
  readonly lastCompactionError: string | undefined;
  /** What recovery did on open. */
  readonly recovery: RecoveryReport;
}

/** What recovery found and did when the data directory was opened. */
export interface RecoveryReport {
  /** The snapshot's lsn (0: none). */
  readonly snapshotLsn: number;
  /** Log records replayed after it. */
  readonly replayed: number;
  /** Bytes cut off the end of the last segment: a record a crash left half written. */
  readonly truncatedBytes: number;
  /** Temporary files a crash during compaction left, removed. */
  readonly removedTempFiles: readonly string[];
  /** Segments entirely included in the snapshot (a crash between a compaction's snapshot and their deletion), removed. */
  readonly removedSegments: number;
}

/** How a data directory hands its content to the state machine on open, and takes it for compaction. */
export interface DataDirHost {
  restore(state: StateSnapshot): void;
  apply(m: Mutation): void;
  /** The state now (synchronously: in the same step as the log's last lsn). */
  snapshot(): StateSnapshot;
}

const SNAPSHOT = "snapshot.json";
const LOCK = "LOCK";

/** Whether a process with this pid runs (EPERM: it does, as another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The folders this process holds. A LOCK naming this process's pid is ours only if listed here;
 * otherwise an earlier process with the same pid left it (in a container the server is often
 * pid 1 every time it starts).
 */
const heldHere = new Set<string>();

/** Takes the folder's LOCK file, or throws LOCKED naming the process that holds it. */
async function lock(dir: string): Promise<void> {
  const path = join(dir, LOCK);
  const key = resolve(dir);
  if (heldHere.has(key)) {
    throw new DataDirError("LOCKED", path, `the registry data directory ${dir} is in use by another node of this process; close it first`);
  }
  // Claimed before the first await, so two opens in this process cannot both take it.
  heldHere.add(key);
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(path, `${process.pid}\n`, { flag: "wx" });
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new DataDirError("LOCKED", path, `the registry data directory ${dir} is in use by process ${pid}; stop it first, or delete ${path} if that process is not a registry`);
      }
      // Left by a process that died (kill -9), or by an earlier process with our pid: take it over.
      await unlink(path).catch(() => undefined);
    }
    throw new DataDirError("LOCKED", path, `could not take ${path}: another process is starting on ${dir}`);
  } catch (e) {
    heldHere.delete(key);
    throw e;
  }
}

/** Releases a folder taken by lock. */
async function unlock(dir: string): Promise<void> {
  await unlink(join(dir, LOCK)).catch(() => undefined);
  heldHere.delete(resolve(dir));
}

/**
 * An open data directory: appends the state machine's mutations to the log, compacts, reports.
 * `open` recovers the state into its host first.
 */
export class DataDir {
  private compacting: Promise<void> | undefined;
  private compactTimer: NodeJS.Timeout | undefined;
  private lastCompaction: DataDirStatus["lastCompaction"];
  private lastCompactionError: string | undefined;
  private closed = false;
  private readonly compactAfterBytes: number;

  private constructor(
    readonly dir: string,
    private readonly writer: LogWriter,
    private readonly host: DataDirHost,
    /** First lsns of the segments on disk, the writer's last. */
    private segments: number[],
    /** Bytes of the segments before the writer's. */
    private olderBytes: number,
    private snapshotLsn: number,
    private readonly options: Required<DataDirOptions>,
    readonly recovery: RecoveryReport,
  ) {
    this.compactAfterBytes = options.compactAfterBytes;
    if (options.compactIntervalMs > 0) {
      this.compactTimer = setInterval(() => {
        if (this.writer.lastLsn > this.snapshotLsn) void this.compact();
      }, options.compactIntervalMs);
      this.compactTimer.unref();
    }
  }

  /**
   * Opens (creating it if needed) and locks a data directory, removes what a crash left (temporary
   * files, segments the snapshot already holds), restores the snapshot into `host` and replays
   * the log after it. A torn tail of the last segment is cut off; a corrupt record elsewhere, a
   * gap in the log or a second process on the folder throws DataDirError.
   */
  static async open(dir: string, host: DataDirHost, options: DataDirOptions = {}, onFailure?: (error: Error) => void): Promise<DataDir> {
    const opts: Required<DataDirOptions> = {
      fsync: options.fsync ?? "always",
      fsyncIntervalMs: options.fsyncIntervalMs ?? 100,
      compactAfterBytes: options.compactAfterBytes ?? 64 * 1024 * 1024,
      compactIntervalMs: options.compactIntervalMs ?? 10 * 60_000,
    };
    if (opts.fsync !== "always" && opts.fsync !== "interval") {
      throw new TypeError(`fsync must be "always" or "interval", not ${JSON.stringify(opts.fsync)}`);
    }
    if (!(opts.fsyncIntervalMs > 0)) throw new TypeError(`fsyncIntervalMs must be positive, not ${opts.fsyncIntervalMs}`);
    await mkdir(dir, { recursive: true });
    await lock(dir);
    try {
      return await DataDir.recover(dir, host, opts, onFailure);
    } catch (e) {
      await unlock(dir);
      throw e;
    }
  }

  private static async recover(dir: string, host: DataDirHost, opts: Required<DataDirOptions>, onFailure: ((error: Error) => void) | undefined): Promise<DataDir> {
    const names = await readdir(dir);
    const removedTempFiles = await removeTempFiles(dir, names);
    const snapshot = await loadSnapshot(join(dir, SNAPSHOT));
    const snapshotLsn = snapshot?.lsn ?? 0;
    if (snapshot) host.restore(snapshot.state);

    let segments = names.map(parseSegmentName).filter((n): n is number => n !== undefined).sort((a, b) => a - b);
    // Segments whose records the snapshot holds entirely: the next segment starts at or before snapshotLsn + 1.
    const covered = segments.filter((first, i) => i + 1 < segments.length && segments[i + 1]! <= snapshotLsn + 1);
    for (const first of covered) await unlink(join(dir, segmentName(first)));
    if (covered.length > 0) await syncDir(dir);
    segments = segments.filter((first) => !covered.includes(first));

    /** The next record to replay: every record up to the snapshot's is in it already. */
    let next = snapshotLsn + 1;
    let replayed = 0;
    let truncatedBytes = 0;
    let olderBytes = 0;
    let removedSegments = covered.length;
    let tail = { firstLsn: next, validBytes: 0, exists: false };
    for (let i = 0; i < segments.length; i++) {
      const first = segments[i]!;
      const path = join(dir, segmentName(first));
      const hole = (why: string) => new DataDirError("CORRUPT", path, `the registry log has a hole: ${why}; restore the data directory from a backup`);
      if (first > next) throw hole(`records ${next}..${first - 1} are in no segment (the snapshot ends at ${snapshotLsn})`);
      if (first < next && next > snapshotLsn + 1) throw hole(`${path} starts at record ${first}, which the segment before it already holds`);
      const bytes = await readFile(path);
      const content = parseSegment(path, bytes);
      const isLast = i === segments.length - 1;
      if (content.torn && !isLast) throw hole(`${path} ends in a partial record but later segments follow it`);
      const records: LogRecord[] = content.records;
      records.forEach((record, k) => {
        if (record.lsn !== first + k) throw hole(`${path} holds record ${record.lsn} where ${first + k} belongs`);
      });
      for (const record of records) {
        if (record.lsn < next) continue;
        host.apply(record.m);
        replayed++;
        next++;
      }
      if (!isLast) {
        olderBytes += bytes.length;
      } else if (first + records.length < next) {
        // It ends before the snapshot (a crash right after a compaction's snapshot, before the
        // records it includes reached the log): the snapshot holds all of it, and appending
        // after it would leave a hole.
        await unlink(path);
        await syncDir(dir);
        removedSegments++;
        segments = segments.slice(0, i);
      } else {
        truncatedBytes = bytes.length - content.validBytes;
        tail = { firstLsn: first, validBytes: content.validBytes, exists: true };
      }
    }
    const lastLsn = next - 1;
    const writer = await LogWriter.open(dir, tail, lastLsn, { ...opts, ...(onFailure ? { onFailure } : {}) });
    if (!tail.exists) segments = [...segments, tail.firstLsn];
    return new DataDir(dir, writer, host, segments, olderBytes, snapshotLsn, opts, {
      snapshotLsn,
      replayed,
      truncatedBytes,
      removedTempFiles,
      removedSegments,
    });
  }

  /** The lsn of the last mutation appended. */
  get lastLsn(): number {
    return this.writer.lastLsn;
  }

  /** The error that failed the log (then the node refuses every call), if it failed. */
  get failure(): Error | undefined {
    return this.writer.failure;
  }

  /** Logs a mutation (queued at once, written by group commit); returns its lsn. */
  append(m: Mutation): number {
    const lsn = this.writer.append(m);
    if (!this.compacting && !this.closed && this.logBytes() >= this.compactAfterBytes) {
      // Not in this synchronous step: the state machine is in the middle of an operation.
      setImmediate(() => void this.compact());
    }
    return lsn;
  }

  /** Resolves once mutation `lsn` is as durable as the fsync policy promises. */
  durable(lsn: number): Promise<void> {
    return this.writer.durable(lsn);
  }

  /**
   * Compaction: the state now becomes the snapshot (written atomically), the log segments before
   * it are deleted. Writes go on meanwhile, into a new segment. One at a time; a failure is kept
   * for status and the old files stay (nothing is lost).
   */
  compact(): Promise<void> {
    if (this.closed || this.writer.failure) return Promise.resolve();
    this.compacting ??= this.compactOnce().finally(() => {
      this.compacting = undefined;
    });
    return this.compacting;
  }

  private async compactOnce(): Promise<void> {
    const started = performance.now();
    try {
      // The state and its lsn in one synchronous step; the rotation is queued right after that record.
      const lsn = this.writer.lastLsn;
      const state = this.host.snapshot();
      const rotated = this.writer.rotate();
      // Awaited below unless the snapshot fails first; a failed log is reported by the writer itself.
      rotated.catch(() => undefined);
      await writeFileAtomic(join(this.dir, SNAPSHOT), JSON.stringify({ format: "meridian-registry-data", version: 1, lsn, writtenAt: new Date().toISOString(), state }));
      this.snapshotLsn = lsn;
      const newFirst = await rotated;
      const old = this.segments.filter((first) => first < newFirst);
      for (const first of old) await unlink(join(this.dir, segmentName(first))).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
      await syncDir(this.dir);
      this.segments = [newFirst];
      this.olderBytes = 0;
      this.lastCompaction = { at: Date.now(), durationMs: performance.now() - started, lsn };
      this.lastCompactionError = undefined;
    } catch (e) {
      this.lastCompactionError = e instanceof Error ? e.message : String(e);
      // The segments of a rotation that happened stay; count them so the next trigger fires.
      this.segments = await this.segmentsOnDisk().catch(() => this.segments);
      this.olderBytes = await this.olderSegmentsBytes().catch(() => this.olderBytes);
    }
  }

  /** What the Status call reports about the folder. */
  status(): DataDirStatus {
    return {
      dir: this.dir,
      fsync: this.options.fsync,
      logBytes: this.logBytes(),
      segments: this.segments.length,
      lastLsn: this.writer.lastLsn,
      snapshotLsn: this.snapshotLsn,
      lastCompaction: this.lastCompaction,
      lastCompactionError: this.lastCompactionError,
      recovery: this.recovery,
    };
  }

  /** Waits for a compaction under way, writes and syncs what is queued, and releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.compactTimer) clearInterval(this.compactTimer);
    await this.compacting;
    try {
      await this.writer.close();
    } finally {
      await unlock(this.dir);
    }
  }

  private logBytes(): number {
    return this.olderBytes + this.writer.currentSegmentBytes;
  }

  private async segmentsOnDisk(): Promise<number[]> {
    return (await readdir(this.dir))
      .map(parseSegmentName)
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => a - b);
  }

  private async olderSegmentsBytes(): Promise<number> {
    let total = 0;
    for (const first of this.segments) {
      if (first === this.writer.currentSegment) continue;
      total += (await stat(join(this.dir, segmentName(first)))).size;
    }
    return total;
  }
}
