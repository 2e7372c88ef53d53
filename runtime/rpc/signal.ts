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
  private listeners: AbortListener[] | undefined;
  private controller: AbortController | undefined;

  addEventListener(_type: "abort", listener: AbortListener): void {
    if (this.aborted) return;
    const l = (this.listeners ??= []);
    // As EventTarget does, a listener added twice is called once.
    if (!l.includes(listener)) l.push(listener);
  }

  removeEventListener(_type: "abort", listener: AbortListener): void {
    const l = this.listeners;
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
    const l = this.listeners;
    this.listeners = undefined;
    if (l === undefined) return;
    for (const listener of l) {
      try {
        if (typeof listener === "function") listener(ABORT_EVENT);
        else listener.handleEvent(ABORT_EVENT);
      } catch (e) {
        // As EventTarget does: a throwing listener neither stops the others nor the abort.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
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

/** Calls `onAbort` with the signal's reason when `signal` aborts; returns the unsubscribe. */
export function onAbort(signal: CallSignal, onAbort: (reason: unknown) => void): () => void {
  const listener = (): void => onAbort(signal.reason);
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}
