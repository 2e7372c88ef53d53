import { Code, RpcError } from "./errors.js";
import type { CallSignal } from "./transport.js";

/**
 * Deadlines are absolute times in ms on the Date.now() clock, so they can be compared across the
 * client, the transport and a server in the same process, and turned back into a relative
 * timeout (TTHeader's RPCTimeout, gRPC's grpc-timeout) by whoever puts them on a wire.
 */

/**
 * The deadline `timeoutMs` from `now`, or undefined for no timeout: undefined, NaN, 0 or less,
 * and Infinity are none. Any finite timeout is kept as it is, however long (timers are armed
 * with `startTimer`, and a transport clamps what it puts on its wire to what the wire carries).
 */
export function deadlineAfter(timeoutMs: number | undefined, now: number = Date.now()): number | undefined {
  return timeoutMs === undefined || !(timeoutMs > 0) || timeoutMs === Infinity ? undefined : now + timeoutMs;
}

/** The Date.now() clock minus the performance.now() clock, as last taken, and when (see wallClock). */
let wallOffset = 0;
let wallOffsetAt = -Infinity;

/**
 * `t` (a performance.now() reading) on the Date.now() clock, through the two clocks' offset,
 * taken again once a second: code that has a performance.now() reading at hand compares it with
 * a deadline without a second clock read (40-60 ns on Node 20). The system clock being set or
 * slewed moves the result within a second, as it moves Date.now().
 */
export function wallClock(t: number): number {
  if (!(t - wallOffsetAt < 1000)) {
    wallOffsetAt = performance.now();
    wallOffset = Date.now() - wallOffsetAt;
  }
  return t + wallOffset;
}

/**
 * The longest delay Node's setTimeout honours: 2^31 - 1 ms (about 24.8 days). A longer one fires
 * after 1 ms instead, with a TimeoutOverflowWarning.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `ms` as a delay setTimeout takes as meant: clamped to [0, MAX_TIMER_MS], NaN as 0. A timer
 * armed with a clamped delay fires early, so its callback must look at the clock and re-arm
 * (what DeadlineQueue does); `startTimer` does that for one callback.
 */
export function timerDelay(ms: number): number {
  return ms > 0 ? (ms < MAX_TIMER_MS ? ms : MAX_TIMER_MS) : 0;
}

/** A timer started by {@link startTimer}. */
export interface Timer {
  /** Stops it; the callback will not run. Harmless once it has run. */
  cancel(): void;
}

/**
 * A one-shot timer for any delay: calls `fn` once `ms` have passed, like setTimeout, but a delay
 * past MAX_TIMER_MS is waited out in steps of at most that (re-armed on the Date.now() clock)
 * instead of firing at once, and Infinity never fires. Every timer fed by a user's or a peer's
 * duration (deadlines, backoffs, grace periods) is armed with this or with `timerDelay`.
 * `unref`: the timer does not keep the process alive.
 */
export function startTimer(ms: number, fn: () => void, unref = false): Timer {
  return new LongTimer(ms, fn, unref);
}

class LongTimer implements Timer {
  private handle: ReturnType<typeof setTimeout> | undefined;
  /** Absolute end (Date.now() clock) when the delay is too long for one setTimeout, else undefined. */
  private readonly until: number | undefined;

  constructor(
    ms: number,
    private readonly fn: () => void,
    private readonly unref: boolean,
  ) {
    // A delay setTimeout takes as it is keeps setTimeout's own clock and precision.
    this.until = ms > MAX_TIMER_MS ? Date.now() + ms : undefined;
    this.arm(timerDelay(ms));
  }

  cancel(): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
  }

  private arm(delay: number): void {
    const h = (this.handle = setTimeout(this.fire, delay));
    if (this.unref) h.unref();
  }

  private readonly fire = (): void => {
    this.handle = undefined;
    const left = this.until === undefined ? 0 : this.until - Date.now();
    if (left > 0) this.arm(timerDelay(left));
    else this.fn();
  };
}

