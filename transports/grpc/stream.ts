import type { Readable, Writable } from "node:stream";

/**
 * Flow control over grpc-js's streams, shared by the client and the server side.
 *
 * grpc-js asks HTTP/2 for the next message only when its object-mode Readable wants one (its
 * `_read` calls `startRead()`), and HTTP/2 grants the peer more window only as messages are read.
 * So reading on demand, one `read()` per message the consumer pulls, is what makes a slow reader
 * slow the writer on the other side. Writing, grpc-js's Writable completes a write only when
 * HTTP/2 has sent it (flow-control window permitting); `write()` returning false means its
 * buffer is full, and 'drain' that it has room again.
 */

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * Messages of a grpc-js Readable as an async iterator, pulled: the next message is read from
 * the stream only when `next()` is called. The owner says when the stream is over with
 * `finish(error?)` (after which messages already buffered are still handed out, then the error
 * is thrown or the iteration ends). Returning early (`break` in `for await`) calls `abandon`.
 */
export class PullReader<T> implements AsyncIterableIterator<T> {
  private waiting: (() => void) | undefined;
  private finished = false;
  /** Set by `abort`: buffered messages are no longer handed out. */
  private dropped = false;
  private failure: unknown = undefined;

  constructor(
    private readonly stream: Readable | undefined,
    private readonly abandon: () => void,
  ) {
    stream?.on("readable", this.wake);
  }

  /** No more messages will arrive: end the iteration, or throw `error` once the buffer is empty. */
  finish(error?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = error;
    this.wake();
  }

  /** Ends at once, dropping buffered messages (local cancellation): `next()` throws `error`. */
  abort(error: unknown): void {
    this.finish(error);
    this.failure = error;
    this.stream?.removeListener("readable", this.wake);
    this.dropped = true;
  }

  private readonly wake = (): void => {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  };

  async next(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      if (!this.dropped) {
        const m: unknown = this.stream?.read();
        if (m !== null && m !== undefined) return { done: false, value: m as T };
      }
      if (this.finished) {
        if (this.failure !== undefined) throw this.failure;
        return DONE;
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  async return(): Promise<IteratorResult<T, undefined>> {
    if (!this.finished) this.abandon();
    return DONE;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

const RESOLVED = Promise.resolve();

/**
 * Writes to a grpc-js Writable with backpressure: `write` resolves at once while the stream has
 * room, else on its next 'drain'. `settle(error)` ends the gate when the call ends: writes still
 * waiting, and any later one, reject with `error`, or resolve (without writing) when the call
 * ended well and nobody reads any more.
 */
export class DrainGate {
  private waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private settled = false;
  private failure: unknown = undefined;

  constructor(private readonly stream: Writable) {
    stream.on("drain", () => this.release(undefined));
  }

  write(chunk: Buffer): Promise<void> {
    if (this.settled) return this.failure === undefined ? RESOLVED : Promise.reject(this.failure);
    if (this.stream.write(chunk)) return RESOLVED;
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** The call ended, with `error` or well (undefined). */
  settle(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.failure = error;
    this.release(error);
  }

  private release(error: unknown): void {
    const w = this.waiters;
    if (w.length === 0) return;
    this.waiters = [];
    for (const x of w) {
      if (error === undefined) x.resolve();
      else x.reject(error);
    }
  }
}
