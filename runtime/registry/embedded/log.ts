/**
 * The registry's append-only log of mutations: segment files of checksummed records, written
 * with group commit, and read back on recovery (a torn tail cut off, a corrupt record refused).
 *
 * A segment is `wal-<first lsn, 16 digits>.log`: an 8-byte header ("MRDNWAL1"), then records,
 * each `[u32 LE payload length][u32 LE CRC-32 of the payload][payload]`, the payload being the
 * UTF-8 JSON of `{ lsn, m }` (a log sequence number, one more than the record before, and the
 * state machine's Mutation). DataDir (data-dir.ts) decides which segments exist and when.
 */
import { open, type FileHandle } from "node:fs/promises";
import * as zlib from "node:zlib";
import { join } from "node:path";
import type { Mutation } from "./state-machine.js";

/**
 * When an acknowledged write is on disk.
 * - `always`: the log is fsynced (fdatasync) before a write is acknowledged, records that arrive
 *   meanwhile sharing the next fsync (group commit). Nothing acknowledged is lost, even if the
 *   machine loses power.
 * - `interval`: the log is written to the operating system before a write is acknowledged and
 *   fsynced every `fsyncIntervalMs`. A crash of the process (kill -9) loses nothing
 *   acknowledged; a crash of the machine (power, kernel) loses up to that interval.
 */
export type FsyncPolicy = "always" | "interval";

/** Why the data directory cannot be used. */
export type DataDirErrorCode = "CORRUPT" | "LOCKED" | "FORMAT";

