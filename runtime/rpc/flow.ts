import type { RpcError } from "./errors.js";

/**
 * Flow-control building blocks for streaming transports (the memory and TCP transports use
 * them): an inbox the consumer pulls from, and the sender's credit. A receiver grants its peer
 * credit, in messages, as its consumer takes messages out of the inbox; a sender spends one
 * credit per message and waits when it has none. So the inbox never holds more than what was
 * granted, and a slow reader slows the writer however many streams share a connection.
 */

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** What a StreamInbox tells its owner. */
export interface InboxHooks {
  /** A message was taken by the consumer (grant the peer credit for another). */
  onTake?(): void;
  /** The consumer stopped iterating before the end (`break` in `for await`). */
  onReturn?(): void;
}

/**
 * The receiving end of one direction of a stream: messages pushed by the transport, pulled by
 * one consumer. Ends normally (`end`) or with an error (`fail`), after the messages already
 * queued unless the error drops them (a cancellation: nobody wants the rest).
 */
export class StreamInbox<T> implements AsyncIterable<T>, AsyncIterator<T> {
  private items: T[] = [];
  private head = 0;
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: RpcError) => void } | undefined;
  private ended = false;
  private error: RpcError | undefined;

  constructor(private readonly hooks: InboxHooks = {}) {}

  /** Messages queued and not taken yet. */
  get size(): number {
    return this.items.length - this.head;
  }

  /** Whether `end` or `fail` was called: no more messages will be queued. */
  get closed(): boolean {
    return this.ended;
  }

  /** Queues a message for the consumer (dropped once the inbox is closed). */
  push(item: T): void {
    if (this.ended) return;
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      this.hooks.onTake?.();
      w.resolve({ done: false, value: item });
    } else {
      this.items.push(item);
    }
  }

  /** Ends the iteration once the queued messages are taken. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.wake();
  }

  /** Fails the iteration with `error`: after the queued messages, or at once with `drop`. */
  fail(error: RpcError, drop = false): void {
    if (drop) {
      this.items = [];
      this.head = 0;
    }
    if (this.ended) {
      // Already ended normally: a later failure (a cancellation) still drops what is left.
      if (drop && this.error === undefined) this.error = error;
      return;
    }
    this.ended = true;
    this.error = error;
    this.wake();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const item = this.items[this.head] as T;
      this.items[this.head++] = undefined as T;
      if (this.head === this.items.length) {
        this.items = [];
        this.head = 0;
      }
      this.hooks.onTake?.();
      return Promise.resolve({ done: false, value: item });
    }
    if (this.ended) return this.error === undefined ? Promise.resolve(DONE) : Promise.reject(this.error);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.ended || this.size > 0) this.hooks.onReturn?.();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }

  private wake(): void {
    const w = this.waiter;
    if (w === undefined) return;
    this.waiter = undefined;
    if (this.error !== undefined) w.reject(this.error);
    else w.resolve(DONE);
  }
}

/**
 * The sending end's credit: how many more messages the peer has room for. `acquire` takes one,
 * waiting until the peer grants more; after `fail` it rejects.
 */
export class SendCredit {
  private waiters: { resolve: () => void; reject: (e: RpcError) => void }[] = [];
  private error: RpcError | undefined;

  constructor(private credit: number) {}

  /** Credit left. */
  get available(): number {
    return this.credit;
  }

  /** The peer made room for `n` more messages. */
  grant(n: number): void {
    if (!(n > 0)) return;
    this.credit += n;
    while (this.credit > 0 && this.waiters.length > 0) {
      this.credit--;
      this.waiters.shift()!.resolve();
    }
  }

  /** Takes one credit, waiting for it when there is none; rejects once failed. */
  acquire(): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.credit > 0 && this.waiters.length === 0) {
      this.credit--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Fails waiting and later acquires with `error` (the stream is over). */
  fail(error: RpcError): void {
    if (this.error !== undefined) return;
    this.error = error;
    const w = this.waiters;
    this.waiters = [];
    for (const x of w) x.reject(error);
  }
}

/**
 * The receiver's side of credit: decides when to grant the peer more. The peer starts with
 * `initial` credit (what the protocol lets it send before hearing anything); the receiver wants
 * at most `window` messages outstanding (granted and not yet taken by its consumer), and tops
 * the peer up once it can grant at least half a window, so grants are batched.
 */
export class ReceiveWindow {
  private outstanding: number;

  constructor(
    readonly window: number,
    initial: number,
  ) {
    this.outstanding = initial;
  }

  /** Credit to grant right away (a window larger than the initial credit), or 0. */
  opening(): number {
    return this.topUp(1);
  }

  /** One message was taken by the consumer: returns the credit to grant now, or 0. */
  taken(): number {
    this.outstanding--;
    return this.topUp(Math.max(1, this.window >>> 1));
  }

  /** A message arrived: false when the peer sent more than it was granted. */
  arrived(queued: number): boolean {
    return queued <= this.outstanding;
  }

  private topUp(batch: number): number {
    const room = this.window - this.outstanding;
    if (room < batch) return 0;
    this.outstanding += room;
    return room;
  }
}
