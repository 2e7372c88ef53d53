import { open, readFile, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import type { StateSnapshot } from "./state-machine.js";

/** Reads a snapshot file; undefined when there is none yet. */
export async function loadSnapshot(path: string): Promise<StateSnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  return JSON.parse(text) as StateSnapshot;
}

/**
 * Writes `data` to `path` atomically: into a temporary file beside it, flushed to disk, then
 * renamed over the old file (and the folder flushed), so a crash leaves the old or the new
 * snapshot, never half of one.
 */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const file = await open(tmp, "w");
  try {
    await file.writeFile(data, "utf8");
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  // Best effort: make the rename itself durable.
  const dir = await open(dirname(path), "r").catch(() => undefined);
  if (dir) await dir.sync().catch(() => undefined).finally(() => dir.close());
}

/**
 * Persists a state machine's snapshots with group commit: `persist(n)` resolves once a snapshot
 * that includes mutation n is on disk. Mutations that arrive while a snapshot is being written
 * share the next one, so a burst of writes costs two snapshot writes, not one per write.
 */
export class SnapshotWriter {
  private written = 0;
  private writing: Promise<void> | undefined;

  constructor(
    private readonly path: string,
    private readonly take: () => { mutations: number; snapshot: StateSnapshot },
  ) {}

  /** Resolves once mutation `upTo` is on disk; rejects if writing the file failed. */
  async persist(upTo: number): Promise<void> {
    while (this.written < upTo) {
      if (!this.writing) {
        this.writing = this.writeOnce().finally(() => {
          this.writing = undefined;
        });
      }
      await this.writing;
    }
  }

  private async writeOnce(): Promise<void> {
    const { mutations, snapshot } = this.take();
    await writeFileAtomic(this.path, JSON.stringify(snapshot));
    this.written = Math.max(this.written, mutations);
  }
}
