/**
 * A push-to-pull bridge: producers `push` values (or `fail` / `end` it), one consumer iterates.
 * Used to turn store callbacks into the AsyncIterable that `Store.watch` returns. `onReturn`
 * runs once when the consumer stops early (break / return) or the queue ends, to release the
 * producer.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private failWaiter: ((e: unknown) => void) | undefined;
  private error: unknown;
  private done = false;
  private released = false;

  constructor(private readonly onReturn: () => void = () => undefined) {}

  push(item: T): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = this.failWaiter = undefined;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  /** Ends the iteration with an error, after the values already pushed. */
  fail(error: unknown): void {
    if (this.done) return;
    this.error = error;
    this.finish();
  }

  /** Ends the iteration normally, after the values already pushed. */
  end(): void {
    if (this.done) return;
    this.finish();
  }

  /** Values pushed but not yet taken. */
  get size(): number {
    return this.items.length;
  }

  private finish(): void {
    this.done = true;
    if (this.waiter && this.items.length === 0) {
      const w = this.waiter;
      const f = this.failWaiter!;
      this.waiter = this.failWaiter = undefined;
      if (this.error !== undefined) f(this.error);
      else w({ value: undefined, done: true });
    }
    this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.onReturn();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.done) {
          if (this.error !== undefined) {
            const e = this.error;
            this.error = undefined;
            return Promise.reject(e);
          }
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise<IteratorResult<T>>((resolve, reject) => {
          this.waiter = resolve;
          this.failWaiter = reject;
        });
      },
      return: () => {
        this.done = true;
        this.items.length = 0;
        this.error = undefined;
        this.release();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