/** Something with a deadline, linked into a {@link DeadlineQueue} (intrusive: no wrapper objects). */
export interface DeadlineEntry {
  /** Absolute time (Date.now() based, ms) at which `expire` is called. */
  dlAt: number;
  dlPrev: DeadlineEntry | undefined;
  dlNext: DeadlineEntry | undefined;
  dlQueued: boolean;
  /** Called once, when the deadline passes while the entry is still queued. */
  expire(): void;
}

/** Options of a {@link DeadlineQueue}. */
export interface DeadlineQueueOptions {
  /**
   * Whether queued entries keep the process alive, as a setTimeout does. The queue's timer is
   * then stopped whenever the queue empties, so that nothing holds the process, and no timer
   * outlives the entries it was armed for (a test's fake timer, say). Default false: the owner
   * keeps the process alive by other means (a transport's sockets), and the timer stays armed.
   */
  keepAlive?: boolean;
}

/**
 * Calls `expire()` on entries whose deadline has passed, with one timer for all of them.
 *
 * Entries sit in a list sorted by deadline. Calls mostly share a timeout, so a new deadline is
 * almost always the latest and is appended at the tail in O(1); removal is an O(1) unlink. The
 * single timer is armed for the head; it is not re-armed when the head is removed (it fires,
 * finds nothing due, and re-arms for the new head), so a call that completes costs two pointer
 * updates instead of a setTimeout/clearTimeout pair (about 250 ns on Node 20).
 */
export class DeadlineQueue {
  private head: DeadlineEntry | undefined;
  private tail: DeadlineEntry | undefined;
  private timer: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  private readonly keepAlive: boolean;
  private readonly onTimer = (): void => this.fire();

  /** Number of queued entries. */
  size = 0;

  constructor(options: DeadlineQueueOptions = {}) {
    this.keepAlive = options.keepAlive === true;
  }

  /** Queues `e` (which must not be queued already) for its `dlAt`. */
  add(e: DeadlineEntry): void {
    this.insert(e, Infinity);
  }

  /**
   * Queues `e` when its place is at most `maxWalk` entries from the tail, and says whether it
   * did: a caller with deadlines of every length (inherited ones) takes another timer instead of
   * walking a long queue.
   */
  tryAdd(e: DeadlineEntry, maxWalk: number): boolean {
    return this.insert(e, maxWalk);
  }

  /** Takes `e` out of the queue, if it is queued. */
  remove(e: DeadlineEntry): void {
    if (!e.dlQueued) return;
    e.dlQueued = false;
    if (--this.size === 0 && this.keepAlive) this.stop();
    const { dlPrev, dlNext } = e;
    if (dlPrev !== undefined) dlPrev.dlNext = dlNext;
    else this.head = dlNext;
    if (dlNext !== undefined) dlNext.dlPrev = dlPrev;
    else this.tail = dlPrev;
    e.dlPrev = e.dlNext = undefined;
  }

  /** Stops the timer (entries stay queued but will not expire until something is added). */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
  }

  private insert(e: DeadlineEntry, maxWalk: number): boolean {
    let after = this.tail;
    // Written so that a deadline that is not a number goes to the head and counts as due.
    for (let walked = 0; after !== undefined && !(after.dlAt <= e.dlAt); walked++) {
      if (walked === maxWalk) return false;
      after = after.dlPrev;
    }
    e.dlQueued = true;
    this.size++;
    e.dlPrev = after;
    if (after === undefined) {
      e.dlNext = this.head;
      if (this.head !== undefined) this.head.dlPrev = e;
      this.head = e;
      if (this.tail === undefined) this.tail = e;
      this.arm(e.dlAt);
    } else {
      e.dlNext = after.dlNext;
      if (after.dlNext !== undefined) after.dlNext.dlPrev = e;
      else this.tail = e;
      after.dlNext = e;
    }
    return true;
  }

  private arm(at: number): void {
    if (this.timer !== undefined && this.armedAt <= at) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedAt = at;
    // A deadline past setTimeout's range (a huge timeout, ours or a peer's) fires early and
    // finds nothing due; fire() then re-arms for what is left.
    this.timer = setTimeout(this.onTimer, timerDelay(at - Date.now()));
    if (!this.keepAlive) this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = Date.now();
    let e = this.head;
    while (e !== undefined && !(e.dlAt > now)) {
      this.remove(e);
      e.expire();
      e = this.head;
    }
    if (this.head !== undefined) this.arm(this.head.dlAt);
  }
}