/** The registry's data directory (its log or snapshot) cannot be used as it is: says which file and what to do. */
export class DataDirError extends Error {
  override readonly name = "DataDirError";
  constructor(
    readonly code: DataDirErrorCode,
    /** The file at fault. */
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One record read back from a segment. */
export interface LogRecord {
  readonly lsn: number;
  readonly m: Mutation;
}

/** The first bytes of every segment. */
const SEGMENT_HEADER = Buffer.from("MRDNWAL1", "latin1");
const RECORD_HEADER_BYTES = 8;
/**
 * Longest record payload: far above what the default value limit gives (1.5 Mi UTF-16 units, at
 * most 3 bytes each in UTF-8); a longer length field is taken for damage.
 */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/** CRC-32 (IEEE): zlib's native one where Node has it (>= 20.15), else a table loop. */
export function crc32(bytes: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (native) return native(bytes);
  let c = -1;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** The file name of the segment whose first record is `firstLsn`. */
export function segmentName(firstLsn: number): string {
  return `wal-${String(firstLsn).padStart(16, "0")}.log`;
}

/** The first lsn a segment file name stands for, or undefined when it is not a segment's name. */
export function parseSegmentName(name: string): number | undefined {
  const m = /^wal-(\d{16})\.log$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** One record as bytes: header and payload. */
export function encodeRecord(lsn: number, m: Mutation): Buffer {
  const payload = Buffer.from(JSON.stringify({ lsn, m }), "utf8");
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  payload.copy(out, RECORD_HEADER_BYTES);
  return out;
}

/** What reading one segment found: its records and how many bytes of it are whole records. */
export interface SegmentContent {
  readonly records: LogRecord[];
  /** Bytes up to the end of the last whole record (the file's length unless its tail is torn). */
  readonly validBytes: number;
  /** Whether the file ends in a partial record (or a partial header): a write cut short by a crash. */
  readonly torn: boolean;
}

function allZero(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Parses a segment's bytes. A partial record at the end (shorter than its header says, or whose
 * checksum fails with nothing but zeros after it: what a crash mid-write leaves) is a torn tail;
 * a record whose checksum fails with data after it is corruption, and throws: recovery must not
 * silently drop acknowledged writes that follow it.
 */
export function parseSegment(path: string, bytes: Buffer): SegmentContent {
  const records: LogRecord[] = [];
  if (bytes.length < SEGMENT_HEADER.length) {
    if (SEGMENT_HEADER.subarray(0, bytes.length).equals(bytes)) return { records, validBytes: 0, torn: bytes.length > 0 };
    throw new DataDirError("FORMAT", path, `${path} is not a Meridian registry log segment (bad header)`);
  }
  if (!bytes.subarray(0, SEGMENT_HEADER.length).equals(SEGMENT_HEADER)) {
    throw new DataDirError("FORMAT", path, `${path} is not a Meridian registry log segment (bad header)`);
  }
  let offset = SEGMENT_HEADER.length;
  const corrupt = (why: string) =>
    new DataDirError(
      "CORRUPT",
      path,
      `${path} is corrupt at byte ${offset} (${why}) and records follow it: refusing to start, since dropping them could lose acknowledged writes. Restore the data directory from a backup, or cut the file at byte ${offset} by hand to accept losing what follows.`,
    );
  while (offset < bytes.length) {
    const torn = { records, validBytes: offset, torn: true };
    if (bytes.length - offset < RECORD_HEADER_BYTES) return torn;
    const length = bytes.readUInt32LE(offset);
    const sum = bytes.readUInt32LE(offset + 4);
    if (length === 0 || length > MAX_RECORD_BYTES) {
      if (allZero(bytes, offset)) return torn;
      throw corrupt(`a record length of ${length}`);
    }
    const end = offset + RECORD_HEADER_BYTES + length;
    if (end > bytes.length) return torn;
    const payload = bytes.subarray(offset + RECORD_HEADER_BYTES, end);
    if (crc32(payload) !== sum) {
      if (allZero(bytes, end)) return torn;
      throw corrupt("checksum mismatch");
    }
    let record: LogRecord;
    try {
      record = JSON.parse(payload.toString("utf8")) as LogRecord;
    } catch (cause) {
      throw new DataDirError("CORRUPT", path, `${path}: the record at byte ${offset} has a valid checksum but is not JSON (written by another version?)`, { cause });
    }
    if (!Number.isSafeInteger(record.lsn) || typeof record.m !== "object" || record.m === null) {
      throw new DataDirError("FORMAT", path, `${path}: the record at byte ${offset} is not a registry mutation`);
    }
    records.push(record);
    offset = end;
  }
  return { records, validBytes: offset, torn: false };
}

/** Options of a LogWriter. */
export interface LogWriterOptions {
  readonly fsync: FsyncPolicy;
  /** For `interval`: at most this long between a write and its fsync, ms. */
  readonly fsyncIntervalMs: number;
  /** Called once when the log fails. */
  readonly onFailure?: (error: Error) => void;
}

type QueueItem = { kind: "record"; lsn: number; bytes: Buffer } | { kind: "rotate"; firstLsn: number; done: (error?: Error) => void };

/**
 * Appends records to the current segment with group commit: `append` queues a record at once
 * (in the same synchronous step as the change it records, so the log's order is the state
 * machine's), one writer loop writes everything queued in one write and, for `always`, one
 * fdatasync, then releases every record that batch made durable. After a write or fsync fails
 * the log is failed for good: nothing later may follow a record that might be missing.
 */
export class LogWriter {
  private readonly queue: QueueItem[] = [];
  private readonly waiters: { lsn: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private running: Promise<void> | undefined;
  private syncRequested = false;
  private lastSyncAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private lastLsn_: number;
  /** The highest lsn an acknowledgement may rely on (written, or written and synced, by policy). */
  private durableLsn: number;
  private writtenLsn: number;
  /** The highest lsn written and fsynced. */
  private durableSyncedLsn: number;
  private failure_: Error | undefined;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private handle: FileHandle,
    /** The current segment's first lsn and size. */
    private segmentFirst: number,
    private segmentBytes: number,
    lastLsn: number,
    private readonly options: LogWriterOptions,
  ) {
    this.lastLsn_ = lastLsn;
    this.durableLsn = lastLsn;
    this.writtenLsn = lastLsn;
    this.durableSyncedLsn = lastLsn;
    if (options.fsync === "interval") {
      this.timer = setInterval(() => {
        if (this.writtenLsn > this.durableSyncedLsn) this.requestSync();
      }, options.fsyncIntervalMs);
      this.timer.unref();
    }
  }

  /**
   * Opens the writer on a segment: appends to `segment` (cut to `validBytes` first: a torn tail
   * goes) or creates the segment `firstLsn` when it does not exist.
   */
  static async open(dir: string, segment: { firstLsn: number; validBytes: number; exists: boolean }, lastLsn: number, options: LogWriterOptions): Promise<LogWriter> {
    const path = join(dir, segmentName(segment.firstLsn));
    if (!segment.exists) {
      const handle = await createSegment(dir, segment.firstLsn);
      return new LogWriter(dir, handle, segment.firstLsn, SEGMENT_HEADER.length, lastLsn, options);
    }
    const handle = await open(path, "r+");
    try {
      let size = segment.validBytes;
      if (size < SEGMENT_HEADER.length) {
        // A segment whose header itself was torn: start it again.
        await handle.truncate(0);
        await handle.write(SEGMENT_HEADER, 0, SEGMENT_HEADER.length, 0);
        size = SEGMENT_HEADER.length;
      } else {
        await handle.truncate(size);
      }
      await handle.datasync();
      return new LogWriter(dir, handle, segment.firstLsn, size, lastLsn, options);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** The lsn of the last record appended. */
  get lastLsn(): number {
    return this.lastLsn_;
  }

  /** The first lsn of the segment being written. */
  get currentSegment(): number {
    return this.segmentFirst;
  }

  /** Bytes in the segment being written (records queued but not written yet not counted). */
  get currentSegmentBytes(): number {
    return this.segmentBytes;
  }

  /** The error that failed the log, if it failed. */
  get failure(): Error | undefined {
    return this.failure_;
  }

  /** Queues a record and returns its lsn; `durable(lsn)` says when it is on disk. */
  append(m: Mutation): number {
    const lsn = ++this.lastLsn_;
    // A failed log takes nothing more (its node refuses every call): no queue grows behind it.
    if (this.failure_ || this.closed) return lsn;
    const bytes = encodeRecord(lsn, m);
    if (bytes.length - RECORD_HEADER_BYTES > MAX_RECORD_BYTES) {
      // Cannot happen within the state machine's limits; refusing here keeps the log readable.
      this.fail(new Error(`a log record of ${bytes.length} bytes is over the limit of ${MAX_RECORD_BYTES}`));
      return lsn;
    }
    this.queue.push({ kind: "record", lsn, bytes });
    this.kick();
    return lsn;
  }

  /** Resolves once record `lsn` is as durable as the policy promises; rejects once the log failed. */
  durable(lsn: number): Promise<void> {
    if (this.failure_) return Promise.reject(this.failure_);
    if (lsn <= this.durableLsn) return Promise.resolve();
    // Nothing more is written after close: waiting would never end.
    if (this.closed) return Promise.reject(new Error(`the registry's log in ${this.dir} is closed; record ${lsn} was not written`));
    return new Promise((resolve, reject) => this.waiters.push({ lsn, resolve, reject }));
  }

  /**
   * Starts a new segment after every record appended so far; resolves once the old segment is
   * synced and closed and the new one exists on disk, with its first lsn.
   */
  rotate(): Promise<number> {
    const firstLsn = this.lastLsn_ + 1;
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: "rotate", firstLsn, done: (error) => (error ? reject(error) : resolve(firstLsn)) });
      this.kick();
    });
  }

  /** Writes and syncs what is queued, then closes the segment (a failure was reported already: not thrown again). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.requestSync();
    while (this.running) await this.running;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.handle.close().catch(() => undefined);
  }

  /** Asks the loop for an fsync of everything written (the `interval` timer, and close). */
  private requestSync(): void {
    this.syncRequested = true;
    this.kick();
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (!this.failure_ && (this.queue.length > 0 || this.syncRequested)) this.kick();
    });
  }

