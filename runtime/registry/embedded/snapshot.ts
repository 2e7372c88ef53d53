import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { DataDirError, syncDir } from "./log.js";
import type { StateSnapshot } from "./state-machine.js";

/** The snapshot file of a data directory: the state up to log record `lsn`. */
export interface SnapshotFile {
  readonly format: "meridian-registry-data";
  readonly version: 1;
  /** The last log record the state includes: recovery replays the records after it. */
  readonly lsn: number;
  /** When it was written (ISO 8601). */
  readonly writtenAt: string;
  readonly state: StateSnapshot;
}

/** Reads a data directory's snapshot file; undefined when there is none yet. */
export async function loadSnapshot(path: string): Promise<SnapshotFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  let file: SnapshotFile;
  try {
    file = JSON.parse(text) as SnapshotFile;
  } catch (cause) {
    // Snapshots are renamed into place whole, so a half one is damage, not a crash.
    throw new DataDirError("CORRUPT", path, `${path} is not valid JSON: restore the data directory from a backup`, { cause });
  }
  if (file?.format !== "meridian-registry-data" || file.version !== 1 || !Number.isSafeInteger(file.lsn) || typeof file.state !== "object") {
    throw new DataDirError("FORMAT", path, `${path} is not a Meridian registry snapshot (format "meridian-registry-data", version 1)`);
  }
  return file;
}

/** The suffix of the temporary files writeFileAtomic writes (removed on start by removeTempFiles). */
const TMP_SUFFIX = /\.tmp-\d+$/;

/**
 * Writes `data` to `path` atomically: into a temporary file beside it, flushed to disk, then
 * renamed over the old file and the folder flushed, so a crash leaves the old or the new file,
 * never half of one. A failure removes the temporary file.
 */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const file = await open(tmp, "w");
    try {
      await file.writeFile(data, "utf8");
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dirname(path));
}

/**
 * Removes the temporary files a crash during writeFileAtomic left in `dir` (a compaction killed
 * before its rename); returns their names.
 */
export async function removeTempFiles(dir: string, names: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const name of names) {
    if (!TMP_SUFFIX.test(name)) continue;
    await unlink(join(dir, name)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e;
    });
    removed.push(basename(name));
  }
  return removed;
}

