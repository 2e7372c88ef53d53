import type { Operation } from "./checker.js";
import type { KvInput, KvOutput } from "./model.js";

/** An unknown-outcome operation that can be settled once the store tells what happened. */
export interface UnknownOperation {
  /** It took effect with this output (its return time stays unknown). */
  applied(output: KvOutput): void;
  /** It never took effect (and never will): dropped from the history. */
  notApplied(): void;
}

/** An invoked operation waiting for its outcome; exactly one of its methods should be called. */
export interface PendingOperation {
  /** The store answered: record the output and the return time. */
  ok(output: KvOutput): void;
  /**
   * The outcome is unknown (timeout, connection lost after sending): the operation may take
   * effect at any time after its call, or never. Settle it later through the returned handle.
   */
  unknown(): UnknownOperation;
  /** The operation certainly had no effect (never sent, or a read that failed): dropped from the history. */
  fail(): void;
}

/**
 * Records a history for checkHistory from concurrent clients in one process, timing every call
 * on one monotonic clock (performance.now, ms from the recorder's creation).
 */
export class HistoryRecorder {
  private readonly ops: (Operation | undefined)[] = [];
  private readonly origin = performance.now();

  /** Ms since the recorder was created. */
  now(): number {
    return performance.now() - this.origin;
  }

  /** Records the call of an operation; settle it with the returned handle. */
  invoke(client: string | number, key: string, input: KvInput): PendingOperation {
    const call = this.now();
    const index = this.ops.length;
    this.ops.push({ client, key, input, call });
    let settled = false;
    const settle = (op: Operation | undefined) => {
      if (settled) throw new Error(`operation ${index} settled twice`);
      settled = true;
      this.ops[index] = op;
    };
    return {
      ok: (output) => settle({ client, key, input, call, return: this.now(), output }),
      unknown: () => {
        settle({ client, key, input, call });
        let resolved = false;
        const resolve = (op: Operation | undefined) => {
          if (resolved) throw new Error(`operation ${index} resolved twice`);
          resolved = true;
          this.ops[index] = op;
        };
        return {
          applied: (output) => resolve({ client, key, input, call, output }),
          notApplied: () => resolve(undefined),
        };
      },
      fail: () => settle(undefined),
    };
  }

  /** The operations recorded so far (pending ones count as unknown), in call order. */
  history(): Operation[] {
    return this.ops.filter((op): op is Operation => op !== undefined);
  }
}
