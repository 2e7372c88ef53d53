import type { Socket } from "node:net";
import { Writer } from "../../runtime/index.js";
import { FrameError, FrameSplitter, StringInfoCache, frameLimits, type FrameLimits, type PartialFrameWatcher } from "./wire.js";

/** Socket settings shared by the client and the server side. */
export interface ConnectionOptions {
  readonly limits: FrameLimits;
  /**
   * Most bytes queued for one connection (encoded but not yet taken by the kernel). Past it the
   * client fails new calls with RESOURCE_EXHAUSTED and the server stops reading the connection
   * until it drains.
   */
  readonly maxQueuedBytes: number;
  /** Size of a connection's write slab. */
  readonly slabSize: number;
  /** TCP keepalive initial delay, ms (0 disables keepalive). */
  readonly keepAliveMs: number;
  /**
   * How frames reach the socket: "tick" (default) appends the frames encoded in the same tick
   * to one slab and writes them once the tick's microtasks are done, or earlier after 16 frames,
   * then 64 more, 256 more (see FIRST_FLUSH_FRAMES); "none" writes each frame as soon as it is
   * encoded (kept to measure the difference).
   */
  readonly batching: "tick" | "none";
}

/** Defaults of {@link ConnectionOptions} other than the limits. */
export const DEFAULT_CONNECTION = {
  maxQueuedBytes: 16 * 1024 * 1024,
  slabSize: 64 * 1024,
  keepAliveMs: 30_000,
  batching: "tick",
} as const;

/**
 * The ConnectionOptions of a client's or server's options: their frame limits (defaults filled
 * in by frameLimits) and, for what they leave unset, DEFAULT_CONNECTION.
 */
export function connectionOptions(options: {
  limits?: Partial<FrameLimits>;
  maxQueuedBytes?: number;
  keepAliveMs?: number;
  batching?: "tick" | "none";
}): ConnectionOptions {
  return {
    limits: frameLimits(options.limits),
    maxQueuedBytes: options.maxQueuedBytes ?? DEFAULT_CONNECTION.maxQueuedBytes,
    slabSize: DEFAULT_CONNECTION.slabSize,
    keepAliveMs: options.keepAliveMs ?? DEFAULT_CONNECTION.keepAliveMs,
    batching: options.batching ?? DEFAULT_CONNECTION.batching,
  };
}

/**
 * A tick's batch is written early once it holds this many bytes: large replies start moving
 * while the rest of the tick is encoded, and the slab stays near its size instead of growing
 * to hold a whole tick of them.
 */
const FLUSH_BYTES = 32 * 1024;

/**
 * A tick's batch is also written early once it holds this many frames, and again each time it
 * holds FLUSH_GROWTH times as many as the write before: 16, then 64 more, 256 more. The peer
 * starts on the first frames while this side is still encoding the rest, so two processes work
 * at once instead of taking turns (a client that sends 64 calls a tick and a server that answers
 * 64 a tick would otherwise each wait for the other's whole batch), and a deep pipeline still
 * pays only a handful of writes a tick (each costs a system call, and on TLS a record).
 */
const FIRST_FLUSH_FRAMES = 16;
const FLUSH_GROWTH = 4;

/** A slab that grew past this (a very large frame) is dropped rather than kept for reuse. */
const MAX_KEPT_SLAB = 1024 * 1024;

/** What a FrameConnection reports to its owner. */
export interface ConnectionHandler {
  /** A complete frame at `buf[start, end)`, LENGTH included. Throwing FrameError closes the connection. */
  onFrame(buf: Buffer, start: number, end: number): void;
  /** The connection is gone (once). `error` says why, when it was not a clean close. */
  onClose(error: Error | undefined): void;
  /** The write queue went past `maxQueuedBytes` (server: stop reading). */
  onCongested?(): void;
  /** The queue dropped back under the limit after having been over it (server: resume reading). */
  onDrain?(): void;
  /**
   * The write queue changed by `delta` bytes since the last report (reported once per write to
   * the socket and once per write completed): what a server sums over its connections.
   */
  onQueued?(delta: number): void;
}

