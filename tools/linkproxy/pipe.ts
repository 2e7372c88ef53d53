import type { Socket } from "node:net";

/** What a pipe asks its link for every chunk: the current one-way delay and whether to drop. */
export interface PipeConditions {
  /** One-way delay for a chunk read now, in ms (latency plus a jitter sample). */
  delayMs(): number;
  /** True while the link is blackholed: chunks are read and thrown away. */
  readonly blackholed: boolean;
}

/**
 * One direction of a proxied connection: reads chunks from `src` and writes them to `dst` after
 * the link's one-way delay, in order (a chunk never overtakes the one before it, whatever the
 * jitter). Queued bytes are bounded: past `maxQueuedBytes` the source is paused, so a slow or
 * delayed peer pushes back through TCP instead of growing memory.
 */
export class DelayedPipe {
  private readonly queue: { at: number; chunk: Buffer }[] = [];
  private queuedBytes = 0;
  private lastAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private dstBlocked = false;
  private srcEnded = false;
  private closed = false;
  /** Bytes delivered to `dst`. */
  forwarded = 0;
  /** Bytes read from `src` and thrown away while blackholed. */
  dropped = 0;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly conditions: PipeConditions,
    private readonly maxQueuedBytes: number,
  ) {
    src.on("data", (chunk: Buffer) => this.onData(chunk));
    src.on("end", () => {
      this.srcEnded = true;
      this.maybeEnd();
    });
    dst.on("drain", () => {
      this.dstBlocked = false;
      this.flush();
    });
  }

  /** Throws away everything queued (the link was cut: data in flight is lost). */
  discardQueued(): void {
    for (const { chunk } of this.queue) this.dropped += chunk.length;
    this.queue.length = 0;
    this.queuedBytes = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.resumeIfRoom();
  }

  /** Stops all timers; the sockets are destroyed by the owner. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    if (this.conditions.blackholed) {
      this.dropped += chunk.length;
      return;
    }
    const now = performance.now();
    const at = Math.max(this.lastAt, now + this.conditions.delayMs());
    this.lastAt = at;
    if (at <= now && this.queue.length === 0 && !this.dstBlocked) {
      this.write(chunk);
      return;
    }
    this.queue.push({ at, chunk });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes >= this.maxQueuedBytes) this.src.pause();
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0 || this.dstBlocked || this.closed) return;
    const wait = Math.max(0, this.queue[0]!.at - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    if (this.closed) return;
    const now = performance.now();
    while (this.queue.length > 0 && !this.dstBlocked && this.queue[0]!.at <= now + 0.5) {
      const { chunk } = this.queue.shift()!;
      this.queuedBytes -= chunk.length;
      this.write(chunk);
    }
    this.resumeIfRoom();
    this.schedule();
    this.maybeEnd();
  }

  private write(chunk: Buffer): void {
    if (this.dst.destroyed) return;
    this.forwarded += chunk.length;
    if (!this.dst.write(chunk)) {
      this.dstBlocked = true;
      this.src.pause();
    }
  }

  private resumeIfRoom(): void {
    if (!this.dstBlocked && this.queuedBytes < this.maxQueuedBytes / 2 && this.src.isPaused()) this.src.resume();
  }

  private maybeEnd(): void {
    if (this.srcEnded && this.queue.length === 0 && !this.dst.destroyed && !this.dst.writableEnded) this.dst.end();
  }
}
