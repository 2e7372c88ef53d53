import { Code, RpcError } from "./errors.js";
import type { CallSignal } from "./transport.js";

/**
 * Deadlines are absolute times in ms on the Date.now() clock, so they can be compared across the
 * client, the transport and a server in the same process, and turned back into a relative
 * timeout (TTHeader's RPCTimeout, gRPC's grpc-timeout) by whoever puts them on a wire.
 */

/** The deadline `timeoutMs` from `now`, or undefined for no timeout (undefined, 0 or less is none). */
export function deadlineAfter(timeoutMs: number | undefined, now: number = Date.now()): number | undefined {
  return timeoutMs === undefined || !(timeoutMs > 0) ? undefined : now + timeoutMs;
}

/** The earlier of two deadlines, either of which may be absent. */
export function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}

/** The error of a call whose deadline passed; `notSent` when it passed before the request left. */
export function deadlineExceeded(what = "deadline exceeded", notSent = false): RpcError {
  return new RpcError(Code.DEADLINE_EXCEEDED, what, { notSent });
}

/** The RpcError an aborted signal stands for: its reason when that is one, else CANCELLED. */
export function abortError(signal: CallSignal): RpcError {
  const r: unknown = signal.reason;
  return r instanceof RpcError ? r : new RpcError(Code.CANCELLED, "call cancelled", { cause: r });
}

/**
 * Settles like `promise`, or rejects with `abortError(signal)` as soon as `signal` aborts,
 * whichever comes first. The promise is still observed afterwards, so a late rejection is never
 * unhandled; its late result is dropped.
 */
export function raceSignal<T>(promise: Promise<T>, signal: CallSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(ignore);
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Waits `ms`, or rejects with `abortError(signal)` when `signal` aborts first. */
export function sleep(ms: number, signal: CallSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function ignore(): void {}