/**
 * Why a connection is not being read; reading resumes once no reason is left. The server stops
 * reading a connection for several reasons at once, each lifted on its own.
 */
export const PauseReason = {
  /** Its own write queue is over `maxQueuedBytes`. */
  Congested: 1,
  /** It has `maxConcurrentCalls` unary calls, or `maxInflightBytes` request bytes, in flight. */
  Calls: 2,
  /** The server's bytes held for calls are over `maxServerBufferedBytes` and this connection holds more than its share. */
  ServerQueue: 4,
} as const;

function flushTick(c: FrameConnection): void {
  c.flushScheduled = false;
  c.flushAfter = FIRST_FLUSH_FRAMES;
  c.flush();
}

/**
 * One TCP connection carrying TTHeader frames in both directions: the part that the client and
 * the server share.
 *
 * Writing: frames are encoded straight into `writer` (header, then payload, contiguously), one
 * after the other. Everything encoded in a tick goes to the socket as one slice of the slab, with
 * one `write()`. The slab is rewound only when every slice handed to the socket has been flushed
 * (its write callback ran) and nothing is left to write, so no byte the kernel has not taken is
 * ever overwritten. When `write()` returns false, frames keep accumulating in the slab until
 * 'drain'.
 *
 * Reading: socket chunks go through a FrameSplitter, which hands out frames in place.
 */
export class FrameConnection {
  /** The slab frames are encoded into. Frames in it from `writer.start` on are not written yet. */
  writer: Writer;
  /** The string header block this connection wrote last, for the next frame to copy. */
  readonly stringInfo = new StringInfoCache();
  /** Incremented by every write to the socket: frames encoded after it have not left yet. */
  batch = 1;
  /** Frames read plus frames written, for idle detection. */
  activity = 0;
  /** Frames read. */
  framesRead = 0;
  closed = false;
  /** The `flushTick` of this tick is queued. */
  flushScheduled = false;
  /** Frames encoded since the last write to the socket. */
  private unflushedFrames = 0;
  /** How many unflushed frames make this tick's next early write: grows after each. */
  flushAfter = FIRST_FLUSH_FRAMES;
  private outstanding = 0;
  private socketWritable = true;
  private drainWaiters: (() => void)[] = [];
  private overLimit = false;
  private readonly splitter: FrameSplitter;
  private closeError: Error | undefined;
  /** PauseReason bits set: the socket is not read while any is. */
  private pausedReasons = 0;
  /** The write queue as last reported to `handler.onQueued`. */
  private reportedQueue = 0;
  /** `host:port` of the peer. */
  readonly peer: string;

