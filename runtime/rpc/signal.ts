import type { AbortListener, CallSignal } from "./transport.js";

const ABORT_EVENT = { type: "abort" } as const;

/**
 * A cheap AbortController for calls: a CallSignal with a plain listener list. Node 20 takes
 * microseconds to create an AbortSignal (more than a whole in-process call), so calls carry one
 * of these and a real AbortSignal is made only when someone asks for it (`toAbortSignal()`, for
 * fetch and other APIs that need one).
 */
export class Cancellation implements CallSignal {
  aborted = false;
  reason: unknown = undefined;
  /**
   * The first listener, kept apart: a call mostly has one (its transport's), and an array for it
   * was an allocation per call. Set only while `rest` was never needed, so it always runs first.
   */
  private first: AbortListener | undefined = undefined;
  /** Listeners after `first`, in the order they were added. */
  private rest: AbortListener[] | undefined = undefined;
  private controller: AbortController | undefined = undefined;

  addEventListener(_type: "abort", listener: AbortListener): void {
    if (this.aborted) return;
    if (this.first === undefined && this.rest === undefined) {
      this.first = listener;
      return;
    }
    // As EventTarget does, a listener added twice is called once.
    if (this.first === listener) return;
    const l = (this.rest ??= []);
    if (!l.includes(listener)) l.push(listener);
  }

  removeEventListener(_type: "abort", listener: AbortListener): void {
    if (this.first === listener) {
      this.first = undefined;
      return;
    }
    const l = this.rest;
    if (l === undefined) return;
    const i = l.lastIndexOf(listener);
    // Listeners mostly go in the order opposite to the one they came in (the transport's, then
    // the call's): the last one is popped, without splice's cost.
    if (i === l.length - 1) l.pop();
    else if (i >= 0) l.splice(i, 1);
  }

  /** Aborts with `reason` and runs the listeners once; later calls do nothing. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const first = this.first;
    const rest = this.rest;
    this.first = undefined;
    this.rest = undefined;
    if (first !== undefined) notify(first);
    if (rest !== undefined) for (const listener of rest) notify(listener);
  }

  /** A real AbortSignal that follows this one (created on first use). */
  toAbortSignal(): AbortSignal {
    let c = this.controller;
    if (c === undefined) {
      c = this.controller = new AbortController();
      if (this.aborted) c.abort(this.reason);
    }
    return c.signal;
  }
}

/** Runs an abort listener; as EventTarget does, one that throws stops neither the others nor the abort. */
function notify(listener: AbortListener): void {
  try {
    if (typeof listener === "function") listener(ABORT_EVENT);
    else listener.handleEvent(ABORT_EVENT);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}

/** Calls `onAbort` with the signal's reason when `signal` aborts; returns the unsubscribe. */
export function onAbort(signal: CallSignal, onAbort: (reason: unknown) => void): () => void {
  const listener = (): void => onAbort(signal.reason);
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}