/** The queue of {@link timerAt}'s timers, shared by the process; it keeps the process alive while it holds one. */
const sharedDeadlines = new DeadlineQueue({ keepAlive: true });

/**
 * How far from the tail of the shared queue a timer may go: deadlines of one timeout come in
 * order; one that would go further (an inherited, shorter one) takes a timer of its own.
 */
const MAX_SHARED_WALK = 8;

/**
 * A one-shot timer that calls `fn` at `at` (Date.now() clock, ms), like `startTimer(at - now)`
 * but queued with the other deadlines of the process behind one setTimeout: what a call's
 * deadline is armed with, as calls with the same timeout arrive in deadline order. Keeps the
 * process alive until it fires or is cancelled, as startTimer does. A time that is not finite
 * goes to startTimer (NaN fires at once, Infinity never): at the head of the queue it would hold
 * back every deadline behind it.
 */
export function timerAt(at: number, fn: () => void): Timer {
  if (!Number.isFinite(at)) return startTimer(at - Date.now(), fn);
  const t = new QueuedTimer(at, fn);
  return sharedDeadlines.tryAdd(t, MAX_SHARED_WALK) ? t : startTimer(at - Date.now(), fn);
}

class QueuedTimer implements Timer, DeadlineEntry {
  dlPrev: DeadlineEntry | undefined = undefined;
  dlNext: DeadlineEntry | undefined = undefined;
  dlQueued = false;

  constructor(
    public dlAt: number,
    private readonly fn: () => void,
  ) {}

  cancel(): void {
    sharedDeadlines.remove(this);
  }

  expire(): void {
    this.fn();
  }
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

/**
 * The RpcError an aborted call ends with, the one rule every transport and the runtime use: the
 * signal's reason when that is an RpcError; DEADLINE_EXCEEDED for a TimeoutError (what
 * `AbortSignal.timeout` aborts with); else CANCELLED, caused by the reason. `notSent` states
 * whether the request surely never left: true or false makes the error say so (a reason that
 * says otherwise is copied with it corrected), undefined keeps an RpcError reason's own.
 */
export function abortError(signal: { readonly reason: unknown }, notSent?: boolean): RpcError {
  const r: unknown = signal.reason;
  if (r instanceof RpcError) {
    return notSent === undefined || r.notSent === notSent ? r : new RpcError(r.code, r.message, { cause: r, headers: r.headers, notSent });
  }
  const sent = notSent ?? false;
  if (r instanceof Error && r.name === "TimeoutError") return new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded", { cause: r, notSent: sent });
  return new RpcError(Code.CANCELLED, "call cancelled", { cause: r, notSent: sent });
}

/**
 * Settles like `promise`, or rejects with `abortError(signal, notSent)` as soon as `signal`
 * aborts, whichever comes first (`notSent`: true for a wait before the request could leave, such
 * as for a connection). The promise is still observed afterwards, so a late rejection is never
 * unhandled; its late result is dropped.
 */
export function raceSignal<T>(promise: Promise<T>, signal: CallSignal, notSent?: boolean): Promise<T> {
  if (signal.aborted) {
    promise.catch(ignore);
    return Promise.reject(abortError(signal, notSent));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal, notSent));
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

/**
 * Settles like `promise`, or rejects with DEADLINE_EXCEEDED (`what`, `notSent`) once `deadline`
 * (Date.now() clock) passes, whichever comes first; a late rejection is observed, as in
 * raceSignal.
 */
export function raceDeadline<T>(promise: Promise<T>, deadline: number, what: string, notSent = false): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = timerAt(deadline, () => reject(deadlineExceeded(what, notSent)));
    promise.then(
      (v) => {
        timer.cancel();
        resolve(v);
      },
      (e: unknown) => {
        timer.cancel();
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
      timer.cancel();
      reject(abortError(signal));
    };
    const timer = startTimer(ms, () => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function ignore(): void {}