  constructor(
    readonly socket: Socket,
    readonly options: ConnectionOptions,
    private readonly handler: ConnectionHandler,
    watcher?: PartialFrameWatcher,
  ) {
    this.writer = new Writer(options.slabSize);
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    if (options.keepAliveMs > 0) socket.setKeepAlive(true, options.keepAliveMs);
    this.splitter = new FrameSplitter(options.limits.maxFrameSize, (buf, start, end) => {
      this.activity++;
      this.framesRead++;
      handler.onFrame(buf, start, end);
    }, watcher);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.onSocketDrain());
    socket.on("error", (err) => {
      this.closeError ??= err;
    });
    socket.on("close", () => this.onSocketClose());
  }

  /** Bytes encoded but not yet taken by the kernel: this connection's write queue. */
  get queuedBytes(): number {
    return this.writer.pos - this.writer.start + this.socket.writableLength;
  }

  /** True when the write queue is past `maxQueuedBytes`. */
  get congested(): boolean {
    return this.queuedBytes > this.options.maxQueuedBytes;
  }

  /**
   * Rolls the writer back to `mark` (relative to `writer.start`), dropping a frame whose encoding
   * failed half way. Frames before it stay.
   */
  rollback(mark: number): void {
    this.writer.pos = this.writer.start + mark;
  }

  /** Called after each frame is encoded into `writer`: schedules (or does) the write. */
  frameWritten(): void {
    this.activity++;
    if (this.options.batching === "none") return this.flush();
    if (++this.unflushedFrames >= this.flushAfter) {
      this.flushAfter *= FLUSH_GROWTH;
      this.flush();
    } else if (this.writer.pos - this.writer.start >= FLUSH_BYTES) {
      this.flush();
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flushTick, this);
    }
  }

  /** Writes every frame encoded so far, as one slice, unless the socket asked to wait. */
  flush(): void {
    const w = this.writer;
    if (this.closed) return;
    if (this.socketWritable && w.pos !== w.start) {
      const slice = w.finish();
      this.unflushedFrames = 0;
      this.batch++;
      this.outstanding++;
      if (!this.socket.write(slice, this.onWritten)) this.socketWritable = false;
    }
    if (!this.overLimit && this.congested) {
      this.overLimit = true;
      this.handler.onCongested?.();
    }
    this.reportQueue();
  }

  /** Tells the handler how much the write queue changed since the last report. */
  private reportQueue(): void {
    const onQueued = this.handler.onQueued;
    if (onQueued === undefined) return;
    const q = this.closed ? 0 : this.queuedBytes;
    const delta = q - this.reportedQueue;
    if (delta === 0) return;
    this.reportedQueue = q;
    onQueued.call(this.handler, delta);
  }

  /** The write queue as last reported: what this connection counts for in its server's sum. */
  get reportedQueuedBytes(): number {
    return this.reportedQueue;
  }

  private readonly onWritten = (): void => {
    this.outstanding--;
    const w = this.writer;
    if (this.outstanding === 0 && w.pos === w.start && !this.closed) {
      // Everything handed to the socket has been taken: the slab can be rewritten.
      if (w.buf.length > MAX_KEPT_SLAB) this.writer = new Writer(this.options.slabSize);
      else w.reset();
    }
    this.checkDrained();
    this.reportQueue();
  };

  private onSocketDrain(): void {
    this.socketWritable = true;
    this.flush();
    this.checkDrained();
  }

  /**
   * Resolves once the write queue is back under `maxQueuedBytes` (or the connection closed):
   * what a stream's sender waits for, so that streams cannot queue past the limit either.
   */
  drained(): Promise<void> {
    if (!this.congested || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private checkDrained(): void {
    if (this.overLimit && !this.congested) {
      this.overLimit = false;
      this.handler.onDrain?.();
    }
    if (this.drainWaiters.length > 0 && (!this.congested || this.closed)) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.splitter.push(chunk);
    } catch (e) {
      // A bad frame (FrameError), or a bug in handling one: either way this byte stream can no
      // longer be trusted, and the rest of the process must not go down with it.
      this.destroy(e instanceof Error ? e : new FrameError("BAD_PAYLOAD", String(e)));
    }
  }

  /** Stops reading for `reason` (server backpressure), until `resume(reason)`. */
  pause(reason: number): void {
    if (this.pausedReasons === 0) this.socket.pause();
    this.pausedReasons |= reason;
  }

  /** Lifts `reason`; reading resumes once no other reason holds it. */
  resume(reason: number): void {
    if ((this.pausedReasons & reason) === 0) return;
    this.pausedReasons &= ~reason;
    if (this.pausedReasons === 0 && !this.closed) this.socket.resume();
  }

  /** Whether reading is stopped, for any reason. */
  get paused(): boolean {
    return this.pausedReasons !== 0;
  }

  /** Whether reading is stopped for `reason`. */
  pausedFor(reason: number): boolean {
    return (this.pausedReasons & reason) !== 0;
  }

  /** Writes what is queued, then closes the connection cleanly. */
  end(): void {
    if (this.closed) return;
    this.flush();
    this.socket.end();
  }

  /** Closes the connection at once; `error` is reported to the handler as the reason. */
  destroy(error?: Error): void {
    if (error !== undefined) this.closeError ??= error;
    this.socket.destroy();
    this.onSocketClose();
  }

  private onSocketClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.splitter.clear();
    this.handler.onClose(this.closeError);
    this.checkDrained();
    this.reportQueue();
  }
}