  private async run(): Promise<void> {
    try {
      while (!this.failure_ && (this.queue.length > 0 || this.syncRequested)) {
        const head = this.queue[0];
        if (head?.kind === "rotate") {
          this.queue.shift();
          try {
            await this.switchSegment(head.firstLsn);
            head.done();
          } catch (e) {
            head.done(e as Error);
            throw e;
          }
          continue;
        }
        // Every record up to the next rotation, in one write.
        let count = 0;
        while (count < this.queue.length && this.queue[count]!.kind === "record") count++;
        const batch = this.queue.splice(0, count) as { kind: "record"; lsn: number; bytes: Buffer }[];
        if (batch.length > 0) {
          const buffers = batch.map((r) => r.bytes);
          const { bytesWritten } = await this.handle.writev(buffers, this.segmentBytes);
          const total = buffers.reduce((n, b) => n + b.length, 0);
          if (bytesWritten !== total) throw new Error(`short write to the registry log: ${bytesWritten} of ${total} bytes`);
          this.segmentBytes += total;
          this.writtenLsn = batch[batch.length - 1]!.lsn;
        }
        const sync = this.options.fsync === "always" || this.syncRequested || performance.now() - this.lastSyncAt >= this.options.fsyncIntervalMs;
        this.syncRequested = false;
        if (sync && this.writtenLsn > this.durableSyncedLsn) {
          const upTo = this.writtenLsn;
          await this.handle.datasync();
          this.lastSyncAt = performance.now();
          this.durableSyncedLsn = upTo;
        }
        this.release(this.options.fsync === "always" ? this.durableSyncedLsn : this.writtenLsn);
      }
    } catch (e) {
      this.fail(e as Error);
    }
  }

  private async switchSegment(firstLsn: number): Promise<void> {
    // The old segment is synced whatever the policy: recovery accepts a torn tail only in the last one.
    await this.handle.datasync();
    this.durableSyncedLsn = this.writtenLsn;
    this.release(this.writtenLsn);
    const next = await createSegment(this.dir, firstLsn);
    await this.handle.close();
    this.handle = next;
    this.segmentFirst = firstLsn;
    this.segmentBytes = SEGMENT_HEADER.length;
  }

  private release(upTo: number): void {
    if (upTo <= this.durableLsn) return;
    this.durableLsn = upTo;
    let i = 0;
    while (i < this.waiters.length && this.waiters[i]!.lsn <= upTo) this.waiters[i++]!.resolve();
    this.waiters.splice(0, i);
  }

  private fail(error: Error): void {
    if (this.failure_) return;
    this.failure_ = new Error(`the registry's log in ${this.dir} failed: ${error.message}; acknowledged writes are safe on disk, the others may be lost: restart the server`, { cause: error });
    for (const item of this.queue.splice(0)) if (item.kind === "rotate") item.done(this.failure_);
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure_);
    this.options.onFailure?.(this.failure_);
  }
}

/** Creates a new, empty segment (header written and synced, the folder synced so the file stays). */
async function createSegment(dir: string, firstLsn: number): Promise<FileHandle> {
  const handle = await open(join(dir, segmentName(firstLsn)), "wx");
  try {
    await handle.write(SEGMENT_HEADER, 0, SEGMENT_HEADER.length, 0);
    await handle.datasync();
    await syncDir(dir);
    return handle;
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** fsyncs a folder, so that files created, renamed or deleted in it stay so after a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
